"""The survey pages as a new user reads them: what to do on an empty page, errors beside what they are
about, human labels, the segment comparison in words, live progress, and exports that open in a
spreadsheet."""

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from billing.services import credits_grant
from cohorta.jobs.models import Job, JobState
from surveys import jobs as survey_jobs
from surveys import services
from surveys.io import EXAMPLE_CSV, questionnaire_read
from surveys.models import Respondent, RespondentState
from surveys.quality.services import check_cost
from surveys.results import run_results
from tests.personas.factories import FolderFactory, PersonaFactory

pytestmark = pytest.mark.django_db(transaction=True)

QUESTIONS = [
    {"kind": "likert5", "text": "I would try it.", "labels": ["SD", "D", "N", "A", "SA"]},
    {"kind": "nps", "text": "Would you recommend it?"},
    {"kind": "single", "text": "Which size?", "options": ["Small", "Large"]},
    {"kind": "multiple", "text": "When?", "options": ["Breakfast", "Lunch", "Dinner"]},
    {"kind": "open", "text": "What would make you switch?"},
]


@pytest.fixture
def researcher(owner, client):
    credits_grant(user=owner, amount=300, idempotency_key="test:fund")
    client.force_login(owner)
    return owner


def _text(response) -> str:
    """What a reader sees: the page without its tags and scripts (the charts' data is not shown)."""
    return _text_of(response.content.decode())


def _panel(owner, ages=(22, 25, 27, 33, 38, 41, 50, 55, 63, 70)):
    folder = FolderFactory(owner=owner, name="Panel")
    for index, age in enumerate(ages):
        PersonaFactory(owner=owner, folder=folder, age=age, gender="female" if index % 2 else "male")
    return folder


def test_an_empty_list_says_how_to_start(researcher, client):
    text = _text(client.get(reverse("surveys:index")))
    assert "No surveys yet" in text and "Add questions" in text and "Run it on a panel" in text
    assert "generate some" in text  # no personas yet: where to get them


def test_the_example_file_downloads_and_imports_as_it_is():
    data = questionnaire_read(SimpleUploadedFile("survey-example.csv", EXAMPLE_CSV.encode()))
    assert [q["kind"] for q in data["questions"]] == ["likert5", "likert7", "nps", "single", "multiple", "open"]


def test_a_bad_import_names_the_file_and_what_to_fix(researcher, client):
    upload = SimpleUploadedFile("mine.csv", b"type,question,labels\nlikert5,I like it,A|B\n")
    response = client.post(reverse("surveys:import"), {"file": upload})
    assert response.status_code == 400
    assert "“mine.csv”: Question 1: A 5-point Likert question needs 5 labels; it has 2." in _text(response)


