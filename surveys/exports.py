"""CSV and JSON exports of a run: a row per respondent × question (text, distribution, expected
value, the number stated directly, the choice, the order shown), and the statistics (with the themes of
the open answers, in the JSON).

The CSV starts with a UTF-8 byte-order mark: without it Excel reads the file in the local code page and
shows "£" and accented names as mojibake. A distribution is written as ``point:share`` pairs
("1:0.0558 | 2:0.1601 | …"), so a cell says which share belongs to which point."""

import csv
import io
import json
from collections.abc import Callable

from llm.methods import replay_original_scope, run_methods
from surveys.models import Answer, LeadingAnswer, RespondentState, Run
from surveys.quality.pages import check_data, latest_check
from surveys.questionnaire import scale_values
from surveys.results import run_results
from surveys.scopes import run_scope
from surveys.selectors import answers_of_run, respondents_of

CSV_HEADER = [
    "respondent_id",
    "persona",
    "age",
    "gender",
    "location",
    "respondent_status",
    "question_id",
    "question_number",
    "question_type",
    "question",
    "position_shown",
    "options_order_shown",
    "answer",
    "answer_status",
    "distribution",
    "expected_value",
    "direct_rating",
    "choices",
    # The run's latest finished quality check (empty without one): the same respondent's answer in the retest,
    # their answer to the question's leading twin, and the judge's scores of them.
    "retest_answer",
    "retest_expected_value",
    "retest_direct_rating",
    "retest_choices",
    "leading_question",
    "leading_answer",
    "leading_expected_value",
    "leading_direct_rating",
    "judge_adherence",
    "judge_consistency",
    "judge_flagged",
]


def _safe(value):
    """Spreadsheets run cells that start with = + - @ as formulas; a quote keeps them text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _distribution(question: dict, pmf: list[float] | None) -> str:
    if not pmf or not question.get("kind"):
        return ""
    points = scale_values(question["kind"])
    return " | ".join(f"{point}:{share:.4f}" for point, share in zip(points, pmf, strict=False))


def _number(value, digits: int = 4):
    return f"{value:.{digits}f}" if value is not None else ""


def _quality_columns(run: Run) -> Callable[[Answer], list]:
    """The quality columns of a row: from the latest finished check, else blank."""
    check = latest_check(run)
    if check is None or not (check.results or {}).get("finished_at"):
        return lambda answer: [""] * 11
    retest = {
        (a.respondent.position, a.question_id): a
        for a in Answer.objects.filter(respondent__run_id=check.retest_run_id, respondent__state=RespondentState.DONE)
        .select_related("respondent")
    } if check.retest_run_id else {}  # fmt: skip
    leading = {(a.respondent_id, a.question_id): a for a in LeadingAnswer.objects.filter(quality_check=check)}
    twins = {key: (twin or {}).get("text", "") for key, twin in (check.twins or {}).items()}
    judged = {row["respondent_id"]: row for row in ((check.results.get("judge") or {}).get("respondents") or [])}

    def columns(answer: Answer) -> list:
        again = retest.get((answer.respondent.position, answer.question_id))
        led = leading.get((answer.respondent_id, answer.question_id))
        judge = judged.get(answer.respondent_id) or {}
        return [
            again.text if again else "",
            _number(again.expected) if again else "",
            again.direct if again and again.direct is not None else "",
            " | ".join(again.choices) if again else "",
            twins.get(str(answer.question_id), "") if led else "",
            led.text if led else "",
            _number(led.expected) if led else "",
            led.direct if led and led.direct is not None else "",
            judge.get("adherence") if judge.get("adherence") is not None else "",
            judge.get("consistency") if judge.get("consistency") is not None else "",
            ("yes" if judge.get("flagged") else "no") if judge.get("adherence") is not None else "",
        ]

    return columns


def export_csv(run: Run) -> str:
    questions = {q["id"]: q for q in run.questions}
    quality_columns = _quality_columns(run)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for answer in answers_of_run(run=run):
        respondent = answer.respondent
        question = questions.get(answer.question_id, {})
        profile = respondent.profile
        row = [
            respondent.pk,
            profile.get("name", ""),
            profile.get("age", ""),
            profile.get("gender", ""),
            profile.get("location", ""),
            respondent.state,
            answer.question_id,
            question.get("number", ""),
            question.get("kind", ""),
            question.get("text", ""),
            answer.shown_position,
            " | ".join(answer.option_order),
            answer.text,
            answer.status,
            _distribution(question, answer.pmf),
            f"{answer.expected:.4f}" if answer.expected is not None else "",
            answer.direct if answer.direct is not None else "",
            " | ".join(answer.choices),
            *quality_columns(answer),
        ]
        writer.writerow([_safe(cell) for cell in row])
    return out.getvalue()


def export_data(run: Run) -> dict:
    answers: dict[int, list] = {}
    for answer in answers_of_run(run=run):
        answers.setdefault(answer.respondent_id, []).append(
            {
                "question_id": answer.question_id,
                "position_shown": answer.shown_position,
                "options_order_shown": answer.option_order,
                "text": answer.text,
                "status": answer.status,
                "distribution": answer.pmf,
                "expected_value": answer.expected,
                "direct_rating": answer.direct,
                "choices": answer.choices,
            }
        )
    return {
        "survey": {"id": run.survey_id, "title": run.title, "intro": run.intro},
        "run": {
            "id": run.pk,
            "panel": run.panel_label,
            "created_at": run.created_at.isoformat(),
            "seed": run.seed,
            "randomize_questions": run.randomize_questions,
        },
        "questions": run.questions,
        "respondents": [
            {
                "id": r.pk,
                "persona_id": r.persona_id,
                "profile": {k: r.profile.get(k) for k in ("name", "age", "gender", "location", "occupation")},
                "status": r.state,
                "error": r.error,
                "question_order": r.question_order,
                "simulated": r.simulated,
                "answers": answers.get(r.pk, []),
            }
            for r in respondents_of(run=run)
        ],
        "results": run_results(run),
        # The latest quality check of the run (null without one): state, credits, and its results.
        "quality": check_data(latest_check(run)),
        # How the run was made (model snapshots per alias, prompt template hashes, the embedding model, the
        # anchor set, the seed), and the run it replays, if it is an exact replay.
        "methods": run_methods(run_scope(run)),
        "replay_of": replay_original_scope(run_scope(run)),
    }


def export_json(run: Run) -> str:
    return json.dumps(export_data(run), ensure_ascii=False, indent=1)
