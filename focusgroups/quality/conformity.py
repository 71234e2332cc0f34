"""Conformity: do personas drift toward the room's majority? (Baltaji et al. 2024; Choi et al. 2025)

The researcher turns it on for a session with a key question and its answer options ("Would you buy it?" Yes /
No / Not sure). Each participant then answers that question privately — a call of its own with their profile and
the question, no transcript — before the discussion starts, and again after it ends, with the discussion in their
memory the way their answers have it (the rolling summary and the recent turns). The session's conformity rate is
the share of answers that move toward the initial majority: among participants whose answer before was not the
majority choice, the share whose answer after is.

When things happen:
- on: ``conformity_configure`` (the session's settings form, the API), until the discussion starts;
- charged: ``conformity_begin``, in the transaction that starts the autonomous run or the first moderated round
  (App settings' quality credits per participant);
- before: ``before_round``, at the top of a run's first turn, or before the first moderated round's answers are
  queued; all participants at once (``FOCUS_GROUP_PRIVATE_PARALLELISM``), so the discussion waits about one call;
- after: ``after_round``, a task queued when the session ends (by the run, or by the researcher); then the credits
  of everyone who did not answer both times are refunded.

A failed private call is stored as failed, never as a choice: the discussion goes on, and the result says how
many answered both times."""

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing.services import credits_refund_unused, credits_spend
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits
from focusgroups import conversation, tasks
from focusgroups.models import (
    CONFORMITY_OPTION_MAX,
    CONFORMITY_OPTIONS_MAX,
    CONFORMITY_OPTIONS_MIN,
    CONFORMITY_QUESTION_MAX,
    ConformityCheck,
    FocusGroup,
    Message,
    MessageRole,
    PrivateAnswer,
    PrivateAnswerStatus,
    PrivatePhase,
)
from llm.errors import LLMError
from llm.gateway import complete
from llm.prompts import render_prompt

logger = logging.getLogger(__name__)

REASON_WORDS = 60
REASON_MAX_CHARS = 600
DEFAULT_QUESTION = "Would you buy it?"


# --- setting it up -------------------------------------------------------------------------------


def options_parse(value) -> list[str]:
    """Answer options from a form (one per line, or separated by "/" or ";") or a list, stripped, blanks dropped."""
    if isinstance(value, str):
        separator = "\n" if "\n" in value else ("/" if "/" in value else ";")
        value = value.split(separator)
    return [" ".join(str(option).split()) for option in value or [] if str(option).strip()]


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(message, code="validation_error", extra={"fields": {field: [message]}})


def conformity_clean(*, question, options) -> tuple[str, list[str]]:
    """The key question and its options, checked: a question, 2–6 distinct options of at most 80 characters."""
    question = " ".join(str(question or "").split())
    if not question:
        raise _invalid(
            "conformity_question", "Write the key question everyone answers privately, e.g. “Would you buy it?”"
        )
    if len(question) > CONFORMITY_QUESTION_MAX:
        raise _invalid(
            "conformity_question",
            f"The key question can be at most {CONFORMITY_QUESTION_MAX} characters (it has {len(question)}).",
        )
    options = options_parse(options)
    if len(options) < CONFORMITY_OPTIONS_MIN:
        raise _invalid(
            "conformity_options",
            f"Give at least {CONFORMITY_OPTIONS_MIN} answer options, one per line (e.g. Yes, No, Not sure).",
        )
    if len(options) > CONFORMITY_OPTIONS_MAX:
        raise _invalid(
            "conformity_options", f"Give at most {CONFORMITY_OPTIONS_MAX} answer options (you gave {len(options)})."
        )
    long = [option for option in options if len(option) > CONFORMITY_OPTION_MAX]
    if long:
        raise _invalid(
            "conformity_options",
            f"Each answer option can be at most {CONFORMITY_OPTION_MAX} characters: “{long[0][:40]}…”",
        )
    folded = [option.casefold() for option in options]
    if len(set(folded)) != len(folded):
        raise _invalid("conformity_options", "Each answer option must be different.")
    return question, options


