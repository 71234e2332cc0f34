"""Writes for focus-group sessions: create, edit, choose participants, archive, delete, reopen.

Status transitions (draft → live → paused → ended) belong to the discussion engine, not here; reopening an
ended session for follow-up questions is the one way back from ended, and it is a session action.
Every rule a session must keep (2–12 distinct personas of the owner, a title, an objective…) is checked here,
so pages and the API give the same answers.
"""

from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from cohorta.errors import ApplicationError
from focusgroups import conversation, events
from focusgroups.models import (
    FOCUS_GROUP_TITLE_MAX,
    MAX_PARTICIPANTS,
    MIN_PARTICIPANTS,
    FocusGroup,
    FocusGroupStatus,
    Message,
    MessageRole,
    Participant,
)
from focusgroups.selectors import persona_ids_who_spoke
from personas.models import Persona

TITLE_MAX = FOCUS_GROUP_TITLE_MAX
OBJECTIVE_MAX = 4000
CONCEPT_MAX = 20000
COST_CAP_MAX = Decimal("99999999.99")  # max_digits=10, decimal_places=2

_UNSET = object()


def _invalid(fields: dict[str, list[str]]) -> ApplicationError:
    """One validation error carrying every field's problems; the message is the first of them."""
    first = next(iter(fields.values()))[0]
    return ApplicationError(first, code="validation_error", extra={"fields": fields})


def _no_such_persona() -> ApplicationError:
    return ApplicationError("No such persona.", code="not_found", status_code=404)


def _ensure_writable(focus_group: FocusGroup) -> None:
    if focus_group.archived:
        raise ApplicationError("This session is archived. Restore it to change it.", code="archived", status_code=409)


def _clean_text(value, *, field: str, label: str, max_length: int, required: bool, errors: dict) -> str:
    value = "" if value is None else str(value).strip()
    if required and not value:
        errors.setdefault(field, []).append(f"{label} is required.")
    elif len(value) > max_length:
        errors.setdefault(field, []).append(
            f"{label} can be at most {max_length:,} characters (it has {len(value):,})."
        )
    return value


def _clean_cost_cap(value, errors: dict) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors.setdefault("cost_cap_usd", []).append("The spending cap must be an amount in USD, e.g. 5.00.")
        return None
    if not amount.is_finite() or amount <= 0:
        errors.setdefault("cost_cap_usd", []).append("The spending cap must be more than $0 (or leave it empty).")
    elif amount > COST_CAP_MAX:
        errors.setdefault("cost_cap_usd", []).append("The spending cap is too large.")
    elif amount != amount.quantize(Decimal("0.01")):
        errors.setdefault("cost_cap_usd", []).append("The spending cap can have at most 2 decimal places.")
    else:
        return amount
    return None


def _participant_problems(*, owner, persona_ids) -> tuple[list[Persona], list[str]]:
    """The chosen personas in the order given, and what is wrong with the choice (empty when fine).

    An id that is not one of the owner's personas is not a validation problem but a 404: it raises.
    """
    ids: list[int] = []
    for value in persona_ids or []:
        if isinstance(value, bool):
            raise _no_such_persona()
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            raise _no_such_persona() from None
    problems = []
    repeated = [pk for pk, times in Counter(ids).items() if times > 1]
    if repeated:
        problems.append("Each persona can take part only once: the same persona was chosen more than once.")
    unique = list(dict.fromkeys(ids))
    found = Persona.objects.filter(owner=owner, pk__in=unique).in_bulk()
    if len(found) != len(unique):
        raise _no_such_persona()
    if len(unique) < MIN_PARTICIPANTS:
        problems.append(
            f"Choose at least {MIN_PARTICIPANTS} participants (you chose {len(unique)}): "
            "a focus group is a conversation between personas."
        )
    elif len(unique) > MAX_PARTICIPANTS:
        problems.append(f"Choose at most {MAX_PARTICIPANTS} participants (you chose {len(unique)}).")
    return [found[pk] for pk in unique], problems


def participants_check(*, owner, persona_ids) -> list[Persona]:
    """Validate a choice of participants without saving: 2–12 distinct personas of ``owner``.

    Returns the personas in the order given. Not yours → 404 ApplicationError; otherwise a validation error.
    """
    personas, problems = _participant_problems(owner=owner, persona_ids=persona_ids)
    if problems:
        raise _invalid({"persona_ids": problems})
    return personas


@transaction.atomic
def focus_group_create(
    *, owner, title: str, objective: str, concept: str = "", persona_ids, cost_cap_usd=None
) -> FocusGroup:
    errors: dict[str, list[str]] = {}
    title = _clean_text(title, field="title", label="A title", max_length=TITLE_MAX, required=True, errors=errors)
    objective = _clean_text(
        objective,
        field="objective",
        label="The research objective",
        max_length=OBJECTIVE_MAX,
        required=True,
        errors=errors,
    )
    concept = _clean_text(
        concept,
        field="concept",
        label="The concept description",
        max_length=CONCEPT_MAX,
        required=False,
        errors=errors,
    )
    cost_cap = _clean_cost_cap(cost_cap_usd, errors)
    personas, problems = _participant_problems(owner=owner, persona_ids=persona_ids)
    if problems:
        errors["persona_ids"] = problems
    if errors:
        raise _invalid(errors)
    focus_group = FocusGroup.objects.create(
        owner=owner, title=title, objective=objective, concept=concept, cost_cap_usd=cost_cap
    )
    Participant.objects.bulk_create(
        [Participant(focus_group=focus_group, persona=persona, position=i) for i, persona in enumerate(personas)]
    )
    return focus_group


