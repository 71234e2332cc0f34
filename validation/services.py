"""Writes for validation: references (upload, mapping, deletion) and validations (start, move on, score).

A validation goes: the matched panel is written (a ``panel_build`` job), then the reference's questions
are asked of it (a ``survey_run``), then the answers are scored against the humans'. Each step starts
when the one before ends (``receivers.py`` listens for ``job_ended``), so no worker waits for another."""

import logging
import secrets
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.selectors import credits_balance
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError, InsufficientCredits
from cohorta.jobs.models import JobState
from llm.models import ReplayMode, RunRecord
from llm.replay import ReplayPlan, llm_run, replay_plan, replay_prepare, replay_refusal
from panels import services as panel_services
from panels.models import ProfileDepth
from panels.population import Dimension, Population
from surveys import services as survey_services
from surveys.models import QuestionKind, Survey
from validation import tasks
from validation.models import Reference, Validation, ValidationState
from validation.reference import (
    REFERENCE_MAX_BYTES,
    ReferenceTable,
    demographic_values,
    read_reference_csv,
    suggest_mapping,
    validate_mapping,
    weights,
)
from validation.scoring import scorecard_compute

logger = logging.getLogger(__name__)

NOT_STATED = "Not stated"
# Scales survey mode rates by semantic similarity (SSR); any other number of points is asked as an
# ordered single choice.
_SSR_KINDS = {5: QuestionKind.LIKERT5, 7: QuestionKind.LIKERT7, 11: QuestionKind.NPS}


# --- references ----------------------------------------------------------------------------------------


def reference_upload(*, owner, upload, name: str = "") -> Reference:
    if upload is None:
        raise ApplicationError("Choose the CSV of the real survey to upload.", code="validation_error")
    if upload.size is not None and upload.size > REFERENCE_MAX_BYTES:
        raise ApplicationError(
            f"“{upload.name}” is {upload.size / 1024 / 1024:.1f} MB; a reference survey can be at most "
            f"{REFERENCE_MAX_BYTES // (1024 * 1024)} MB. Keep only the questions and demographics you need.",
            code="file_too_large",
        )
    data = upload.read()
    table = read_reference_csv(data, filename=upload.name or "reference.csv")
    name = " ".join((name or "").split())[:120] or (upload.name or "Reference survey").rsplit(".", 1)[0][:120]
    return Reference.objects.create(
        owner=owner,
        name=name,
        filename=(upload.name or "")[:255],
        size=len(data),
        row_count=len(table.rows),
        table=table.to_json(),
        suggested=suggest_mapping(table),
    )


def reference_map(*, reference: Reference, mapping: dict) -> Reference:
    """Check the mapping against the data (every named column exists, scale values within their scale…)
    and keep it."""
    table = ReferenceTable.from_json(reference.table)
    reference.mapping = validate_mapping(table, mapping).to_json()
    reference.save(update_fields=["mapping"])
    return reference


def reference_delete(*, reference: Reference) -> None:
    """The reference and its rows go; validations keep their scorecards (which hold shares, not rows)."""
    reference.delete()


# --- starting ------------------------------------------------------------------------------------------


def _weights(table: ReferenceTable, mapping: dict) -> np.ndarray:
    """Each respondent's survey weight (1 without a weight column; 0 where it is missing)."""
    given = weights(table, mapping)
    if given is None:
        return np.ones(len(table.rows))
    values = np.asarray([max(0.0, value or 0.0) for value in given], dtype=float)
    return values if values.sum() > 0 else np.ones(len(table.rows))


def reference_population(reference: Reference, table: ReferenceTable, demographics: list[dict], weights) -> Population:
    """The reference's respondents as a population: the weighted share of each mapped demographic's
    values (what the matched panel's composition is read against)."""
    dimensions = []
    for item in reference.mapping.get("demographics", []):
        key = item["dimension"]
        shares: dict[str, float] = {}
        for row, weight in zip(demographics, weights, strict=True):
            value = row.get(key, NOT_STATED)
            shares[value] = shares.get(value, 0.0) + float(weight)
        total = sum(shares.values()) or 1.0
        ordered = sorted(shares.items(), key=lambda pair: (pair[0] == NOT_STATED, -pair[1]))
        dimensions.append(
            Dimension(
                key=key,
                label=item.get("label") or key.replace("_", " ").capitalize(),
                shares={value: share / total for value, share in ordered},
                source=f"Uploaded survey “{reference.name}” ({len(table.rows):,} respondents)",
            )
        )
    return Population(key=f"reference-{reference.pk}", name=reference.name, country="", dimensions=tuple(dimensions))


