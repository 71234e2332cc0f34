"""Validations written out: where one is (its steps, for the pages and the API), its scorecard shaped for the
page (bars, measures beside their baselines, subgroups), as CSV rows, and as one JSON document."""

import json
import math
from typing import Any

from django.urls import reverse

from cohorta.jobs.models import JobState
from llm.methods import method_rows, replay_original_scope, rows_against, run_methods
from validation.models import Validation, ValidationState
from validation.scorecard import BASELINE_DRAWS, MEASURES, SPLIT_HALF_REPEATS

KIND_LABELS = {"scale": "Rating scale", "choice": "Choice", "open": "Open text"}
BASELINES = ("uniform", "majority", "ceiling")
BASELINE_LABELS = {
    "uniform": "Uniform guess",
    "majority": "Majority answer",
    "ceiling": "Humans vs humans",
}
STEPS = (ValidationState.PANEL, ValidationState.SURVEY, ValidationState.SCORING)
# Each measure as the scorecard shows it: (its key, its name, what it says).
MEASURE_TEXTS = (
    ("ks_similarity", "KS similarity", "1 − the largest gap between the two cumulative shares; 1 = the same."),
    ("jsd", "Jensen-Shannon divergence", "How different the shares are, in bits; 0 = the same, 1 = disjoint."),
    ("tvd", "Total variation distance", "The share of answers that would have to move; 0 = the same."),
    ("mean_synthetic", "Mean answer", "The average position on the scale (1 = its first point)."),
    ("variance_ratio", "Variance ratio", "Spread of the answers ÷ the humans'; 1 = as spread out."),
    ("welch_t", "Welch's t", "Mean difference (synthetic − human) over its standard error; 0 = same mean."),
    ("welch_p", "Welch's p", "How likely a mean difference this large is by chance alone."),
    ("tau_b", "Kendall's τ_b", "Do both rank the options the same way by popularity? 1 = yes, −1 = reversed."),
)


# --- numbers -------------------------------------------------------------------------------------------


def number(value, digits: int = 2) -> str:
    """A measure as the page shows it: fixed decimals, a real minus sign, “—” when it does not apply."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text = f"{float(value):.{digits}f}"
    if text.startswith("-"):
        text = "−" + text[1:]
        if float(text[1:]) == 0:
            text = text[1:]
    return text


def p_value(value) -> str:
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else number(value, 3)


def _similarity(values: dict | None, on: str) -> float | None:
    """What the normalised score is taken on: the KS similarity, or 1 − TVD for a choice question."""
    if not values:
        return None
    if on == "ks_similarity":
        return values.get("ks_similarity")
    tvd = values.get("tvd")
    return None if tvd is None else 1.0 - tvd


# --- where a validation is ----------------------------------------------------------------------------


def _job_progress(job) -> dict:
    if job is None:
        return {"done": 0, "total": 0, "percent": 0, "message": "", "state": "", "active": False}
    total = job.progress_total or 0
    done = min(job.progress_done or 0, total) if total else 0
    return {
        "done": done,
        "total": total,
        "percent": round(100 * done / total) if total else 0,
        "message": job.progress_message or "",
        "state": job.state,
        "active": job.is_active,
    }


def validation_status(validation: Validation) -> dict:
    """The validation's steps (the matched panel, the questions, the scoring), each ``done``, ``current``,
    ``waiting`` or ``failed``, with its progress and the page to follow it on; and whether it is still going."""
    state = validation.state
    panel, run = validation.panel, validation.run
    order = [step.value for step in STEPS]
    failed_at = None
    if state == ValidationState.FAILED:
        # Where it stopped: the first step whose work is not done.
        if run is None:
            failed_at = ValidationState.PANEL.value
        elif run.job is None or run.job.state != JobState.DONE:
            failed_at = ValidationState.SURVEY.value
        else:
            failed_at = ValidationState.SCORING.value
    steps = []
    for step in STEPS:
        if state == ValidationState.DONE:
            status = "done"
        elif failed_at is not None:
            position, stopped = order.index(step.value), order.index(failed_at)
            status = "done" if position < stopped else "failed" if position == stopped else "waiting"
        else:
            position, now = order.index(step.value), order.index(state)
            status = "done" if position < now else "current" if position == now else "waiting"
        item: dict[str, Any] = {
            "key": step.value,
            "label": step.label,
            "status": status,
            "url": "",
            "link": "",
            "progress": None,
        }
        if step == ValidationState.PANEL and panel is not None:
            item.update(
                url=reverse("panels:detail", args=[panel.pk]),
                link="the matched panel",
                progress=_job_progress(panel.job),
            )
        elif step == ValidationState.SURVEY and run is not None:
            item.update(
                url=reverse("surveys:run", args=[run.pk]), link="the survey run", progress=_job_progress(run.job)
            )
        steps.append(item)
    current = next((item for item in steps if item["status"] == "current"), None)
    return {
        "state": state,
        "label": validation.get_state_display(),
        "active": state in order,
        "steps": steps,
        "current": current,
        "failed_at": failed_at,
        "can_rescore": can_rescore(validation, failed_at=failed_at),
    }


def validation_links(validation: Validation) -> dict:
    """Where to follow a validation: its page, its panel's and run's pages and API, its scorecard's exports."""
    done = validation.state == ValidationState.DONE
    return {
        "page": reverse("validation:detail", args=[validation.pk]),
        "panel": reverse("panels:detail", args=[validation.panel_id]) if validation.panel_id else None,
        "panel_api": reverse("api:panel-detail", args=[validation.panel_id]) if validation.panel_id else None,
        "run": reverse("surveys:run", args=[validation.run_id]) if validation.run_id else None,
        "run_api": reverse("api:survey-run-detail", args=[validation.run_id]) if validation.run_id else None,
        "scorecard": reverse("api:validation-scorecard", args=[validation.pk]) if done else None,
        "scorecard_csv": reverse("api:validation-scorecard-csv", args=[validation.pk]) if done else None,
    }