@transaction.atomic
def focus_group_update(
    *, focus_group: FocusGroup, title=_UNSET, objective=_UNSET, concept=_UNSET, cost_cap_usd=_UNSET
) -> FocusGroup:
    """Change what is given; leave out what should stay. ``cost_cap_usd=None`` removes the cap."""
    _ensure_writable(focus_group)
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    if title is not _UNSET:
        changes["title"] = _clean_text(
            title, field="title", label="A title", max_length=TITLE_MAX, required=True, errors=errors
        )
    if objective is not _UNSET:
        changes["objective"] = _clean_text(
            objective,
            field="objective",
            label="The research objective",
            max_length=OBJECTIVE_MAX,
            required=True,
            errors=errors,
        )
    if concept is not _UNSET:
        changes["concept"] = _clean_text(
            concept,
            field="concept",
            label="The concept description",
            max_length=CONCEPT_MAX,
            required=False,
            errors=errors,
        )
    if cost_cap_usd is not _UNSET:
        changes["cost_cap_usd"] = _clean_cost_cap(cost_cap_usd, errors)
    if errors:
        raise _invalid(errors)
    changes = {field: value for field, value in changes.items() if getattr(focus_group, field) != value}
    if changes:
        for field, value in changes.items():
            setattr(focus_group, field, value)
        focus_group.save(update_fields=[*changes, "updated_at"])
    return focus_group


@transaction.atomic
def participants_set(*, focus_group: FocusGroup, persona_ids) -> list[Participant]:
    """Make the participants exactly these personas, in this order.

    Adding people is always fine; once the discussion has started, someone who has already spoken stays
    (their turns are part of the transcript), so removing them is refused with a 409.
    """
    # Lock the session row: a message being numbered at the same time waits, so "who spoke" cannot go stale.
    focus_group = FocusGroup.objects.select_for_update().get(pk=focus_group.pk)
    _ensure_writable(focus_group)
    personas = participants_check(owner=focus_group.owner, persona_ids=persona_ids)
    wanted = [persona.pk for persona in personas]
    current = {p.persona_id: p for p in Participant.objects.filter(focus_group=focus_group).select_related("persona")}
    removed = [pk for pk in current if pk not in wanted]
    spoke = persona_ids_who_spoke(focus_group=focus_group, persona_ids=removed) if removed else set()
    if spoke:
        names = sorted(current[pk].persona.name for pk in spoke)
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        verb = "has" if len(names) == 1 else "have"
        raise ApplicationError(
            f"{who} {verb} already spoken in this session, so they can't be removed. You can still add participants.",
            code="participant_has_spoken",
            status_code=409,
            extra={"persona_ids": sorted(spoke)},
        )
    if removed:
        Participant.objects.filter(focus_group=focus_group, persona_id__in=removed).delete()
    kept, added = [], []
    for position, persona in enumerate(personas):
        participant = current.get(persona.pk)
        if participant is None:
            added.append(Participant(focus_group=focus_group, persona=persona, position=position))
        elif participant.position != position:
            participant.position = position
            kept.append(participant)
    if kept:
        Participant.objects.bulk_update(kept, ["position"])
    if added:
        Participant.objects.bulk_create(added)
    if removed or kept or added:
        focus_group.save(update_fields=["updated_at"])
    return list(Participant.objects.filter(focus_group=focus_group).select_related("persona"))


@transaction.atomic
def focus_group_archive(*, focus_group: FocusGroup, archived: bool) -> FocusGroup:
    """Archive (read-only, hidden from the default list) or restore a session."""
    archived = bool(archived)
    if focus_group.archived != archived:
        focus_group.archived = archived
        focus_group.save(update_fields=["archived", "updated_at"])
    return focus_group


REOPEN_NOTE = (
    "Reopened for follow-up questions. Autonomous mode stays ended; the researcher moderates from here, and "
    "everything above is kept."
)


@transaction.atomic
def focus_group_reopen(*, focus_group: FocusGroup) -> FocusGroup:
    """Make an ended session live again for follow-up questions, moderated by hand.

    Nothing restarts and nothing is charged: the autonomous run stays ended (its charge, and any refund,
    stand), and the transcript keeps every message, with a note marking where the follow-up begins. Ending
    the session again runs the analysis again, as any end does."""
    _ensure_writable(focus_group)
    reopened = FocusGroup.objects.filter(pk=focus_group.pk, status=FocusGroupStatus.ENDED, archived=False).update(
        status=FocusGroupStatus.LIVE, ended_at=None, updated_at=timezone.now()
    )
    if not reopened:
        focus_group.refresh_from_db()
        state = "still a draft" if focus_group.status == FocusGroupStatus.DRAFT else focus_group.get_status_display()
        raise ApplicationError(
            f"Only an ended session can be reopened; this one is {state.lower()}.",
            code="not_ended",
            status_code=409,
        )
    note = Message.objects.create(
        focus_group=focus_group,
        sequence=conversation.reserve_sequences(focus_group.pk, 1),
        role=MessageRole.SYSTEM,
        speaker_name="Note",
        content=REOPEN_NOTE,
    )
    focus_group.refresh_from_db()
    events.publish_message_on_commit(note)
    events.publish_status_on_commit(focus_group)
    return focus_group


@transaction.atomic
def focus_group_delete(*, focus_group: FocusGroup) -> None:
    """Delete the session and everything in it: messages, answers, assets (and their files), the guide."""
    files = [(asset.image.storage, asset.image.name) for asset in focus_group.assets.exclude(image="")]
    # Participant.persona is PROTECT; the participants go first so the cascade never meets it.
    Participant.objects.filter(focus_group=focus_group).delete()
    focus_group.delete()

    def remove_files():
        for storage, name in files:
            storage.delete(name)

    # Files are not transactional: remove them only once the rows are really gone.
    transaction.on_commit(remove_files)