def survey_questions(mapping: dict) -> list[dict]:
    """The reference's questions as survey mode asks them."""
    questions = []
    for item in mapping.get("questions", []):
        text = (item.get("text") or item.get("label") or item["column"]).strip()
        if item["kind"] == "open":
            questions.append({"kind": QuestionKind.OPEN, "text": text})
            continue
        values = [str(value) for value in (item.get("scale") or item.get("options") or [])]
        kind = _SSR_KINDS.get(len(values)) if item["kind"] == "scale" else None
        if kind == QuestionKind.NPS:
            questions.append({"kind": kind, "text": text})
        elif kind is not None:
            questions.append({"kind": kind, "text": text, "labels": values})
        else:
            # Ordered answers keep their order on screen; unordered ones are shuffled (and recorded).
            shuffled = item["kind"] != "scale"
            questions.append(
                {"kind": QuestionKind.SINGLE, "text": text, "options": values, "randomize_options": shuffled}
            )
    return questions


def _check_size(size, rows: int) -> int:
    high = min(rows, get_app_settings().panel_max_size, 1000)
    try:
        size = int(size)
    except (TypeError, ValueError):
        raise ApplicationError(
            f"How many synthetic respondents? Give a whole number from 1 to {high:,}.",
            code="validation_error",
            extra={"fields": {"size": [f"From 1 to {high:,}."]}},
        ) from None
    if not 1 <= size <= high:
        raise ApplicationError(
            f"A validation asks between 1 and {high:,} synthetic respondents (no more than the reference has "
            f"people, nor than the largest panel); you asked for {size:,}.",
            code="validation_error",
            extra={"fields": {"size": [f"From 1 to {high:,}."]}},
        )
    return size


def _seed(seed) -> int:
    if seed in (None, ""):
        return secrets.randbelow(2**31)
    try:
        number = int(seed)
    except (TypeError, ValueError):
        number = -1
    if not 0 <= number < 2**63:
        raise ApplicationError(
            "The seed must be a whole number from 0 up.",
            code="validation_error",
            extra={"fields": {"seed": ["A whole number from 0 up."]}},
        )
    return number


def validation_cost(*, size: int, question_count: int, depth: str = ProfileDepth.LIGHT) -> int:
    return (
        panel_services.panel_cost(size=size, depth=depth)
        + survey_services.run_unit_cost(question_count=question_count) * size
    )


def validation_start(
    *,
    owner,
    reference: Reference,
    size,
    seed=None,
    depth: str = ProfileDepth.LIGHT,
    charge: bool = True,
    survey: Survey | None = None,
) -> Validation:
    """Sample respondents of the reference, build the panel matched to them and the survey of its questions;
    the panel's credits are reserved now, the run's when the panel is ready (402 before any work when the
    balance cannot pay for both). ``charge=False``: an exact replay the cache answers; ``survey``: the
    survey to ask again (a replay asks the original's, whose questions keep their ids in the prompt)."""
    if not reference.is_mapped:
        raise ApplicationError(
            "Map the reference's columns first: say which are questions and which are demographics.",
            code="reference_not_mapped",
        )
    table = ReferenceTable.from_json(reference.table)
    size = _check_size(size, len(table.rows))
    if depth not in ProfileDepth.values:
        raise ApplicationError("Choose light or full profiles.", code="validation_error")
    seed = _seed(seed)
    questions = survey_questions(reference.mapping)
    cost = validation_cost(size=size, question_count=len(questions), depth=depth)
    balance = credits_balance(user=owner)
    if charge and cost > balance:
        raise InsufficientCredits(
            f"This validation costs {cost:,} credits ({size:,} personas and their answers); you have {balance:,}. "
            "Buy credits on the Billing page, or validate with fewer respondents.",
            extra={"needed": cost, "balance": balance},
        )
    demographics = demographic_values(table, reference.mapping)
    weights = _weights(table, reference.mapping)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(table.rows), size=size, replace=False, p=weights / weights.sum())
    cores = [demographics[int(index)] for index in picked]
    population = reference_population(reference, table, demographics, weights)
    with transaction.atomic():
        if survey is None:
            survey = survey_services.survey_create(
                owner=owner,
                title=f"Validation: {reference.name}"[:200],
                intro=(
                    "The questions of a survey real people answered, asked to check how close synthetic answers come."
                ),
                questions=questions,
            )
        panel = panel_services.panel_create(
            owner=owner,
            population=population,
            cores=cores,
            seed=seed,
            name=f"Matched to {reference.name}"[:120],
            depth=depth,
            charge=charge,
        )
        return Validation.objects.create(
            owner=owner,
            reference=reference,
            reference_name=reference.name,
            mapping=reference.mapping,
            size=size,
            seed=seed,
            panel=panel,
            survey=survey,
        )


