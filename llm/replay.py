"""Exact replay: which run a call belongs to, its answers kept, found again, and the run's methods on record.

Work that can be replayed runs inside ``llm_run(scope)`` ("surveyrun:7"); a call that names a focus group
belongs to "focusgroup:<id>" without it. In a live run every validated answer is kept (``keep``) and the
run's ledger notes which entry answered its k-th request with that hash. A replay is a new run whose
``RunRecord`` says ``replay_of`` and a mode: its k-th request with a hash is answered by the entry the
original's k-th request with that hash got (``find``), never by another draw, so a replay gives the same
bytes the original got. A request whose messages, parameters or model differ hashes differently and misses.
"""

import base64
import contextlib
import contextvars
import hashlib
import json
import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from cohorta.errors import ApplicationError
from cohorta.numbering import insert_numbered
from llm.models import CacheDay, CachedResponse, CacheKind, ReplayMode, RunCall, RunRecord
from llm.prompts import prompts_taken

logger = logging.getLogger(__name__)

HASH_VERSION = 1


@dataclass
class _Current:
    run: RunRecord


_current: contextvars.ContextVar[_Current | None] = contextvars.ContextVar("llm_run", default=None)
# What this process already wrote into a run's methods, so a busy run does not rewrite them on every call.
_noted: set[tuple] = set()


def run_record(scope: str) -> RunRecord:
    record, _ = RunRecord.objects.get_or_create(scope=scope)
    return record


@contextlib.contextmanager
def llm_run(scope: str) -> Iterator[RunRecord]:
    """Every AI call inside belongs to the run ``scope``: kept for replay, or answered from the cache when
    the run is a replay. Inside the same run already (a round inside an autonomous turn's task), the record at
    hand serves: it names the run, and what a run is (its mode, what it replays) never changes."""
    current = _current.get()
    record = current.run if current is not None and current.run.scope == scope else run_record(scope)
    token = _current.set(_Current(record))
    prompts_taken()  # templates rendered before the run are not its own
    try:
        yield record
    finally:
        _current.reset(token)


def focus_group_scope(focus_group_id: int) -> str:
    """The run every AI call naming a focus group belongs to."""
    return f"focusgroup:{focus_group_id}"


def current_run(focus_group_id: int | None = None) -> RunRecord | None:
    current = _current.get()
    if current is not None:
        return current.run
    if focus_group_id is not None:
        return run_record(focus_group_scope(focus_group_id))
    return None


# --- keys ------------------------------------------------------------------------------------------------------


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def completion_hash(*, provider: str, snapshot: str, messages: list[dict], params: dict) -> str:
    body = {"v": HASH_VERSION, "kind": "completion", "provider": provider, "model": snapshot}
    body["messages"] = messages
    body["params"] = params
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def embedding_hash(*, provider: str, model: str, texts: list[str], dimensions: int | None) -> str:
    body = {"v": HASH_VERSION, "kind": "embedding", "provider": provider, "model": model}
    body["texts"] = texts
    body["dimensions"] = dimensions
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def vectors_pack(vectors: list[list[float]]) -> str:
    width = len(vectors[0]) if vectors else 0
    flat = [value for vector in vectors for value in vector]
    return f"{width}:" + base64.b64encode(struct.pack(f"<{len(flat)}f", *flat)).decode()


def vectors_unpack(text: str) -> list[list[float]]:
    width_text, _, packed = text.partition(":")
    width = int(width_text)
    raw = base64.b64decode(packed)
    flat = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if not width or len(flat) % width:
        raise ValueError("Cached vectors do not divide into rows")
    return [flat[i : i + width] for i in range(0, len(flat), width)]


# --- keeping and finding ---------------------------------------------------------------------------------------


@dataclass
class Kept:
    """What a live call hands over to be kept."""

    kind: str
    feature: str
    provider: str
    model: str
    snapshot: str
    text: str
    finish_reason: str = ""
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0


def keep(run: RunRecord, request_hash: str, kept: Kept) -> CachedResponse:
    """Store a validated answer as the next draw of its request and note it in the run's ledger."""
    fields = {
        "request_hash": request_hash,
        "kind": kept.kind,
        "feature": kept.feature,
        "provider": kept.provider,
        "model": kept.model,
        "model_snapshot": kept.snapshot[:120],
        "text": kept.text,
        "finish_reason": kept.finish_reason or "",
        "input_tokens": kept.input_tokens,
        "cached_input_tokens": kept.cached_input_tokens,
        "output_tokens": kept.output_tokens,
        "reasoning_tokens": kept.reasoning_tokens,
        "size_bytes": len(kept.text.encode()),
        "created_at": timezone.now(),
        "replays": 0,
    }
    pk, draw = insert_numbered(CachedResponse, "draw", among={"request_hash": request_hash}, values=fields)
    entry = CachedResponse(pk=pk, draw=draw, **fields)
    entry._state.adding = False
    _ledger(run, request_hash, entry, kept.feature, from_cache=False)
    return entry


