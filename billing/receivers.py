from billing.services import credits_grant_trial


def grant_trial_credits(sender, request, user, **kwargs) -> None:
    """allauth's user_signed_up: every new account starts with the trial credits."""
    credits_grant_trial(user=user)