def test_a_question_error_shows_in_the_add_form_with_the_field_marked(researcher, client):
    survey = services.survey_create(owner=researcher, title="Oat milk")
    response = client.post(
        reverse("surveys:question_add", args=[survey.pk]), {"kind": "single", "text": "Pick", "options": "Only"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    form = html[html.index('id="add-question"') :]
    assert "A choice question needs at least 2 options" in form
    assert re.search(r'class="[^"]*is-invalid[^"]*" id="new-options"[^>]*autofocus', form)


def test_the_builder_speaks_in_human_labels(researcher, client):
    survey = services.survey_create(owner=researcher, title="Oat milk", questions=QUESTIONS)
    services.question_create(
        survey=survey,
        data={
            "kind": "likert5",
            "text": "I'd buy it.",
            "labels": QUESTIONS[0]["labels"],
            "anchor_preset": "purchase_intent5",
        },
    )
    text = _text(client.get(reverse("surveys:detail", args=[survey.pk])))
    assert "rated against purchase intent (5 points)" in text
    assert "Agreement (5 points) (default)" in client.get(reverse("surveys:detail", args=[survey.pk])).content.decode()
    for internal in ("likert5_agreement", "purchase_intent5", "nps11"):
        assert internal not in text


def test_a_run_refused_for_credits_says_so_in_the_run_panel_and_keeps_the_panel(owner, client):
    client.force_login(owner)
    survey = services.survey_create(owner=owner, title="Oat milk", questions=QUESTIONS)
    folder = _panel(owner)
    from cohorta.core.models import get_app_settings

    app = get_app_settings()
    app.survey_credits_per_block = 1000
    app.save()
    response = client.post(reverse("surveys:run_start", args=[survey.pk]), {"panel": "folder", "folder": folder.pk})
    assert response.status_code == 402
    html = response.content.decode()
    panel = html[html.index('id="run-panel"') : html.index('id="runs"')]
    assert "credits" in _text_of(panel) and 'role="alert"' in panel
    assert f'value="{folder.pk}" data-count="10" selected' in panel


def _text_of(html: str) -> str:
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_while_it_runs_the_page_shows_who_is_answering_and_what_is_left(researcher, client, monkeypatch):
    monkeypatch.setattr(survey_jobs, "dispatch_respondent", lambda respondent_id: None)  # workers busy
    survey = services.survey_create(owner=researcher, title="Oat milk", questions=QUESTIONS)
    run = services.run_start(survey=survey, folder=_panel(researcher))
    Respondent.objects.filter(run=run, position=0).update(state=RespondentState.RUNNING)
    text = _text(client.get(reverse("surveys:run_progress", args=[run.pk])))
    assert "1 answering now" in text and "9 waiting" in text
    assert "Answering" in text and "Waiting" in text  # each respondent's state, live
    assert "The charts appear here when everyone has answered" in text


def test_results_compare_segments_in_words_and_export_for_spreadsheets(researcher, client, fake_llm):
    survey = services.survey_create(owner=researcher, title="Oat milk", questions=QUESTIONS)
    run = services.run_start(survey=survey, folder=_panel(researcher))
    assert Job.objects.get(pk=run.job_id).state == JobState.DONE
    response = client.get(reverse("surveys:run", args=[run.pk]))
    text = _text(response)
    assert "Where segments differ" in text
    assert "No clear difference (p = " in text or "than everyone else (" in text
    for internal in ("label_a", "Labela", "welch_t", "Welcht", "Mannwhitney", "likert5"):
        assert internal not in text
    breakdown = text[text.index("By segment") :]
    # Age bands read youngest first.
    ages = [breakdown.index(band) for band in ("18–29", "30–44", "45–59", "60+")]
    assert ages == sorted(ages)
    # Of two genders, each is compared with the other, by name.
    html = response.content.decode()
    gender = html[html.index('<div class="seg-title">Gender</div>') :]
    gender = gender[: gender.index("</section>")].split('<div class="seg-group">')[0]
    assert "everyone else" not in gender and ("Female" in gender and "Male" in gender)
    rows = next(b for b in run_results(run)["questions"][0]["segments"] if b["attribute"] == "gender")["rows"]
    assert {row["segment"]: row["vs_rest"]["label_b"] for row in rows} == {"Female": "Male", "Male": "Female"}

    body = client.get(reverse("surveys:export", kwargs={"run_id": run.pk, "fmt": "csv"})).content.decode("utf-8")
    assert body.startswith("\ufeff")  # Excel then reads £ and accents as they are
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert len(rows) == 10 * len(QUESTIONS)
    likert = next(r for r in rows if r["question_type"] == "likert5" and r["answer_status"] == "ok")
    points = [pair.split(":") for pair in likert["distribution"].split(" | ")]
    assert [p for p, _ in points] == ["1", "2", "3", "4", "5"]
    assert abs(sum(float(share) for _, share in points) - 1) < 0.01
    assert 1 <= float(likert["expected_value"]) <= 5 and likert["direct_rating"] in "12345"
    nps = next(r for r in rows if r["question_type"] == "nps" and r["distribution"])
    assert nps["distribution"].startswith("0:") and " | 10:" in nps["distribution"]
    choice = next(r for r in rows if r["question_type"] == "multiple")
    assert set(choice["choices"].split(" | ")) <= {"Breakfast", "Lunch", "Dinner"}


def test_a_respondent_page_shows_each_answer_with_its_rating_in_words(researcher, client, fake_llm):
    survey = services.survey_create(owner=researcher, title="Oat milk", questions=QUESTIONS)
    run = services.run_start(survey=survey, folder=_panel(researcher, ages=(30, 40, 50)))
    first, second, _ = Respondent.objects.filter(run=run).order_by("position")
    text = _text(client.get(reverse("surveys:respondent", args=[run.pk, second.pk])))
    assert "on the 1–5 scale by the meaning of the answer" in text
    assert "on the 0–10 scale" in text
    assert first.name in text  # the way to the previous respondent


def test_the_run_forms_estimate_knows_what_the_quality_check_costs_per_respondent(researcher, client):
    survey = services.survey_create(owner=researcher, title="Oat milk", questions=QUESTIONS)
    page = client.get(reverse("surveys:detail", args=[survey.pk])).content.decode()
    per_respondent = check_cost(questions=[{"kind": q["kind"]} for q in QUESTIONS], respondents=1)["per_respondent"]
    assert per_respondent > 0
    # survey-builder.js adds it to the live estimate when "Check quality" is ticked.
    form = re.search(r'<form [^>]*class="js-run-form"[^>]*>', page).group(0)
    assert f'data-quality-cost="{per_respondent}"' in form
