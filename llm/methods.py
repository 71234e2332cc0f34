"""A run's methods as people read them: one labelled row per fact, and which rows differ between two runs."""

from dataclasses import dataclass

from llm.models import ReplayMode, RunRecord
from usage.providers import provider_label

SECTION_LABELS = {"seeds": "Seed", "anchor_set": "Anchor set", "settings": "Setting"}


@dataclass(frozen=True)
class MethodRow:
    key: str
    label: str
    value: str
    differs: bool = False


def _words(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").strip()


def method_rows(methods: dict | None) -> list[MethodRow]:
    """Models per alias (provider, model, the snapshots the provider ran), the embedding model, each prompt
    template's hash, then the product's own facts (seeds, anchor set)."""
    methods = methods or {}
    rows: list[MethodRow] = []
    for alias, model in sorted((methods.get("models") or {}).items()):
        snapshots = ", ".join(model.get("snapshots") or []) or "not reported"
        value = f"{provider_label(model.get('provider', ''))} · {model.get('model', '?')} (ran {snapshots})"
        rows.append(MethodRow(f"model:{alias}", f"Model, {alias}", value))
    embedding = methods.get("embedding") or {}
    if embedding:
        value = f"{provider_label(embedding.get('provider', ''))} · {embedding.get('model', '?')}"
        rows.append(MethodRow("embedding", "Embedding model", value))
    for name, template_hash in sorted((methods.get("prompts") or {}).items()):
        _, _, template = name.partition(":")
        rows.append(MethodRow(f"prompt:{name}", f"Prompt, {_words(template or name)}", template_hash))
    for section, label in SECTION_LABELS.items():
        part = methods.get(section)
        if isinstance(part, dict):
            for key, value in sorted(part.items()):
                rows.append(MethodRow(f"{section}:{key}", f"{label}, {_words(key)}", str(value)))
        elif part not in (None, ""):
            rows.append(MethodRow(section, label, str(part)))
    return rows


def rows_against(rows: list[MethodRow], reference: list[MethodRow]) -> list[MethodRow]:
    """``rows`` with each one that is missing from, or differs from, ``reference`` marked."""
    known = {row.key: row.value for row in reference}
    return [MethodRow(row.key, row.label, row.value, differs=known.get(row.key) != row.value) for row in rows]


def run_methods(scope: str) -> dict:
    record = RunRecord.objects.filter(scope=scope).first()
    return dict(record.methods) if record is not None else {}


def run_is_replay(scope: str) -> bool:
    return RunRecord.objects.filter(scope=scope).exclude(mode=ReplayMode.LIVE).exists()


def replay_original_scope(scope: str) -> str | None:
    """The scope of the run this one replays, or None for a live run."""
    record = RunRecord.objects.filter(scope=scope).exclude(mode=ReplayMode.LIVE).select_related("replay_of").first()
    if record is None or record.replay_of is None:
        return None
    return record.replay_of.scope