def discussion_started(focus_group: FocusGroup) -> bool:
    return (
        focus_group.runs.exists()
        or Message.objects.filter(
            focus_group=focus_group, role__in=[MessageRole.PERSONA, MessageRole.MODERATOR]
        ).exists()
    )


def _refuse_if_started(focus_group: FocusGroup, check: ConformityCheck | None, *, turning_on: bool) -> None:
    if check is not None and check.started:
        raise ApplicationError(
            "The participants have already answered the key question privately, so the conformity check can no "
            "longer be changed or turned off in this session.",
            code="conformity_started",
            status_code=409,
        )
    if turning_on and discussion_started(focus_group):
        raise ApplicationError(
            "The discussion has already started, so conformity can no longer be measured here: the first private "
            "answers must come before anyone has heard the others. Turn it on when you set up a new session.",
            code="discussion_started",
            status_code=409,
        )


@transaction.atomic
def conformity_configure(*, focus_group: FocusGroup, question, options) -> ConformityCheck:
    """Turn the conformity check on (or change its question) before the discussion starts. Nothing is charged yet."""
    question, options = conformity_clean(question=question, options=options)
    locked = FocusGroup.objects.select_for_update().get(pk=focus_group.pk)
    if locked.archived:
        raise ApplicationError("This session is archived. Restore it to change it.", code="archived", status_code=409)
    check = ConformityCheck.objects.filter(focus_group=locked).first()
    if check is not None and check.question == question and check.options == options:
        return check
    _refuse_if_started(locked, check, turning_on=True)
    if check is None:
        return ConformityCheck.objects.create(focus_group=locked, question=question, options=options)
    check.question, check.options = question, options
    check.save(update_fields=["question", "options", "updated_at"])
    return check


@transaction.atomic
def conformity_disable(*, focus_group: FocusGroup) -> None:
    """Turn the check off (before anyone has answered; afterwards the answers stay part of the session)."""
    locked = FocusGroup.objects.select_for_update().get(pk=focus_group.pk)
    check = ConformityCheck.objects.filter(focus_group=locked).first()
    if check is None:
        return
    _refuse_if_started(locked, check, turning_on=False)
    check.delete()


def conformity_set(*, focus_group: FocusGroup, enabled: bool, question="", options=None) -> ConformityCheck | None:
    """What the settings form and the API do: on with this question and these options, or off."""
    if not enabled:
        conformity_disable(focus_group=focus_group)
        return None
    return conformity_configure(focus_group=focus_group, question=question, options=options)


def conformity_get(focus_group: FocusGroup) -> ConformityCheck | None:
    return ConformityCheck.objects.filter(focus_group=focus_group).first()


def conformity_price(participants: int) -> int:
    return get_app_settings().quality_credits_per_persona * participants


# --- the charge ----------------------------------------------------------------------------------


def conformity_begin(
    *, focus_group: FocusGroup, participants: int, with_credits: int = 0, charge: bool = True
) -> ConformityCheck | None:
    """Inside the transaction that starts the discussion: charge the check (once) and claim its before round.
    Returns the check when its before round is now due, None when it is off or already under way.

    ``with_credits``: what the same start has just charged (the run), for an error that adds it up.
    ``charge=False``: an exact replay, whose private answers come from the cache."""
    assert transaction.get_connection().in_atomic_block, "begin the conformity check inside the start's transaction"
    check = ConformityCheck.objects.select_for_update().filter(focus_group=focus_group).first()
    if check is None or check.started:
        return None
    unit = get_app_settings().quality_credits_per_persona if charge else 0
    amount = unit * participants
    if amount:
        try:
            check.credit_transaction = credits_spend(
                user=focus_group.owner,
                amount=amount,
                idempotency_key=f"conformity:{check.pk}",
                reference=f"focusgroup:{focus_group.pk}",
                description=f"Conformity check of “{focus_group.title}” ({participants} participants)",
            )
        except InsufficientCredits as exc:
            balance = exc.extra.get("balance", 0) + with_credits
            total = amount + with_credits
            run = f" ({with_credits} for the run, {amount} for conformity)" if with_credits else ""
            raise InsufficientCredits(
                f"This needs {total} credits{run}; you have {balance}. Buy credits on the Billing page, or turn "
                "“Measure conformity” off in the session's settings.",
                extra={"required": total, "balance": balance},
            ) from None
    check.credits_per_persona = unit
    check.before_started_at = timezone.now()
    check.save(update_fields=["credit_transaction", "credits_per_persona", "before_started_at", "updated_at"])
    return check


