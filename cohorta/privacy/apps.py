from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "cohorta.privacy"
    label = "privacy"
    verbose_name = "Privacy"