# --- moving on -----------------------------------------------------------------------------------------


def _fail(validation: Validation, reason: str) -> None:
    Validation.objects.filter(pk=validation.pk).exclude(state=ValidationState.DONE).update(
        state=ValidationState.FAILED, error=reason[:600], finished_at=timezone.now()
    )


def validation_panel_ended(validation: Validation, *, state: str) -> None:
    """The matched panel's job ended: ask it the questions, or say why not."""
    with transaction.atomic():
        locked = Validation.objects.select_for_update().filter(pk=validation.pk, state=ValidationState.PANEL).first()
        if locked is None:
            return
        panel, survey = locked.panel, locked.survey
        written = panel.members.filter(persona__isnull=False).count() if panel else 0
        if survey is None:
            _fail(locked, "Its survey was deleted before the questions could be asked. Start the validation again.")
            return
        if state != JobState.DONE or not written:
            why = "was cancelled" if state == JobState.CANCELLED else "could not be written"
            _fail(locked, f"The matched panel {why}; nothing was charged for its questions. Start it again.")
            return
        replaying = replay_source(locked)
        try:
            run = survey_services.run_start(
                survey=survey, panel=panel, charge=replaying is None or replaying.mode != ReplayMode.REPLAY
            )
        except ApplicationError as exc:
            _fail(locked, f"The matched panel is ready, but its questions could not be asked: {exc.message}")
            return
        if replaying is not None:
            original_pk = scope_pk(replaying.replay_of)
            original = Validation.objects.filter(pk=original_pk).first() if original_pk is not None else None
            if original is not None and original.run_id is not None:
                replay_prepare(
                    original_scope=f"surveyrun:{original.run_id}",
                    scope=f"surveyrun:{run.pk}",
                    allow_live=replaying.mode != ReplayMode.REPLAY,
                )
        Validation.objects.filter(pk=locked.pk).update(state=ValidationState.SURVEY, run=run)


def validation_run_ended(validation: Validation, *, state: str) -> None:
    """The survey run ended: score it against the humans, or say why not."""
    moved = Validation.objects.filter(pk=validation.pk, state=ValidationState.SURVEY).update(
        state=ValidationState.SCORING, scoring_started_at=timezone.now()
    )
    if not moved:
        return
    validation.refresh_from_db()
    if state != JobState.DONE:
        _fail(validation, "The questions were not all asked (the run stopped). Start the validation again.")
        return
    validation_score(validation)


def validation_rescore(validation: Validation) -> bool:
    """ "Score again" from the stored answers, on a worker: scoring the open answers asks the AI for their themes
    and embeds them, which has no place in a page request. False when it is being scored already."""
    with transaction.atomic():
        moved = (
            Validation.objects.filter(pk=validation.pk)
            .exclude(state=ValidationState.SCORING)
            .update(state=ValidationState.SCORING, error="", scoring_started_at=timezone.now())
        )
        if moved:
            transaction.on_commit(lambda: tasks.score.apply_async((validation.pk,)))
    return bool(moved)


def validation_rescore_run(*, validation_id: int) -> str:
    validation = Validation.objects.filter(pk=validation_id, state=ValidationState.SCORING).first()
    if validation is None:
        return "gone"  # deleted meanwhile, or a duplicate delivery after the scoring ended
    return validation_score(validation).state


# Scoring runs in one task, bounded by Celery's hard time limit; one still scoring well past it lost its worker.
SCORING_LOST_AFTER_SECONDS = 5 * 60


def validations_reap(*, now=None) -> int:
    """Validations whose worker died mid-scoring: failed at the scoring, saying so, so "Score again" can start
    it afresh (it refuses while a validation shows as scoring)."""
    now = now or timezone.now()
    lost = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + SCORING_LOST_AFTER_SECONDS)
    stale = Validation.objects.filter(state=ValidationState.SCORING).filter(
        Q(scoring_started_at__lt=lost) | Q(scoring_started_at__isnull=True, created_at__lt=lost)
    )
    count = 0
    for validation in stale:
        moved = Validation.objects.filter(pk=validation.pk, state=ValidationState.SCORING).update(
            state=ValidationState.FAILED,
            error="The scoring was interrupted (the server doing it stopped). Score it again.",
            finished_at=now,
        )
        if moved:
            logger.warning("Validation %s lost its worker while scoring; failed", validation.pk)
            count += moved
    return count