# --- the private answers -------------------------------------------------------------------------


def private_answer_schema(options: list[str]) -> dict:
    return {
        "type": "object",
        "properties": {
            "choice": {"type": "string", "enum": list(options)},
            "reason": {"type": "string", "maxLength": REASON_MAX_CHARS},
        },
        "required": ["choice", "reason"],
        "additionalProperties": False,
    }


def private_answer_messages(*, check: ConformityCheck, persona, phase: str) -> tuple[list[dict], str]:
    """The private prompt and what of the discussion it carries ("" before; after: "transcript", or "summary" when
    older turns are folded into the rolling summary, as in the persona's own answers)."""
    focus_group = check.focus_group
    summary, transcript, memory = "", "", ""
    if phase == PrivatePhase.AFTER:
        summary = focus_group.summary
        transcript = conversation.transcript_window(
            focus_group=focus_group, before_sequence=focus_group.last_sequence + 1
        )
        memory = "summary" if summary else "transcript"
    prompt = render_prompt(
        "focusgroups:private_answer",
        {
            "persona": persona,
            "focus_group": focus_group,
            "phase": phase,
            "summary": summary,
            "transcript": transcript,
            "question": check.question,
            "options": check.options,
            "reason_words": REASON_WORDS,
        },
    )
    return [{"role": "user", "content": prompt}], memory


@dataclass
class _Asked:
    persona: Any
    ok: bool
    choice: str = ""
    reason: str = ""
    error: str = ""
    simulated: bool = False
    memory: str = ""


def _ask_one(check: ConformityCheck, persona, phase: str) -> _Asked:
    focus_group = check.focus_group
    try:
        messages, memory = private_answer_messages(check=check, persona=persona, phase=phase)
        result = complete(
            feature="private_answer",
            messages=messages,
            schema=private_answer_schema(check.options),
            schema_name="private_answer",
            alias=focus_group.model_alias or None,
            user=focus_group.owner,
            focus_group_id=focus_group.pk,
            persona_id=persona.pk,
            focus_group_cap_usd=focus_group.cost_cap_usd,
            max_tokens=400,
        )
        choice = result.data["choice"]
        if choice not in check.options:  # the schema's enum holds it; a model that slips past it is not counted
            raise LLMError("The AI chose an answer that is not one of the options.")
        return _Asked(
            persona,
            True,
            choice=choice,
            reason=" ".join(str(result.data.get("reason") or "").split()),
            simulated=result.simulated,
            memory=memory,
        )
    except (LLMError, ApplicationError) as exc:
        return _Asked(persona, False, error=exc.message)
    except Exception:
        logger.exception("Private answer of persona %s in focus group %s crashed", persona.pk, focus_group.pk)
        return _Asked(persona, False, error="Something went wrong asking this participant. It has been logged.")
    finally:
        connection.close()  # each worker thread has its own connection


def _ask_all(check: ConformityCheck, personas: list, phase: str) -> list[_Asked]:
    """Every persona's private answer, at most FOCUS_GROUP_PRIVATE_PARALLELISM at a time: the round takes about
    as long as one call. The calls only talk to the provider (and meter); the answers are saved by the caller."""
    if not personas:
        return []
    parallel = max(1, min(len(personas), settings.FOCUS_GROUP_PRIVATE_PARALLELISM))
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix=f"private-{check.focus_group_id}") as pool:
        return list(pool.map(lambda persona: _ask_one(check, persona, phase), personas))