def _ledger(run: RunRecord, request_hash: str, entry: CachedResponse | None, feature: str, *, from_cache: bool) -> int:
    _, occurrence = insert_numbered(
        RunCall,
        "occurrence",
        among={"run": run.pk, "request_hash": request_hash},
        values={
            "entry": entry.pk if entry is not None else None,
            "feature": feature,
            "from_cache": from_cache,
            "created_at": timezone.now(),
        },
    )
    return occurrence


def find(run: RunRecord, request_hashes: list[str]) -> tuple[str, CachedResponse] | None:
    """The entry that answered the original run's request at this run's next occurrence of it (trying each
    candidate hash: one per model snapshot the original ran), or None."""
    original_id = run.replay_of_id
    if original_id is None:
        return None
    for request_hash in request_hashes:
        occurrence = RunCall.objects.filter(run=run, request_hash=request_hash).count()
        call = (
            RunCall.objects.filter(run_id=original_id, request_hash=request_hash, occurrence=occurrence)
            .select_related("entry")
            .first()
        )
        if call is not None and call.entry is not None:
            return request_hash, call.entry
    return None


def used(run: RunRecord, request_hash: str, entry: CachedResponse) -> None:
    """A replayed answer: in this run's ledger, and counted on the entry."""
    _ledger(run, request_hash, entry, entry.feature, from_cache=True)
    CachedResponse.objects.filter(pk=entry.pk).update(replays=F("replays") + 1, last_replayed_at=timezone.now())


def discard(entry: CachedResponse) -> None:
    """An entry that no longer validates is deleted, never replayed (its uses lose their entry)."""
    logger.warning("Discarding cached answer %s (%s): it no longer validates", entry.pk, entry.feature)
    CachedResponse.objects.filter(pk=entry.pk).delete()


def count_lookup(*, hit: bool, count: int = 1) -> None:
    if count <= 0:
        return
    today = timezone.localdate()
    field_name = "hits" if hit else "misses"
    if not CacheDay.objects.filter(day=today).update(**{field_name: F(field_name) + count}):
        try:
            with transaction.atomic():
                CacheDay.objects.create(day=today, **{field_name: count})
        except IntegrityError:
            CacheDay.objects.filter(day=today).update(**{field_name: F(field_name) + count})


def keep_vector(run: RunRecord, request_hash: str, vector: list[float], *, feature: str, provider: str, model: str):
    """A text's embedding, kept once (embeddings do not vary between draws), and noted in the run's ledger."""
    packed = vectors_pack([vector])
    entry, _ = CachedResponse.objects.get_or_create(
        request_hash=request_hash,
        draw=0,
        defaults={
            "kind": CacheKind.EMBEDDING,
            "feature": feature,
            "provider": provider,
            "model": model,
            "model_snapshot": model,
            "text": packed,
            "size_bytes": len(packed),
        },
    )
    _ledger(run, request_hash, entry, feature, from_cache=False)
    return entry


def vector_entries(request_hashes: list[str]) -> dict[str, CachedResponse]:
    """The kept embedding of each hash that has one. A replay of embeddings follows no ledger: any kept
    vector of the same text, model and size is the same vector."""
    entries: dict[str, CachedResponse] = {}
    unique = list(dict.fromkeys(request_hashes))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        for entry in CachedResponse.objects.filter(request_hash__in=chunk, draw=0, kind=CacheKind.EMBEDDING):
            entries[entry.request_hash] = entry
    return entries


def snapshots_for(run: RunRecord, *, alias: str, provider: str, model: str) -> list[str]:
    """The snapshots the original run got for ``alias`` when it was configured as it is now (the same
    provider and model); none when the configuration changed, so the replay misses."""
    original = run.replay_of
    if original is None:
        return []
    entry = (original.methods.get("models") or {}).get(alias) or {}
    if entry.get("provider") != provider or entry.get("model") != model:
        return []
    return list(entry.get("snapshots") or [])


# --- methods on record -----------------------------------------------------------------------------------------


def _merge(run: RunRecord, section: str, values: dict[str, Any]) -> None:
    """Set ``values`` (key → value) in a section of the run's methods, all under one lock of its row; the key ""
    sets the whole section (the anchor set's version is a string, not a dict)."""
    fresh = {key: value for key, value in values.items() if (run.pk, section, key, canonical(value)) not in _noted}
    if not fresh:
        return
    with transaction.atomic():
        locked = RunRecord.objects.select_for_update().get(pk=run.pk)
        methods = dict(locked.methods or {})
        for key, value in fresh.items():
            methods[section] = {**(methods.get(section) or {}), key: value} if key else value
        if methods != locked.methods:
            locked.methods = methods
            locked.save(update_fields=["methods"])
        run.methods = methods
    _noted.update((run.pk, section, key, canonical(value)) for key, value in fresh.items())


def note_model(run: RunRecord, *, alias: str, provider: str, model: str, snapshot: str) -> None:
    existing = ((run.methods.get("models") or {}).get(alias)) or {}
    snapshots = list(existing.get("snapshots") or [])
    if existing.get("provider") == provider and existing.get("model") == model and snapshot in snapshots:
        return
    if existing.get("provider") != provider or existing.get("model") != model:
        snapshots = []
    snapshots = sorted({*snapshots, snapshot})
    _merge(run, "models", {alias: {"provider": provider, "model": model, "snapshots": snapshots}})


