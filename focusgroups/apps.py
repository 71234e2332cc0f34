from django.apps import AppConfig


class FocusgroupsConfig(AppConfig):
    name = "focusgroups"
    verbose_name = "Focus groups"
