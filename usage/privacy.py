"""Erasure for usage events: a deleted account's AI calls stay, for cost accounting, unlinked.

Usage events keep no email or name, only the ``user`` link (and ids of sessions and
personas, which are deleted with the account and so point at nothing). Unlinking is
all anonymising takes; doing it here, before the user row goes, makes it explicit
rather than a side effect of the foreign key's SET_NULL.
"""

from usage.models import UsageEvent


def usage_anonymise_user(*, user_id: int) -> int:
    """Detach every usage event of ``user_id`` from the account; returns how many rows.

    ``UsageEvent.save`` refuses changes, but a queryset UPDATE is allowed by design (the
    backfill uses it) and touches only the column named: tokens and costs stay.
    """
    return UsageEvent.objects.filter(user_id=user_id).update(user=None)