def can_rescore(validation: Validation, *, failed_at: str | None = None) -> bool:
    """“Score again” makes sense once every answer is in: a done validation, or one stopped at the scoring."""
    if validation.reference_id is None or validation.run_id is None:
        return False
    if validation.state == ValidationState.DONE:
        return True
    return validation.state == ValidationState.FAILED and failed_at == ValidationState.SCORING.value


def verdict_passed(validation: Validation) -> bool | None:
    """Whether the verdict passed (None until scored). Lists annotate ``verdict_passed`` rather than load the
    whole scorecard."""
    if validation.state != ValidationState.DONE:
        return None
    if hasattr(validation, "verdict_passed"):
        return bool(validation.verdict_passed)
    return bool(((validation.scorecard or {}).get("verdict") or {}).get("passed"))


def rule_text(rule: dict) -> str:
    share = rule.get("beats_uniform_share", 0.8)
    mean = rule.get("mean_normalised", 0.5)
    low, high = (rule.get("variance_ratio") or [0.7, 1.4])[:2]
    return (
        f"The panel passes when it beats a uniform guess on at least {share:.0%} of the questions, its mean "
        f"normalised score (each question's capped to −1 and 1) is at least {number(mean, 1)}, and the median variance "
        f"ratio of its rating questions is between {number(low, 1)} and {number(high, 1)} (its answers as spread "
        "out as the humans')."
    )


# --- the scorecard as the page shows it ------------------------------------------------------------------


def _chart(card: dict) -> list[dict]:
    human, synthetic = card.get("human_shares") or [], card.get("synthetic_shares") or []
    top = max([*human, *synthetic, 0.0001])
    rows = []
    for index, option in enumerate(card.get("options") or []):
        h = human[index] if index < len(human) else 0.0
        s = synthetic[index] if index < len(synthetic) else 0.0
        rows.append(
            {
                "option": option,
                "position": index + 1,
                "human": round(100 * h, 1),
                "synthetic": round(100 * s, 1),
                "human_width": round(100 * h / top, 1),
                "synthetic_width": round(100 * s / top, 1),
                "gap": round(100 * (s - h), 1),
                "gap_text": ("+" if round(100 * (s - h), 1) > 0 else "") + number(100 * (s - h), 1),
            }
        )
    return rows


def _measure_rows(card: dict) -> list[dict]:
    measures = card.get("measures") or {}
    baselines = card.get("baselines") or {}
    k = len(card.get("options") or [])

    def row(key: str, label: str, hint: str, fmt=number, shift: float = 0.0) -> dict:
        def value(values):
            raw = (values or {}).get(key)
            return fmt(None if raw is None else raw + shift)

        return {
            "key": key,
            "label": label,
            "hint": hint,
            "ours": value(measures),
            **{name: value(baselines.get(name)) for name in BASELINES},
            "empty": all((source or {}).get(key) is None for source in [measures, *baselines.values()]),
        }

    mean_human = measures.get("mean_human")
    first, last = (card.get("options") or ["", ""])[0], (card.get("options") or ["", ""])[-1]
    rows = []
    for key, label, hint in MEASURE_TEXTS:
        if key == "mean_synthetic":
            humans = f" (humans: {number(mean_human + 1)})" if mean_human is not None else ""
            rows.append(row(key, label + humans, f"On 1 = “{first}” to {k} = “{last}”.", shift=1.0))
        else:
            rows.append(row(key, label, hint, fmt=p_value if key == "welch_p" else number))
    return [r for r in rows if not r["empty"]]


