from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        from django.conf import settings

        return getattr(settings, "ACCOUNT_ALLOW_SIGNUP", True)
