"""A validation's scorecard: the humans' answers (every respondent of the reference) beside the matched
panel's, question by question and by each mapped demographic, with the baselines and the verdict
(``validation/scorecard.py`` holds the statistics).

A scale question that survey mode rated by semantic similarity has one rating distribution per
respondent; each respondent's answer is drawn from it (seeded), so the synthetic side is a sample of
answers like the human side, not a set of averages (which would shrink its variance)."""

from collections import defaultdict

import numpy as np

from surveys.models import SCALE_POINTS, Answer, AnswerStatus, Respondent, RespondentState
from validation.models import Validation
from validation.open_ended import compare_open
from validation.reference import ReferenceTable, demographic_values, responses
from validation.scorecard import question_card, subgroup_cards, verdict

VERSION = 1


def _values(item: dict) -> list[str]:
    return [str(value) for value in (item.get("scale") or item.get("options") or [])]


def _human(table: ReferenceTable, mapping: dict, item: dict) -> list[int | None]:
    """One answer per reference row, as an option index (None: missing)."""
    values = _values(item)
    answers: list[int | None] = []
    for value in responses(table, mapping, item):
        if value is None:
            answers.append(None)
        elif isinstance(value, int):
            answers.append(value)
        else:
            answers.append(values.index(str(value)) if str(value) in values else None)
    return answers


def _synthetic(frozen: dict, values: list[str], answers: list[Answer], rng) -> dict[int, int]:
    """Respondent id → the option index they answered."""
    picked: dict[int, int] = {}
    for answer in answers:
        if frozen["kind"] in SCALE_POINTS and answer.pmf:
            pmf = np.asarray(answer.pmf, dtype=float)
            picked[answer.respondent_id] = int(rng.choice(len(pmf), p=pmf / pmf.sum()))
        elif answer.choices and answer.choices[0] in values:
            picked[answer.respondent_id] = values.index(answer.choices[0])
    return picked


def _sampled(respondent: Respondent, dimension: str) -> str:
    for item in respondent.profile.get("sampled") or []:
        if item.get("key") == dimension:
            return str(item.get("value"))
    return "Not stated"


def scorecard_compute(validation: Validation) -> dict:
    reference = validation.reference
    assert reference is not None and validation.run is not None
    table = ReferenceTable.from_json(reference.table)
    mapping = validation.mapping
    run = validation.run
    respondents = {r.pk: r for r in Respondent.objects.filter(run=run, state=RespondentState.DONE)}
    by_question: dict[int, list[Answer]] = defaultdict(list)
    for answer in Answer.objects.filter(respondent_id__in=list(respondents), status=AnswerStatus.OK):
        by_question[answer.question_id].append(answer)
    demographics = demographic_values(table, mapping)
    dimensions = [(d["dimension"], d.get("label") or d["dimension"]) for d in mapping.get("demographics", [])]
    rng = np.random.default_rng(validation.seed)
    cards, open_questions = [], []
    for index, (item, frozen) in enumerate(zip(mapping.get("questions", []), run.questions, strict=False)):
        label = item.get("label") or item.get("text") or item["column"]
        if item["kind"] == "open":
            texts = [text for text in responses(table, mapping, item) if text]
            compared = compare_open(run=run, question=frozen, human_texts=texts, user=validation.owner)
            open_questions.append({"label": label, "column": item["column"], **compared})
            continue
        values = _values(item)
        kind = "scale" if item["kind"] == "scale" else "choice"
        human = _human(table, mapping, item)
        synthetic = _synthetic(frozen, values, by_question.get(frozen["id"], []), rng)
        seed = validation.seed + index
        card = question_card(
            label,
            kind,
            [h for h in human if h is not None],
            list(synthetic.values()),
            len(values),
            options=values,
            seed=seed,
        )
        card["column"] = item["column"]
        card["subgroups"] = {}
        for dimension, dimension_label in dimensions:
            human_rows = [(demographics[row][dimension], h) for row, h in enumerate(human) if h is not None]
            synthetic_rows = [(_sampled(respondents[rid], dimension), s) for rid, s in synthetic.items()]
            card["subgroups"][dimension_label] = subgroup_cards(
                label, kind, human_rows, synthetic_rows, len(values), options=values, dimension=dimension, seed=seed
            )
        cards.append(card)
    return {
        "version": VERSION,
        "reference": {"name": validation.reference_name, "respondents": len(table.rows)},
        "synthetic": {"respondents": len(respondents), "asked": validation.size},
        "questions": cards,
        "open_questions": open_questions,
        "verdict": verdict(cards),
    }
