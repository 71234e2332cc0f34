from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "cohorta.web"
    label = "web"
    verbose_name = "Web pages"
