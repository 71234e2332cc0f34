"""The audited way to get a focus group (or anything in it) for a user: not theirs → 404."""

from django.http import Http404

from cohorta.errors import ApplicationError
from focusgroups.models import FocusGroup


def get_focus_group_for_user(request_or_user, focus_group_id, *, write: bool = False) -> FocusGroup:
    user = getattr(request_or_user, "user", request_or_user)
    try:
        focus_group = FocusGroup.objects.get(owner=user, pk=int(focus_group_id))
    except (FocusGroup.DoesNotExist, ValueError, TypeError):
        raise Http404("No such focus group") from None
    if write and focus_group.archived:
        # Archived sessions are read-only; say so rather than pretend they are missing.

        raise ApplicationError("This session is archived. Restore it to change it.", code="archived", status_code=409)
    return focus_group


def user_owns_focus_group(*, user_id, focus_group_id) -> bool:
    return FocusGroup.objects.filter(pk=focus_group_id, owner_id=user_id, owner__is_active=True).exists()
