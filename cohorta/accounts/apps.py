from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "cohorta.accounts"
    label = "accounts"
    verbose_name = "Accounts"
