"""Where an autonomous run is in the discussion guide, and when it moves on.

Each section of the guide has a turn budget (scaled down when the run's budget is smaller) shared by
its questions; a question moves on when the moderator says so or runs one turn past its share."""

from focusgroups.models import AutonomousRun


def position(run: AutonomousRun, sections: list[dict]) -> tuple[dict, dict, dict | None]:
    section = sections[min(run.section_index, len(sections) - 1)]
    questions = section["questions"]
    question = questions[min(run.question_index, len(questions) - 1)]
    if run.question_index + 1 < len(questions):
        following = questions[run.question_index + 1]
    elif run.section_index + 1 < len(sections):
        following = sections[run.section_index + 1]["questions"][0]
    else:
        following = None
    return section, question, following


def section_budget(run: AutonomousRun, sections: list[dict], index: int | None = None) -> int:
    """The turns the guide gives a section, scaled down when the run's budget is smaller than the guide's."""
    index = run.section_index if index is None else index
    if index >= len(sections):
        return 0
    budgets = [int(s.get("turn_budget") or 0) for s in sections]
    if not all(budgets):
        return max(1, round(run.turn_budget / len(sections)))
    total = sum(budgets)
    scale = min(1.0, run.turn_budget / total) if total else 1.0
    return max(1, round(budgets[index] * scale))


def question_target(run: AutonomousRun, sections: list[dict]) -> int:
    """Turns to aim for on each question: the section's budget shared by its questions."""
    section = sections[min(run.section_index, len(sections) - 1)]
    return max(1, round(section_budget(run, sections) / max(1, len(section["questions"]))))


def question_floor(run: AutonomousRun, sections: list[dict]) -> int:
    """The turns a question gets before the moderator may move on: half its share of the section."""
    return -(-question_target(run, sections) // 2)


def advance(run: AutonomousRun, action: str, sections: list[dict], answered: int = 1) -> bool:
    """Move through the guide; return True when the guide is finished.

    A question moves on when the moderator says so or runs one turn past its share; a section
    ends when its questions are done or its turn budget is spent, so every section of the guide
    gets its turns instead of the first one taking them all. ``answered``: the answers this step
    saved (a round of the table counts each of them)."""
    last_of_section = run.question_index + 1 >= len(sections[run.section_index]["questions"])
    # A "next question" step asked the next question and got its first answers: they count for it.
    asked = max(1, answered) if action == "next_question" else 0
    if run.section_turns >= section_budget(run, sections):
        run.section_index += 1
        run.question_index = 0
        # The line asked the next section's first question only if this was the section's last question.
        run.question_turns = run.section_turns = asked if last_of_section else 0
    elif action == "next_question" or run.question_turns >= question_target(run, sections) + 1:
        run.question_turns = asked
        run.question_index += 1
        if run.question_index >= len(sections[run.section_index]["questions"]):
            run.question_index = 0
            run.section_turns = asked
            run.section_index += 1
    return run.section_index >= len(sections)