def _save(check: ConformityCheck, phase: str, asked: list[_Asked]) -> None:
    for answer in asked:
        PrivateAnswer.objects.update_or_create(
            conformity=check,
            persona=answer.persona,
            phase=phase,
            defaults={
                "status": PrivateAnswerStatus.DONE if answer.ok else PrivateAnswerStatus.FAILED,
                "choice": answer.choice[:CONFORMITY_OPTION_MAX] if answer.ok else "",
                "reason": answer.reason[: REASON_MAX_CHARS * 2],
                "error": answer.error[:500],
                "memory": answer.memory,
                "simulated": answer.simulated,
                "created_at": timezone.now(),
            },
        )


def _check_for(focus_group_id: int) -> ConformityCheck | None:
    return ConformityCheck.objects.select_related("focus_group__owner").filter(focus_group_id=focus_group_id).first()


def before_round(*, focus_group_id: int) -> int:
    """Ask every participant without a private answer yet, while nobody has answered in the discussion (a retried
    first turn asks again whoever failed). Returns how many were asked; 0 when the check is off or not begun."""
    check = _check_for(focus_group_id)
    if check is None or not check.started or check.after_started_at is not None:
        return 0
    focus_group = check.focus_group
    if Message.objects.filter(focus_group=focus_group, role=MessageRole.PERSONA).exists():
        return 0  # the discussion is under way: an answer now would not be "before"
    answered = set(
        check.answers.filter(phase=PrivatePhase.BEFORE, status=PrivateAnswerStatus.DONE).values_list(
            "persona_id", flat=True
        )
    )
    personas = [p.persona for p in focus_group.participants.select_related("persona") if p.persona_id not in answered]
    _save(check, PrivatePhase.BEFORE, _ask_all(check, personas, PrivatePhase.BEFORE))
    ConformityCheck.objects.filter(pk=check.pk).update(before_done_at=timezone.now())
    return len(personas)


def after_enqueue_on_commit(focus_group_id: int) -> None:
    """The session has ended: ask the after round in the background (after commit)."""
    if ConformityCheck.objects.filter(
        focus_group_id=focus_group_id, before_started_at__isnull=False, after_started_at__isnull=True
    ).exists():
        transaction.on_commit(lambda: tasks.conformity_after.apply_async((focus_group_id,)))


def after_round(*, focus_group_id: int) -> int:
    """Once per session: ask everyone who answered before (with the discussion in their memory), then refund the
    credits of everyone who did not answer both times. Returns how many were asked."""
    claimed = ConformityCheck.objects.filter(
        focus_group_id=focus_group_id, before_started_at__isnull=False, after_started_at__isnull=True
    ).update(after_started_at=timezone.now())
    if not claimed:
        return 0  # off, never begun, or asked already (a duplicate task, a session ended again after a reopen)
    check = _check_for(focus_group_id)
    assert check is not None  # just claimed
    answered_before = set(
        check.answers.filter(phase=PrivatePhase.BEFORE, status=PrivateAnswerStatus.DONE).values_list(
            "persona_id", flat=True
        )
    )
    # A round asked again (its first worker died) leaves alone whoever had answered.
    answered_after = set(
        check.answers.filter(phase=PrivatePhase.AFTER, status=PrivateAnswerStatus.DONE).values_list(
            "persona_id", flat=True
        )
    )
    personas = [
        p.persona
        for p in check.focus_group.participants.select_related("persona")
        if p.persona_id in answered_before and p.persona_id not in answered_after
    ]
    _save(check, PrivatePhase.AFTER, _ask_all(check, personas, PrivatePhase.AFTER))
    ConformityCheck.objects.filter(pk=check.pk).update(after_done_at=timezone.now())
    conformity_refund_unanswered(check=check)
    return len(personas)