def _normalised(card: dict) -> dict:
    on = card.get("normalised_on") or "ks_similarity"
    baselines = card.get("baselines") or {}
    ours = _similarity(card.get("measures"), on)
    uniform = _similarity(baselines.get("uniform"), on)
    ceiling = _similarity(baselines.get("ceiling"), on)
    score = card.get("normalised")
    display = card.get("normalised_display")
    formula = ""
    if score is not None and None not in (ours, uniform, ceiling):
        formula = f"({number(ours)} − {number(uniform)}) ÷ ({number(ceiling)} − {number(uniform)}) = {number(score)}"
    return {
        "on": "KS similarity" if on == "ks_similarity" else "1 − total variation distance",
        "on_formula": "KS similarity" if on == "ks_similarity" else "(1 − TVD)",
        "score": score,
        "text": number(score),
        "width": round(100 * display, 1) if display is not None else 0,
        "formula": formula,
        "ours": number(ours),
        "uniform": number(uniform),
        "ceiling": number(ceiling),
    }


def _subgroup_row(card: dict) -> dict:
    on = card.get("normalised_on") or "ks_similarity"
    baselines = card.get("baselines") or {}
    return {
        "value": card.get("value"),
        "n_human": card.get("n_human", 0),
        "n_synthetic": card.get("n_synthetic", 0),
        "too_small": bool(card.get("too_small")),
        "similarity": number(_similarity(card.get("measures"), on)),
        "uniform": number(_similarity(baselines.get("uniform"), on)),
        "ceiling": number(_similarity(baselines.get("ceiling"), on)),
        "normalised": number(card.get("normalised")),
        "beats_uniform": card.get("beats_uniform"),
        "notes": card.get("notes") or [],
    }


