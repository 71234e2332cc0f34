"""The request a signed-in view sees, for annotations (the base's ``HtmxHttpRequest`` plus its user)."""

from cohorta.accounts.models import User
from cohorta.http import HtmxHttpRequest


class AuthenticatedHttpRequest(HtmxHttpRequest):
    """A request to a view behind ``login_required`` (or another check that the user signed in)."""

    user: User
