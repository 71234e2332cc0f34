"""Survey mode, as a new researcher uses it, in a real browser on the service stack: find Surveys in the
menu, read what to do on the empty page, build a 10-question survey with all five kinds of question
(tripping over one error on the way), preview it, run it on a folder of 12 personas while the progress
moves, read the charts and how the segments compare, open one respondent, export CSV and JSON, and
print. Screenshots at desktop and phone width."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from playwright.sync_api import Download, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from surveys.models import Respondent
from tests.journeys.conftest import JOB_TIMEOUT_MS, log_in, make_user

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.journey]

PANEL = [
    ("Amira Shah", 24, "female", "Leeds, UK"),
    ("Ben Carter", 27, "male", "Bristol, UK"),
    ("Chloe Evans", 31, "female", "Glasgow, UK"),
    ("Dev Patel", 36, "male", "Leeds, UK"),
    ("Ella Morgan", 42, "female", "Bristol, UK"),
    ("Femi Adeyemi", 45, "male", "Glasgow, UK"),
    ("Grace Hill", 51, "female", "Leeds, UK"),
    ("Harry Walsh", 55, "male", "Bristol, UK"),
    ("Isla Grant", 60, "female", "Glasgow, UK"),
    ("Jack Turner", 63, "male", "Leeds, UK"),
    ("Kate Brown", 67, "female", "Bristol, UK"),
    ("Liam Reid", 70, "male", "Glasgow, UK"),
]
# (type as the builder names it, question, options)
QUESTIONS = [
    ("Likert scale (5 points)", "I would try this oat milk.", None),
    ("Likert scale (5 points)", "£2.40 a litre is a fair price.", None),
    ("Likert scale (7 points)", "It fits the way I shop.", None),
    ("Rating 0–10 (NPS)", "How likely are you to recommend it to a friend?", None),
    ("Single choice", "Which pack would you buy first?", "1 litre\n2 litres\nNone of these"),
    ("Single choice", "Where would you buy it?", "Supermarket\nCorner shop\nOnline"),
    ("Multiple choice", "What would you use it for?", "Tea\nCoffee\nCereal\nBaking"),
    ("Likert scale (5 points)", "I trust oats grown in the UK.", None),
    ("Open text", "What would you want to know before buying it?", None),
    ("Open text", "What would make you switch?", None),
]


def downloaded(page: Page, link: str) -> Download:
    """The file a link downloads. Headless Chromium now and then drops a click that comes right after another
    download (no request reached the server in CI's one failure): a second click, once, if none came."""
    try:
        with page.expect_download(timeout=15_000) as download:
            page.get_by_role("link", name=link).click()
    except PlaywrightTimeout:
        with page.expect_download() as download:
            page.get_by_role("link", name=link).click()
    return download.value


def _panel(user):
    from personas.models import Folder
    from personas.services import persona_create

    folder = Folder.objects.create(owner=user, name="Oat milk panel")
    for name, age, gender, location in PANEL:
        data = {"name": name, "age": age, "gender": gender, "location": location, "occupation": "Teacher"}
        persona_create(owner=user, data=data, folder=folder)
    return folder


def _add_question(page, kind: str, text: str, options: str | None) -> None:
    """Add a question and wait for the page that lists it (the next one is typed into that page)."""
    count = page.locator("li[id^=question-]").count()
    form = page.locator("#add-question")
    form.get_by_label("Type").select_option(label=kind)
    form.get_by_label("Question", exact=True).fill(text)
    if options:
        form.get_by_label("Options, one per line").fill(options)
    with page.expect_navigation():
        form.get_by_role("button", name="Add question").click()
    if "is-invalid" not in (page.locator("#new-options").get_attribute("class") or ""):
        expect(page.locator("li[id^=question-]")).to_have_count(count + 1)


def test_a_new_researcher_builds_runs_reads_and_exports_a_survey(page, stack, screenshots, tmp_path):
    from billing.selectors import credits_balance
    from billing.services import credits_grant

    shot = screenshots(72, 12)
    user = make_user("sam.survey@example.com", name="Sam Survey")
    credits_grant(user=user, amount=40, idempotency_key="journey:survey")
    _panel(user)
    log_in(page, user.email)
    page.set_viewport_size({"width": 1366, "height": 768})

    # 1. Surveys is in the menu; the empty page says what to do.
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Surveys").click()
    expect(page.locator("#surveys-empty")).to_contain_text("Add questions")
    shot("surveys-empty")

    # 2. A new survey, its introduction, and ten questions of all five kinds.
    page.get_by_label("Title").fill("Oat milk concept test")
    page.get_by_role("button", name="Create survey").click()
    expect(page.locator("#questions-empty")).to_be_visible()
    page.get_by_label("Introduction respondents read").fill("A new oat milk from British oats, £2.40 a litre.")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    for kind, text, options in QUESTIONS[:4]:
        _add_question(page, kind, text, options)
    # A choice question with one option is refused in the form itself, saying what to do.
    _add_question(page, "Single choice", QUESTIONS[4][1], "1 litre")
    error = page.locator("#add-question [role=alert]")
    expect(error).to_contain_text("needs at least 2 options, one per line")
    expect(page.locator("#new-options")).to_have_class(re.compile("is-invalid"))
    expect(page.locator("#new-options")).to_be_focused()
    shot("question-error")
    page.locator("#new-options").fill(QUESTIONS[4][2])
    with page.expect_navigation():
        page.locator("#add-question").get_by_role("button", name="Add question").click()
    expect(page.locator("li[id^=question-]")).to_have_count(5)
    for kind, text, options in QUESTIONS[5:]:
        _add_question(page, kind, text, options)
    expect(page.locator("li[id^=question-]")).to_have_count(10)
    body = page.locator("main").inner_text()
    for internal in ("likert5_agreement", "purchase_intent5", "nps11"):
        assert internal not in body
    # The run's cost for the folder picked, before anything is spent.
    expect(page.locator(".js-run-estimate")).to_have_text("This run: 12 respondents × 1 credit = 12 credits.")
    shot("builder")
    page.set_viewport_size({"width": 390, "height": 844})
    shot("builder-phone")
    page.set_viewport_size({"width": 1366, "height": 768})

    # 3. The preview shows what respondents read.
    page.get_by_role("link", name="Preview").click()
    expect(page.get_by_text("A new oat milk from British oats")).to_be_visible()
    expect(page.get_by_text("Extremely likely")).to_be_visible()
    shot("preview")
    page.get_by_role("link", name="Back to editing").click()

    # 4. Run it on the folder: progress moves while respondents answer, then the results appear.
    stack.llm.tokens_per_second = 30  # some seconds per respondent, so the progress is seen moving
    page.get_by_role("button", name="Run survey").click()
    expect(page).to_have_url(re.compile(r"/surveys/runs/\d+/$"))
    progress = page.locator("#run-progress")
    expect(progress).to_contain_text("12 in the panel")
    # Live: some answered while others are still answering (or, on a fast machine, already done).
    page.wait_for_function(
        r"""() => /\b([1-9]|1[01]) answered · [1-9]\d* answering now/.test(document.body.innerText)
                 || document.getElementById('run-summary')""",
        timeout=JOB_TIMEOUT_MS,
    )
    shot("run-progress")
    expect(page.locator("#differences")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    stack.llm.tokens_per_second = 0
    failed = list(Respondent.objects.filter(state="failed").values_list("persona__name", "error"))
    assert not failed, failed  # each with the reason the run gave, before the page's summary says only how many
    expect(page.locator("#run-summary")).to_contain_text("12 of 12 answered")
    expect(page.locator("#run-summary")).to_contain_text("12 credits")
    assert credits_balance(user=user) == 40 - 12

    # 5. Charts drawn, the segment comparison in words, no internal names.
    # The finished run's page replaces the live one: wait until its charts are drawn, not just its text.
    page.wait_for_function("() => window.Chart && Object.keys(Chart.instances).length >= 8", timeout=JOB_TIMEOUT_MS)
    charts = page.evaluate("() => Object.keys(Chart.instances).length")
    assert charts == 8, charts  # five scale questions and three choice questions
    text = page.locator("main").inner_text()
    assert "By segment" in text and ("No clear difference" in text or "than everyone else" in text)
    for internal in ("label_a", "welch", "likert5", "Labela", "Verdict:"):
        assert internal not in text, internal
    breakdown = text[text.index("By segment") :]
    ages = [breakdown.index(band) for band in ("18–29", "30–44", "45–59", "60+")]
    assert ages == sorted(ages)
    shot("results")
    page.set_viewport_size({"width": 390, "height": 844})
    shot("results-phone")
    page.set_viewport_size({"width": 1366, "height": 768})

    # 6. One respondent's answers.
    page.locator("#respondents-table").get_by_role("link", name="Amira Shah").click()
    expect(page.get_by_role("heading", name="Amira Shah")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Rated \d\.\d\d on the 1–5 scale")).first).to_be_visible()
    shot("respondent")
    page.get_by_role("link", name="All results").click()

    # 7. Exports hold what their headers promise; the print view fits the page.
    raw = downloaded(page, "Export CSV").path().read_bytes().decode("utf-8")
    assert raw.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(raw.lstrip("\ufeff"))))
    assert len(rows) == 12 * 10
    assert {row["persona"] for row in rows} == {name for name, *_ in PANEL}
    scale = [row for row in rows if row["question_type"] == "likert5" and row["answer_status"] == "ok"]
    assert scale and all(row["distribution"].startswith("1:") and row["expected_value"] for row in scale)
    picks = [row["choices"] for row in rows if row["question_type"] == "single" and row["answer_status"] == "ok"]
    assert picks and all(pick for pick in picks)
    data = json.loads(downloaded(page, "Export JSON").path().read_text())
    assert len(data["respondents"]) == 12 and len(data["questions"]) == 10
    assert all(len(r["answers"]) == 10 for r in data["respondents"])
    page.emulate_media(media="print")
    pdf = tmp_path / "survey.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 50_000
    assert page.evaluate(
        "() => Array.from(document.querySelectorAll('img.chart-print')).every(i => i.naturalWidth > 0)"
    )
    page.emulate_media(media="screen")
