from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from allauth.account.signals import user_signed_up

        from billing import receivers

        user_signed_up.connect(receivers.grant_trial_credits, dispatch_uid="billing.grant_trial_credits")