# A worker that dies during the after round takes its task with it, and nothing else would ask again: past this,
# the round is released and queued afresh. Each private answer is bounded by LLM_DEADLINE_SECONDS, all at once.
AFTER_STALE_SECONDS = 15 * 60


def conformity_reap(*, now=None) -> int:
    """After rounds left unfinished by a dead worker: released and queued again. Returns how many."""
    now = now or timezone.now()
    stale = ConformityCheck.objects.filter(
        after_started_at__lt=now - timedelta(seconds=AFTER_STALE_SECONDS), after_done_at__isnull=True
    ).values_list("pk", "focus_group_id", "after_started_at")
    count = 0
    for check_id, focus_group_id, started in stale:
        with transaction.atomic():
            # Only the claim this reaper read: a round that finished or was claimed again meanwhile stays as it is.
            if ConformityCheck.objects.filter(pk=check_id, after_started_at=started, after_done_at__isnull=True).update(
                after_started_at=None
            ):
                logger.warning("Conformity check %s: its after round stopped with its worker; asking again", check_id)
                transaction.on_commit(partial(tasks.conformity_after.apply_async, (focus_group_id,)))
                count += 1
    return count


def conformity_refund_unanswered(*, check: ConformityCheck) -> int:
    """Give back the credits of each participant without both private answers; once (the ledger key)."""
    if check.credit_transaction_id is None:
        return 0
    pairs = _pairs(check)
    try:
        refunded = credits_refund_unused(
            spend_key=f"conformity:{check.pk}",
            kept=check.credits_per_persona * pairs,
            idempotency_key=f"conformity-refund:{check.pk}",
            description=f"Refund: conformity check of “{check.focus_group.title}”, participants who did not answer "
            "privately both times",
        )
    except ApplicationError as exc:  # the account is gone, or refunded by hand already
        logger.warning("Conformity check %s not refunded: %s", check.pk, exc.message)
        return 0
    if refunded:
        ConformityCheck.objects.filter(pk=check.pk).update(refunded_credits=refunded)
        check.refunded_credits = refunded
    return refunded


def _pairs(check: ConformityCheck) -> int:
    done = Counter(
        check.answers.filter(status=PrivateAnswerStatus.DONE).values_list("persona_id", flat=True).order_by()
    )
    return sum(1 for count in done.values() if count == 2)


# --- the result ----------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return f"“{text}”"


