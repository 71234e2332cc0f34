from django.apps import AppConfig
from django.core.signals import setting_changed


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Imported here because signal receivers need the apps loaded (Django's app loading).
        from allauth.account.signals import user_signed_up

        from billing import receivers

        user_signed_up.connect(receivers.grant_trial_credits, dispatch_uid="billing.grant_trial_credits")
        receivers.stripe_connect()
        setting_changed.connect(receivers.stripe_api_base_follow, dispatch_uid="billing.stripe_api_base_follow")
