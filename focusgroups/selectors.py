"""Reads for focus-group sessions, always scoped to their owner.

Counts are correlated subqueries rather than ``Count()`` over joins: joining participants and messages
in one query would multiply rows (12 participants × 2,000 messages), a subquery per count stays one query.
"""

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, Window
from django.db.models.functions import Coalesce

from focusgroups.models import FocusGroup, Message, Participant
from personas.models import Persona
from personas.selectors import personas_for_user

PICKER_LIMIT = 50


def _count_of(model, **filters):
    rows = model.objects.filter(focus_group=OuterRef("pk"), **filters).order_by().values("focus_group")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), Value(0))


def with_counts(queryset: QuerySet[FocusGroup]) -> QuerySet[FocusGroup]:
    """``participant_count`` and ``message_count`` on each session, and its participants (with personas) prefetched."""
    return (
        queryset.annotate(participant_count=_count_of(Participant), message_count=_count_of(Message))
        .select_related("conformity")
        .prefetch_related(Prefetch("participants", queryset=Participant.objects.select_related("persona")))
    )


def focus_groups_for_user(*, user, archived: bool | None = False, q: str = "") -> QuerySet[FocusGroup]:
    """The user's sessions, newest first. ``archived=None`` means both archived and active ones."""
    qs = FocusGroup.objects.filter(owner=user)
    if archived is not None:
        qs = qs.filter(archived=archived)
    q = (q or "").strip()
    if q:
        qs = qs.filter(Q(title__icontains=q) | Q(objective__icontains=q) | Q(concept__icontains=q))
    return with_counts(qs).order_by("-created_at", "-id")


def focus_group_with_details(*, focus_group: FocusGroup) -> FocusGroup:
    """The same session again, with counts and participants loaded (for a detail view)."""
    return with_counts(FocusGroup.objects.filter(pk=focus_group.pk)).get()


def focus_group_counts(*, user) -> dict[str, int]:
    """How many active and archived sessions the user has (one query)."""
    return FocusGroup.objects.filter(owner=user).aggregate(
        active=Count("pk", filter=Q(archived=False)), archived=Count("pk", filter=Q(archived=True))
    )


def participants_with_personas(*, focus_group: FocusGroup) -> QuerySet[Participant]:
    return Participant.objects.filter(focus_group=focus_group).select_related("persona").order_by("position", "id")


def persona_ids_who_spoke(*, focus_group: FocusGroup, persona_ids=None) -> set[int]:
    """Ids of personas with at least one message in this session (optionally only among ``persona_ids``)."""
    messages = Message.objects.filter(focus_group=focus_group, persona__isnull=False)
    if persona_ids is not None:
        messages = messages.filter(persona_id__in=list(persona_ids))
    return set(messages.order_by().values_list("persona_id", flat=True).distinct())


def personas_in_order(*, user, persona_ids) -> list[Persona]:
    """The user's personas among ``persona_ids``, in that order; ids that are not theirs are skipped."""
    ids = []
    for value in persona_ids or []:
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            continue
    found = Persona.objects.filter(owner=user, pk__in=ids).in_bulk()
    return [found[pk] for pk in dict.fromkeys(ids) if pk in found]


def picker_personas(*, user, q: str = "", limit: int = PICKER_LIMIT) -> tuple[list[Persona], int]:
    """The first ``limit`` of the user's personas matching ``q`` (by name), and how many match in all."""
    qs = personas_for_user(user=user, q=(q or "").strip())
    # The total rides on each row (a window count over the whole match): one query for 10 personas or 10,000.
    rows = list(qs.annotate(matching=Window(Count("pk")))[:limit])
    total: int = rows[0].matching if rows else 0
    return [*rows], total


def focus_group_titles(*, user, ids) -> dict[int, str]:
    """The titles of the user's own focus groups among ``ids`` (others' stay unnamed)."""
    return dict(FocusGroup.objects.filter(owner=user, pk__in=ids).values_list("pk", "title"))