def _subgroups(card: dict, dimension_order: list[str]) -> list[dict]:
    groups = card.get("subgroups") or {}
    order = {label: i for i, label in enumerate(dimension_order)}
    ordered = sorted(groups.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
    return [
        {
            "label": label,
            "rows": [_subgroup_row(item) for item in items],
            "compared": sum(not i.get("too_small") for i in items),
        }
        for label, items in ordered
    ]


def scorecard_page(validation: Validation) -> dict:
    """The scorecard with what the page draws: each question's bars, measures beside the baselines, the
    normalised score explained, and the subgroups; questions in the reference's order."""
    card = validation.scorecard or {}
    mapping = validation.mapping or {}
    wording = {q.get("column"): q.get("text") or "" for q in mapping.get("questions") or []}
    dimension_order = [d.get("label") or d.get("dimension") for d in mapping.get("demographics") or []]
    questions = []
    for number_, question in enumerate(card.get("questions") or [], start=1):
        questions.append(
            {
                "number": number_,
                "anchor": f"question-{number_}",
                "label": question.get("label"),
                "column": question.get("column"),
                "text": wording.get(question.get("column"), ""),
                "kind": question.get("kind"),
                "kind_label": KIND_LABELS.get(question.get("kind"), question.get("kind")),
                "n_human": question.get("n_human", 0),
                "n_synthetic": question.get("n_synthetic", 0),
                "chart": _chart(question),
                "measures": _measure_rows(question),
                "normalised": _normalised(question),
                "beats_uniform": question.get("beats_uniform"),
                "notes": question.get("notes") or [],
                "subgroups": _subgroups(question, dimension_order),
            }
        )
    verdict = card.get("verdict") or {}
    return {
        "questions": questions,
        "open_questions": card.get("open_questions") or [],
        "verdict": verdict,
        "rule": rule_text(verdict.get("rule") or {}),
        "reference": card.get("reference") or {},
        "synthetic": card.get("synthetic") or {},
        "glossary": [{"label": label, "hint": hint} for _, label, hint in MEASURE_TEXTS],
        "draws": BASELINE_DRAWS,
        "repeats": SPLIT_HALF_REPEATS,
    }


# --- CSV and JSON ----------------------------------------------------------------------------------------


def _raw(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else ""
    return value


def scorecard_csv_header() -> list[str]:
    header = ["Level", "Question", "Column", "Kind", "Demographic", "Group", "Humans (n)", "Synthetic (n)"]
    for measure in MEASURES:
        header += [measure, *(f"{measure} ({name})" for name in BASELINES)]
    return [*header, "Normalised on", "Normalised score", "Beats uniform", "Notes"]


def _csv_row(level: str, card: dict, *, column: str, dimension: str = "", group: str = "") -> list:
    measures = card.get("measures") or {}
    baselines = card.get("baselines") or {}
    row = [
        level,
        card.get("label", ""),
        column,
        card.get("kind", ""),
        dimension,
        group,
        card.get("n_human", ""),
        card.get("n_synthetic", ""),
    ]
    for measure in MEASURES:
        row.append(_raw(measures.get(measure)))
        row += [_raw((baselines.get(name) or {}).get(measure)) for name in BASELINES]
    on = card.get("normalised_on", "")
    row += [
        on if not card.get("too_small") else "",
        _raw(card.get("normalised")),
        _raw(card.get("beats_uniform")) if not card.get("too_small") else "",
        " ".join(card.get("notes") or []),
    ]
    return row


def _open_row(item: dict) -> list:
    """An open-text question: its theme match in the notes (the measures do not apply)."""
    width = len(scorecard_csv_header())
    pairs = "; ".join(f"{pair['human']} = {pair['synthetic']}" for pair in item.get("pairs") or [])
    notes = (
        f"Themes F1 {_raw(item.get('f1'))}, recall {_raw(item.get('recall'))}, precision {_raw(item.get('precision'))}."
        f" Matched: {pairs or 'none'}. Only real people: {'; '.join(item.get('unmatched_human') or []) or 'none'}."
        f" Only the panel: {'; '.join(item.get('unmatched_synthetic') or []) or 'none'}."
    )
    row: list = ["open", item.get("label", ""), item.get("column", ""), "open", "", ""]
    row += [item.get("human_answers", ""), item.get("synthetic_answers", "")]
    return [*row, *([""] * (width - len(row) - 1)), notes]


def scorecard_csv_rows(validation: Validation) -> list[list]:
    """One row per question, then one per subgroup of it (every demographic's groups, the ones too small to
    compare included, with their counts), with every measure beside the same measure for each baseline."""
    rows: list[list] = []
    for question in (validation.scorecard or {}).get("questions") or []:
        column = question.get("column", "")
        rows.append(_csv_row("question", question, column=column))
        for dimension, cards in (question.get("subgroups") or {}).items():
            for card in cards:
                row = {"kind": question.get("kind", ""), **card}
                rows.append(
                    _csv_row("subgroup", row, column=column, dimension=dimension, group=str(card.get("value", "")))
                )
    rows += [_open_row(item) for item in (validation.scorecard or {}).get("open_questions") or []]
    return rows


def validation_document(validation: Validation) -> dict:
    """Everything needed to read (or redo) a validation: what it compared with (the reference's name and the
    mapping as it was), the seed, the matched panel and the run, and the whole scorecard."""
    return {
        "validation": {
            "id": validation.pk,
            "state": validation.state,
            "state_label": validation.get_state_display(),
            "error": validation.error,
            "size": validation.size,
            "seed": validation.seed,
            "created_at": validation.created_at.isoformat(),
            "finished_at": validation.finished_at.isoformat() if validation.finished_at else None,
        },
        "reference": {"id": validation.reference_id, "name": validation.reference_name},
        "mapping": validation.mapping,
        "seed": validation.seed,
        "panel_id": validation.panel_id,
        "survey_id": validation.survey_id,
        "run_id": validation.run_id,
        "scorecard": validation.scorecard or {},
        # How each part was made (model snapshots per alias, prompt template hashes, the embedding model, the
        # anchor set, seeds), by part; and the validation it replays, if it is an exact replay.
        "methods": {label: run_methods(scope) for label, scope in methods_parts(validation)},
        "replay_of": replay_original_scope(f"validation:{validation.pk}"),
    }


def methods_parts(validation: Validation) -> list[tuple[str, str]]:
    """(what it is, the scope its AI calls are kept under) for each part of a validation."""
    parts = [("Matched panel", f"panel:{validation.panel_id}")] if validation.panel_id else []
    if validation.run_id:
        parts.append(("Questions asked", f"surveyrun:{validation.run_id}"))
    parts.append(("Scoring", f"validation:{validation.pk}"))
    return parts


def methods_groups(validation: Validation) -> list[dict]:
    """The Methods block: each part's rows, marked where they differ from the original's for a replay."""
    parts = [(label, method_rows(run_methods(scope))) for label, scope in methods_parts(validation)]
    original_scope = replay_original_scope(f"validation:{validation.pk}")
    original = Validation.objects.filter(pk=int(original_scope.partition(":")[2])).first() if original_scope else None
    if original is not None:
        theirs = {label: method_rows(run_methods(scope)) for label, scope in methods_parts(original)}
        parts = [(label, rows_against(rows, theirs.get(label, []))) for label, rows in parts]
    return [{"label": label, "rows": rows} for label, rows in parts]


def json_bytes(data) -> bytes:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str).encode()