def _either(items: list[str]) -> str:
    quoted = [_quote(item) for item in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _state(check: ConformityCheck) -> tuple[str, str]:
    if check.before_started_at is None:
        return "waiting", "Turned on. The participants answer privately when the discussion starts."
    if check.before_done_at is None:
        return "before", "Asking each participant privately, before the discussion…"
    if check.after_started_at is None:
        return "discussing", "Answered before the discussion. Each participant answers again, privately, once it ends."
    if check.after_done_at is None:
        return "after", "The discussion has ended: asking each participant privately again…"
    return "done", ""


def conformity_result(check: ConformityCheck) -> dict:
    """Everything the report, the exports and the API show of a session's conformity check."""
    participants = list(check.focus_group.participants.select_related("persona"))
    answers = {(a.persona_id, a.phase): a for a in check.answers.all()}
    rows: list[dict[str, Any]] = []
    for participant in participants:
        before = answers.get((participant.persona_id, PrivatePhase.BEFORE))
        after = answers.get((participant.persona_id, PrivatePhase.AFTER))
        rows.append(
            {
                "persona_id": participant.persona_id,
                "name": participant.persona.name,
                "before": _answer_payload(before),
                "after": _answer_payload(after),
            }
        )
    before_choices = [row["before"]["choice"] for row in rows if row["before"]["status"] == "done"]
    after_choices = [row["after"]["choice"] for row in rows if row["after"]["status"] == "done"]
    counted = Counter(before_choices)
    top = max(counted.values(), default=0)
    leaders = [option for option in check.options if counted[option] == top and top]
    majority = leaders[0] if len(leaders) == 1 else None
    pairs = [row for row in rows if row["before"]["status"] == "done" and row["after"]["status"] == "done"]
    for row in rows:
        both = row in pairs
        row["changed"] = both and row["before"]["choice"] != row["after"]["choice"]
        row["toward_majority"] = (
            both and majority is not None and row["before"]["choice"] != majority and row["after"]["choice"] == majority
        )
    changed = [row for row in pairs if row["changed"]]
    eligible = [row for row in pairs if majority is not None and row["before"]["choice"] != majority]
    moved = [row for row in eligible if row["after"]["choice"] == majority]
    rate = len(moved) / len(eligible) if eligible else None
    state, state_label = _state(check)
    after_counts = Counter(after_choices)
    result = {
        "question": check.question,
        "options": list(check.options),
        "state": state,
        "state_label": state_label,
        "participants": len(rows),
        "answered_before": len(before_choices),
        "answered_after": len(after_choices),
        "answered_both": len(pairs),
        "failed": sum(1 for row in rows if "failed" in (row["before"]["status"], row["after"]["status"])),
        "majority": majority,
        "tied": majority is None and len(leaders) > 1,
        "tied_options": leaders if len(leaders) > 1 else [],
        "eligible": len(eligible),
        "moved": len(moved),
        "rate": rate,
        "rate_percent": round(rate * 100) if rate is not None else None,
        "changed": len(changed),
        "counts": [
            {"option": option, "before": counted[option], "after": after_counts[option]} for option in check.options
        ],
        "rows": rows,
        "credits_charged": check.credit_transaction.amount if check.credit_transaction is not None else 0,
        "credits_refunded": check.refunded_credits,
        "simulated": any(a.simulated for a in answers.values()),
    }
    result["definition"] = (
        "The conformity rate is the share of answers that move toward the initial majority: among participants whose "
        "private answer before the discussion was not the initial majority choice, the share whose private answer "
        "after it is the majority choice."
    )
    result["summary"] = _summary(result) if state == "done" else [state_label]
    return result


def _answer_payload(answer: PrivateAnswer | None) -> dict:
    if answer is None:
        return {"status": "", "choice": "", "reason": "", "error": "", "memory": ""}
    return {
        "status": answer.status,
        "choice": answer.choice,
        "reason": answer.reason,
        "error": answer.error,
        "memory": answer.memory,
    }


def _summary(result: dict) -> list[str]:
    """The result in plain sentences, for the page and the exports."""
    lines = []
    both, total = result["answered_both"], result["participants"]
    if result["tied"]:
        lines.append(
            f"There is no single majority: before the discussion {_either(result['tied_options'])} were chosen equally "
            "often, so there is no conformity rate, only the changes."
        )
    elif result["majority"] is None:
        lines.append("Nobody answered before the discussion, so there is no initial majority and no conformity rate.")
    elif result["rate"] is None:
        lines.append(
            f"Conformity rate: none to measure. Everyone who answered both times already chose the initial majority "
            f"answer ({_quote(result['majority'])}) before the discussion, so nobody could move toward it."
        )
    else:
        lines.append(
            f"Conformity rate: {result['rate_percent']}% ({result['moved']} of {result['eligible']}). Of the "
            f"participants whose private answer before the discussion was not the initial majority answer "
            f"({_quote(result['majority'])}), {result['moved']} chose it privately after the discussion."
        )
    lines.append(
        f"{result['changed']} of {both} participant{'s' if both != 1 else ''} who answered both times changed their "
        "answer."
    )
    if both < total:
        missing = total - both
        refund = f" Their {result['credits_refunded']} credits were refunded." if result["credits_refunded"] else ""
        lines.append(
            f"{both} of {total} participants answered privately both before and after; {missing} did not (a private "
            f"answer failed), so they are left out of the rate.{refund}"
        )
    return lines
