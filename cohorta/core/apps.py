from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "cohorta.core"
    label = "core"
    verbose_name = "App settings"
