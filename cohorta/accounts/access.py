"""Getting an API token for a user: not theirs → 404 (see ``cohorta/access.py``)."""

from cohorta.access import owned_or_404
from cohorta.accounts.models import ApiToken


def get_api_token_for_user(user, pk, *, for_write: bool = False) -> ApiToken:
    return owned_or_404(ApiToken.objects.all(), user=user, pk=pk, owner_field="user", what="token")