def note_prompts(run: RunRecord, prompts: tuple[tuple[str, str], ...]) -> None:
    # The prompts of one call in one locked update: a call renders two or three templates, each was a transaction.
    noted = run.methods.get("prompts") or {}
    _merge(run, "prompts", {name: template_hash for name, template_hash in prompts if noted.get(name) != template_hash})


def note_embedding_model(run: RunRecord, *, provider: str, model: str) -> None:
    _merge(run, "embedding", {"": {"provider": provider, "model": model}})


def note(scope: str, section: str, key: str, value) -> None:
    """A product's own facts about how a run was made (seeds, the anchor set's version)."""
    _merge(run_record(scope), section, {key: value})


# --- what a replay needs, and the admin's numbers --------------------------------------------------------------


@dataclass
class ReplayPlan:
    calls: int
    missing: int
    features: dict[str, int] = field(default_factory=dict)  # missing per feature

    @property
    def complete(self) -> bool:
        return self.calls > 0 and self.missing == 0


def replay_refusal(plan: ReplayPlan, *, what: str, charged_like: str, allow_live: bool) -> None:
    """Refuse a replay that cannot give what the original got: nothing on record, or answers the cache no
    longer holds when the replay may not ask the AI for them. ``what``: "session", "run", "validation";
    ``charged_like``: what a partly live replay is charged like ("a run")."""
    if not plan.calls:
        raise ApplicationError(
            f"This {what} has no AI answers on record to replay (it ran before exact replay existed).",
            code="nothing_to_replay",
            status_code=409,
        )
    if plan.missing and not allow_live:
        raise ApplicationError(
            f"{plan.missing} of the {plan.calls} AI answers this {what} got are no longer in the cache (they "
            "expired, or failed a check). Replay the rest from the cache and ask the AI for the missing ones "
            f"(charged like {charged_like}), or keep the {what} as it is.",
            code="replay_incomplete",
            status_code=409,
            extra={"missing": plan.missing, "calls": plan.calls},
        )


def replay_plan(scope: str) -> ReplayPlan:
    """How many of the run's answers the cache still holds: what a replay can give without the provider."""
    record = RunRecord.objects.filter(scope=scope).first()
    if record is None:
        return ReplayPlan(calls=0, missing=0)
    calls = RunCall.objects.filter(run=record)
    missing_rows = calls.filter(entry__isnull=True)
    features: dict[str, int] = {}
    for feature in missing_rows.values_list("feature", flat=True):
        features[feature] = features.get(feature, 0) + 1
    return ReplayPlan(calls=calls.count(), missing=missing_rows.count(), features=features)


def replay_prepare(*, original_scope: str, scope: str, allow_live: bool) -> RunRecord:
    """The run record of a replay of ``original_scope``, made before its first call."""
    original = run_record(original_scope)
    mode = ReplayMode.REPLAY_THEN_LIVE if allow_live else ReplayMode.REPLAY
    record, created = RunRecord.objects.get_or_create(scope=scope, defaults={"replay_of": original, "mode": mode})
    if not created:
        RunRecord.objects.filter(pk=record.pk).update(replay_of=original, mode=mode)
        record.refresh_from_db()
    return record


@dataclass
class CacheSummary:
    entries: int
    size_bytes: int
    oldest: object
    hits: int
    misses: int
    days: int

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return None if not total else self.hits / total


def cache_summary(*, days: int = 30) -> CacheSummary:
    totals = CachedResponse.objects.aggregate(size=Sum("size_bytes"))
    since = timezone.localdate() - timedelta(days=days - 1)
    lookups = CacheDay.objects.filter(day__gte=since).aggregate(hits=Sum("hits"), misses=Sum("misses"))
    oldest = CachedResponse.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return CacheSummary(
        entries=CachedResponse.objects.count(),
        size_bytes=totals["size"] or 0,
        oldest=oldest,
        hits=lookups["hits"] or 0,
        misses=lookups["misses"] or 0,
        days=days,
    )


def cache_expire(*, days: int, now=None) -> int:
    """Delete answers older than ``days``: the runs that used them keep their ledger, so a later replay can
    say how many are gone."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = CachedResponse.objects.filter(Q(created_at__lt=cutoff)).delete()
    return deleted


__all__ = [
    "CacheKind",
    "Kept",
    "ReplayMode",
    "ReplayPlan",
    "cache_expire",
    "cache_summary",
    "completion_hash",
    "count_lookup",
    "current_run",
    "discard",
    "embedding_hash",
    "find",
    "keep",
    "keep_vector",
    "llm_run",
    "note",
    "note_embedding_model",
    "note_model",
    "note_prompts",
    "replay_plan",
    "replay_prepare",
    "run_record",
    "snapshots_for",
    "used",
    "vector_entries",
    "vectors_pack",
    "vectors_unpack",
]
