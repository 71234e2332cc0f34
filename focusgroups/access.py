"""Getting a focus group, or something in it, for a user: not theirs → 404 (see ``cohorta/access.py``)."""

from cohorta.access import owned_or_404
from cohorta.errors import ApplicationError
from focusgroups.models import Asset, FocusGroup, Message


def get_focus_group_for_user(user, pk, *, for_write: bool = False) -> FocusGroup:
    """``for_write``: an archived session is read-only, and says so (409) rather than pretend it is missing."""
    # The owner joined in: most writes check their budget (quota_check reads the owner), one query not two.
    focus_group = owned_or_404(FocusGroup.objects.select_related("owner"), user=user, pk=pk, what="focus group")
    if for_write and focus_group.archived:
        raise ApplicationError("This session is archived. Restore it to change it.", code="archived", status_code=409)
    return focus_group


def get_message_for_user(user, pk, *, focus_group_id, for_write: bool = False) -> Message:
    get_focus_group_for_user(user, focus_group_id, for_write=for_write)
    return owned_or_404(
        Message.objects.filter(focus_group_id=focus_group_id),
        user=user,
        pk=pk,
        owner_field="focus_group__owner",
        what="message",
    )


def get_asset_for_user(user, pk, *, focus_group_id, for_write: bool = False) -> Asset:
    get_focus_group_for_user(user, focus_group_id, for_write=for_write)
    return owned_or_404(
        Asset.objects.filter(focus_group_id=focus_group_id).select_related("focus_group", "job"),
        user=user,
        pk=pk,
        owner_field="focus_group__owner",
        what="file",
    )