def validation_score(validation: Validation) -> Validation:
    """Compute (or recompute) the scorecard from the run's answers and the reference's."""
    if validation.reference is None:
        _fail(validation, "The reference survey was deleted before the answers could be scored.")
        return validation
    try:
        with llm_run(validation_scope(validation)):
            card = scorecard_compute(validation)
    except ApplicationError as exc:
        _fail(validation, f"The answers could not be scored: {exc.message}")
        return validation
    except Exception:
        logger.exception("Scoring validation %s failed", validation.pk)
        _fail(validation, "An unexpected error stopped the scoring. Try scoring again from the validation's page.")
        return validation
    Validation.objects.filter(pk=validation.pk).update(
        state=ValidationState.DONE, scorecard=card, error="", finished_at=timezone.now()
    )
    validation.refresh_from_db()
    return validation


# --- exact replay ------------------------------------------------------------------------------------------


def validation_scope(validation: Validation) -> str:
    return f"validation:{validation.pk}"


def scope_pk(record: RunRecord | None) -> int | None:
    """The row id in a run record's scope ("validation:12" → 12)."""
    if record is None:
        return None
    _, _, pk = record.scope.partition(":")
    return int(pk) if pk.isdigit() else None


def replay_source(validation: Validation) -> RunRecord | None:
    record = RunRecord.objects.filter(scope=validation_scope(validation)).select_related("replay_of").first()
    if record is None or record.mode == ReplayMode.LIVE or record.replay_of is None:
        return None
    return record


def validation_scopes(validation: Validation) -> list[str]:
    """Every run a validation is made of: its panel, its survey run, its scoring."""
    scopes = [validation_scope(validation)]
    if validation.panel_id is not None:
        scopes.append(f"panel:{validation.panel_id}")
    if validation.run_id is not None:
        scopes.append(f"surveyrun:{validation.run_id}")
    return scopes


def replay_check(validation: Validation) -> ReplayPlan:
    """How many of the AI answers the validation's panel, survey and scoring got the cache still holds."""
    calls = missing = 0
    features: dict[str, int] = {}
    for scope in validation_scopes(validation):
        plan = replay_plan(scope)
        calls += plan.calls
        missing += plan.missing
        for feature, count in plan.features.items():
            features[feature] = features.get(feature, 0) + count
    return ReplayPlan(calls=calls, missing=missing, features=features)


def validation_replay(*, validation: Validation, allow_live: bool = False) -> Validation:
    """The validation again: the same respondents drawn with the same seed, their panel written, asked and
    scored with every AI answer from the cache, so the scorecard comes out the same with no provider
    request. Missing answers: refused with how many, unless ``allow_live`` (then charged as a validation)."""
    if validation.state != ValidationState.DONE:
        raise ApplicationError("Replay a validation once it is scored.", code="not_finished", status_code=409)
    if validation.reference is None or validation.panel is None or validation.survey is None:
        raise ApplicationError(
            "Its reference survey, its panel or its questions were deleted, so this validation cannot be replayed.",
            code="not_replayable",
            status_code=409,
        )
    if validation.reference.mapping != validation.mapping:
        raise ApplicationError(
            "The reference's mapping changed since this validation ran, so a replay would ask other questions. "
            "Start a new validation instead.",
            code="not_replayable",
            status_code=409,
        )
    plan = replay_check(validation)
    replay_refusal(plan, what="validation", charged_like="a validation", allow_live=allow_live)
    with transaction.atomic():
        copy = validation_start(
            owner=validation.owner,
            reference=validation.reference,
            size=validation.size,
            seed=validation.seed,
            depth=validation.panel.depth,
            charge=allow_live,
            survey=validation.survey,
        )
        replay_prepare(original_scope=validation_scope(validation), scope=validation_scope(copy), allow_live=allow_live)
        replay_prepare(
            original_scope=f"panel:{validation.panel_id}", scope=f"panel:{copy.panel_id}", allow_live=allow_live
        )
    return copy


def validation_delete(*, validation: Validation) -> None:
    validation.delete()
