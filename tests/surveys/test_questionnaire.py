"""Questionnaire rules (builder, API and files share them), file import, and the offline survey answers."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cohorta.errors import ApplicationError
from llm.simulator_surveys import survey_answers
from surveys import services
from surveys.io import questionnaire_read
from surveys.questionnaire import question_clean, questions_clean


def test_a_likert_question_without_labels_is_refused_with_what_to_do():
    with pytest.raises(ApplicationError) as exc:
        question_clean({"kind": "likert5", "text": "I like it."})
    assert "needs a label for each point" in exc.value.message
    assert exc.value.extra["fields"]["labels"]
    with pytest.raises(ApplicationError, match="needs 7 labels; it has 2"):
        question_clean({"kind": "likert7", "text": "I like it.", "labels": ["No", "Yes"]})


def test_an_empty_questionnaire_is_refused():
    with pytest.raises(ApplicationError, match="at least one question"):
        questions_clean([])


def test_choice_questions_need_two_distinct_options():
    with pytest.raises(ApplicationError, match="at least 2 options"):
        question_clean({"kind": "single", "text": "Pick", "options": ["Only"]})
    with pytest.raises(ApplicationError, match="Two options are the same"):
        question_clean({"kind": "multiple", "text": "Pick", "options": ["A", "a"]})


def test_anchor_sets_must_fit_the_scale():
    with pytest.raises(ApplicationError, match="Anchor set 1 has 2 statements"):
        question_clean({"kind": "likert5", "text": "x", "labels": list("abcde"), "anchor_sets": [["lo", "hi"]]})
    clean = question_clean({"kind": "nps", "text": "Recommend?", "anchor_preset": "nps11"})
    assert clean["labels"] and clean["direct_elicitation"]


def _file(name: str, text: str):
    return SimpleUploadedFile(name, text.encode())


def test_a_csv_questionnaire_imports():
    data = questionnaire_read(
        _file(
            "oat_milk.csv",
            "type,question,labels,options\nlikert5,It tastes good,SD|D|N|A|SA,\nsingle,Which size?,,Small|Large\n",
        )
    )
    assert data["title"] == "Oat milk"
    assert [q["kind"] for q in data["questions"]] == ["likert5", "single"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("q.json", "{not json", "The JSON is not valid (line 1"),
        ("q.json", json.dumps({"title": "x"}), 'no "questions" list'),
        ("q.csv", "kind,text\nlikert5,Hi\n", "needs a header row"),
        ("q.csv", "type,question\nlikert5,It is good\n", "Question 1: A 5-point Likert question needs a label"),
        ("q.csv", "type,question\nsurvey,Hi\n", "Unknown question type"),
        ("q.json", json.dumps({"questions": []}), "at least one question"),
    ],
)
def test_bad_questionnaire_files_say_what_is_wrong(name, text, message):
    with pytest.raises(ApplicationError) as exc:
        questionnaire_read(_file(name, text))
    assert message in exc.value.message and exc.value.code == "invalid_file"


@pytest.mark.django_db
def test_questions_can_be_reordered(owner):
    survey = services.survey_create(
        owner=owner, title="S", questions=[{"kind": "open", "text": f"Q{i}"} for i in range(3)]
    )
    last = survey.questions.get(text="Q2")
    services.question_move(question=last, direction="up")
    assert [q.text for q in survey.questions.all()] == ["Q0", "Q2", "Q1"]


PROMPT = """ABOUT YOU
- 34, Female, living in Leeds.
{profile}

THE SURVEY
Oat milk

QUESTIONS

### q1 (Likert scale (5 points))
The price of £2.40 a litre is fair.
Scale: 1 = Strongly disagree, 5 = Strongly agree

### q2 (Likert scale (5 points))
I would enjoy the taste.
"""
SCHEMA = {
    "properties": {
        "q1": {"properties": {"answer": {}, "rating": {"enum": [1, 2, 3, 4, 5]}}},
        "q2": {"properties": {"answer": {}, "rating": {"enum": [1, 2, 3, 4, 5]}}},
    }
}


def test_offline_answers_follow_the_profile_and_vary_between_personas():
    thrifty, comfortable, texts = [], [], set()
    for n in range(40):
        frugal = f"- You value: Value for money, saving.\n- How you buy: On a tight budget, hunts for a deal. #{n}"
        relaxed = f"- You value: Quality, craft.\n- How you buy: Buys what she likes. #{n}"
        a = survey_answers(SCHEMA, PROMPT.format(profile=frugal))
        b = survey_answers(SCHEMA, PROMPT.format(profile=relaxed))
        thrifty.append(a["q1"]["rating"])
        comfortable.append(b["q1"]["rating"])
        texts.update([a["q1"]["answer"], b["q1"]["answer"], a["q2"]["answer"]])
    assert sum(thrifty) / 40 < sum(comfortable) / 40 - 1  # price-sensitive people object to the price
    assert len(set(thrifty + comfortable)) >= 3  # not flat
    assert len(texts) > 20  # varied wording
    assert "price" in " ".join(texts).lower()
    assert survey_answers(SCHEMA, "Tell me a joke") is None


OPEN_PROMPT = """ABOUT YOU
- 41, Male, living in Bristol.
{profile}

THE SURVEY
Oat milk

QUESTIONS

### q1 (Open text)
What is the first thing you would want to know before buying it?

### q2 (Open text)
What would make you switch from the milk you buy now?

### q3 (Likert scale (5 points))
I would try it.
Scale: 1 = Strongly disagree, 5 = Strongly agree
"""
OPEN_SCHEMA = {
    "properties": {
        "q1": {"properties": {"answer": {}}},
        "q2": {"properties": {"answer": {}}},
        "q3": {"properties": {"answer": {}}},  # a scale question asked without the number
    }
}


def test_offline_open_answers_say_something_to_what_was_asked_from_the_persona_s_angle():
    frugal = survey_answers(OPEN_SCHEMA, OPEN_PROMPT.format(profile="- You value: Value for money, thrift, a deal."))
    green = survey_answers(OPEN_SCHEMA, OPEN_PROMPT.format(profile="- You value: Sustainability, local, recycling."))
    for answers in (frugal, green):
        opening = answers["q1"]["answer"].split(".")[0].lower()
        assert not any(word in opening for word in ("agree", "disagree", "neutral", "on the fence"))
        sentences = [s.strip() for a in answers.values() for s in a["answer"].split(".") if s.strip()]
        assert len(sentences) == len(set(sentences))  # nobody says the same thing twice
    assert "price" in frugal["q1"]["answer"].lower() or "cost" in frugal["q1"]["answer"].lower()
    assert any(w in green["q2"]["answer"].lower() for w in ("environment", "local", "recycle", "planet"))
    # A scale question asked without the number is still answered with a stance, for SSR to rate.
    assert any(w in frugal["q3"]["answer"].lower() for w in ("agree", "neutral", "on the fence"))
