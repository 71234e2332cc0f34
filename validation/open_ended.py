"""Open-ended answers: the themes real people voiced beside the synthetic panel's, matched by meaning.

Both sides go through the same theme finding (survey mode's prompt, parts and checks: surveys/themes.py),
so a difference is in the answers, not in the method; then the two lists of theme titles are matched one
to one by embedding similarity (``themes_match.match_themes``): precision, recall, F1 and what was left
unmatched on each side."""

from collections import Counter

import numpy as np
from django.conf import settings

from llm.gateway import complete, embed
from surveys.models import Answer, AnswerStatus, RespondentState, Run
from surveys.themes import (
    FEATURE,
    MIN_ANSWERS,
    OpenAnswer,
    merge_part,
    one_line,
    part_clean,
    parts_of,
    question_summary,
    themes_prompt,
    themes_schema,
)
from validation.themes_match import match_themes

EMBEDDING_FEATURE = "validation_themes"
# Most texts are alike under a small local model (e5: 0.75–0.85 for unrelated sentences); OpenAI's
# text-embedding-3 models spread them far lower. Themes count as the same above these.
THRESHOLD_LOCAL = 0.9
THRESHOLD_API = 0.6


def find_themes(*, run: Run, question: dict, texts: list[str], user, job=None) -> dict:
    """Themes of ``texts`` (answers to ``question``) as survey mode finds them: ``question_summary``'s shape."""
    answers = [OpenAnswer(index, f"Respondent {index}", one_line(text)) for index, text in enumerate(texts, 1) if text]
    if len(answers) < MIN_ANSWERS:
        return {"answers": len(answers), "parts": 0, "themes": []}
    parts = parts_of(answers)
    merged: dict[str, dict] = {}
    dropped: Counter = Counter()
    from_count = 1
    for index, part in enumerate(parts, start=1):
        known = [{"title": theme["title"], "description": theme["description"]} for theme in merged.values()]
        prompt = themes_prompt(
            run, question, part, index=index, parts=len(parts), first=from_count, total=len(answers), known=known
        )
        result = complete(
            feature=FEATURE,
            messages=[{"role": "user", "content": prompt}],
            schema=themes_schema(),
            schema_name=FEATURE,
            user=user,
            job=job,
        )
        themes, lost = part_clean(result.data, part)
        dropped.update(lost)
        merge_part(merged, themes, part, dropped)
        from_count += len(part)
    return question_summary(merged, answers=len(answers), parts=len(parts), dropped=dropped)


def synthetic_texts(run: Run, question_id: int) -> list[str]:
    answers = Answer.objects.filter(
        respondent__run=run, respondent__state=RespondentState.DONE, question_id=question_id, status=AnswerStatus.OK
    ).order_by("respondent__position", "respondent_id")
    return [answer.text for answer in answers]


def compare_open(*, run: Run, question: dict, human_texts: list[str], user) -> dict:
    """Each side's themes and how they match."""
    human = find_themes(run=run, question=question, texts=human_texts, user=user)
    synthetic = find_themes(run=run, question=question, texts=synthetic_texts(run, question["id"]), user=user)

    def vectors(texts: list[str]) -> np.ndarray:
        return np.asarray(embed(feature=EMBEDDING_FEATURE, texts=texts, user=user), dtype=float)

    threshold = THRESHOLD_API if settings.OPENAI_API_KEY else THRESHOLD_LOCAL
    matched = match_themes(
        [theme["title"] for theme in human["themes"]],
        [theme["title"] for theme in synthetic["themes"]],
        vectors,
        threshold=threshold,
    )
    return {
        "human_themes": [{"title": t["title"], "share": t["share"]} for t in human["themes"]],
        "synthetic_themes": [{"title": t["title"], "share": t["share"]} for t in synthetic["themes"]],
        "human_answers": human["answers"],
        "synthetic_answers": synthetic["answers"],
        **matched,
    }
