"""The validation pages as a researcher uses them: the list and its empty state, uploading a real survey (its
errors on the form), mapping its columns (pre-filled from the reader's guess; a bad mapping shown beside the
column with everything typed kept), starting a validation (the cost, 402 with the way out and nothing
created), a validation's progress, its scorecard (the verdict first, then every question), exports, deleting;
and another user gets 404 from every one."""

import csv
import html as htmllib
import io
import json
import random
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.jobs.models import Job
from panels.models import Panel
from privacy.exports import references_rows, validations_rows
from surveys.models import Survey
from tests.factories import UserFactory
from validation import services, tasks
from validation.models import Reference, Validation, ValidationState
from validation.reference import REFERENCE_MAX_BYTES, ReferenceTable, demographic_values, responses
from validation.scorecard import question_card, subgroup_cards, verdict

pytestmark = pytest.mark.django_db

THREE = ["Too little", "About right", "Too much"]
FIVE = ["Strongly disagree", "Disagree", "Neither", "Agree", "Strongly agree"]
BRANDS = ["Oatly", "Alpro", "Own label"]
HEADER = ["respondent_id", "age", "sex", "spend_health", "spend_space", "trust_brands", "brand", "why"]


def reference_csv(rows: int = 60, seed: int = 4) -> bytes:
    """A small real-looking survey: an id, two demographics, two 3-point items (one with blanks), a 5-point
    agreement item, an unordered choice and an open answer."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for number in range(rows):
        writer.writerow(
            [
                1000 + number,
                rng.choice(["18-34", "35-54", "55+"]),
                rng.choice(["Female", "Male"]),
                rng.choices(THREE, weights=[6, 3, 1])[0],
                rng.choices([*THREE, ""], weights=[2, 5, 3, 1])[0],
                rng.choice(FIVE),
                rng.choices(BRANDS, weights=[5, 3, 2])[0],
                rng.choice(["Prices keep going up for everything.", "I trust what my friends recommend to me."]),
            ]
        )
    return out.getvalue().encode()


MAPPING = {
    "questions": [
        {"column": "spend_health", "kind": "scale", "scale": THREE, "label": "Health",
         "text": "Are we spending too much, too little or about the right amount on the nation's health?"},
        {"column": "spend_space", "kind": "scale", "scale": THREE, "label": "Space"},
        {"column": "trust_brands", "kind": "scale", "scale": FIVE, "label": "Trust in brands",
         "text": "I trust the brands I buy."},
        {"column": "brand", "kind": "choice", "label": "Brand bought last"},
    ],
    "demographics": [
        {"column": "age", "dimension": "age", "label": "Age"},
        {"column": "sex", "dimension": "gender", "label": "Gender"},
    ],
    "weight": None,
    "ignored": ["respondent_id", "why"],
}  # fmt: skip


@pytest.fixture
def researcher(owner, client):
    credits_grant(user=owner, amount=2000, idempotency_key="test:fund")
    client.force_login(owner)
    return owner


def _text(response) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def upload(owner, data: bytes | None = None, name: str = "Brand tracker") -> Reference:
    file = SimpleUploadedFile("brands.csv", data or reference_csv(), content_type="text/csv")
    return services.reference_upload(owner=owner, upload=file, name=name)


def mapped(owner) -> Reference:
    return services.reference_map(reference=upload(owner), mapping=MAPPING)


def scored(owner, reference: Reference, *, size: int = 40, seed: int = 5, close: bool = True) -> Validation:
    """A done validation whose scorecard is computed (by validation.scorecard) from the reference's real
    answers and a synthetic side drawn from them (``close``) or uniformly, stored as the scoring step would."""
    table = ReferenceTable.from_json(reference.table)
    mapping = reference.mapping
    people = demographic_values(table, mapping)
    rng = random.Random(seed)
    picked = rng.sample(range(len(table.rows)), size)
    cards = []
    for index, item in enumerate(mapping["questions"]):
        values = item["scale"] or item["options"]
        kind = "scale" if item["kind"] == "scale" else "choice"
        human = [a if isinstance(a, int) or a is None else values.index(a) for a in responses(table, mapping, item)]
        answered = [h for h in human if h is not None]
        synthetic = {row: rng.choice(answered) if close else rng.randrange(len(values)) for row in picked}
        card = question_card(item["label"], kind, answered, list(synthetic.values()), len(values), options=values,
                             seed=seed + index)  # fmt: skip
        card["column"] = item["column"]
        card["subgroups"] = {
            d["label"]: subgroup_cards(
                item["label"], kind,
                [(people[row][d["dimension"]], h) for row, h in enumerate(human) if h is not None],
                [(people[row][d["dimension"]], s) for row, s in synthetic.items()],
                len(values), options=values, dimension=d["dimension"], seed=seed + index,
            )
            for d in mapping["demographics"]
        }  # fmt: skip
        cards.append(card)
    scorecard = {
        "version": 1,
        "reference": {"name": reference.name, "respondents": len(table.rows)},
        "synthetic": {"respondents": size, "asked": size},
        "questions": cards,
        "open_questions": [],
        "verdict": verdict(cards),
    }
    return Validation.objects.create(
        owner=owner, reference=reference, reference_name=reference.name, mapping=mapping, size=size, seed=seed,
        state=ValidationState.DONE, scorecard=scorecard,
    )  # fmt: skip


# --- the list --------------------------------------------------------------------------------------


def test_an_empty_list_explains_the_idea_and_offers_an_upload(researcher, client):
    response = client.get(reverse("validation:index"))
    assert response.status_code == 200
    text = _text(response)
    assert "No validations yet" in text and "real people answered" in text
    assert "a uniform guess (every answer equally likely) already scores 0.62–0.95 on KS similarity" in text
    assert "raw score alone proves nothing" in text and "manage.py validate_panel" in text
    assert reverse("validation:upload") in response.content.decode() and "Upload a survey" in text


def test_the_list_shows_references_and_validations_with_their_state_and_verdict(researcher, client):
    reference = mapped(researcher)
    upload(researcher, name="Unmapped survey")
    done = scored(researcher, reference)
    running = services.validation_start(owner=researcher, reference=reference, size=12, seed=1)
    text = _text(client.get(reverse("validation:index")))
    assert "Brand tracker" in text and "60 respondents" in text and "Mapped · 4 questions" in text
    assert "Unmapped survey" in text and "Not mapped yet" in text
    expected = "Passed" if done.scorecard["verdict"]["passed"] else "Not yet"
    assert expected in text and "Writing the matched panel" in text
    html = client.get(reverse("validation:index")).content.decode()
    assert reverse("validation:detail", args=[running.pk]) in html and 'hx-trigger="jobs-changed' in html


# --- uploading ---------------------------------------------------------------------------------------


def test_an_upload_opens_the_mapping_filled_from_the_readers_guess(researcher, client):
    file = SimpleUploadedFile("brands.csv", reference_csv(), content_type="text/csv")
    response = client.post(reverse("validation:upload"), {"name": "Brand tracker", "file": file})
    reference = Reference.objects.get(owner=researcher)
    assert response.status_code == 302 and response.url == reverse("validation:mapping", args=[reference.pk])
    response = client.get(response.url)
    html, text = response.content.decode(), _text(response)
    # Every column, with a preview of its answers and how many are missing.
    for index, column in enumerate(HEADER):
        assert f'name="c{index}-column" value="{column}"' in html
    space = html[html.index('id="col-4"') : html.index('id="col-5"')]
    missing = sum(1 for row in csv.DictReader(io.StringIO(reference_csv().decode())) if not row["spend_space"])
    assert f"{missing} missing" in _text_of(space) and "About right" in space
    # The guesses: the spending items as 3-point scales in order, age and sex as demographics, the id ignored.
    assert re.search(r'name="c3-role">.*?<option value="scale" selected>', html, re.S)
    assert 'name="c3-values" rows="4">Too little\nAbout right\nToo much</textarea>' in html
    assert re.search(r'name="c1-dimension">.*?<option value="age" selected>Age</option>', html, re.S)
    assert re.search(r'name="c2-dimension">.*?<option value="gender" selected>', html, re.S)
    assert re.search(r'name="c0-role">.*?<option value="ignore" selected>', html, re.S)
    assert "Cohorta guessed what each column is" in text


def _text_of(html: str) -> str:
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_a_file_without_a_header_row_says_so_on_the_form(researcher, client):
    file = SimpleUploadedFile("numbers.csv", b"1,2,3\n4,5,6\n7,8,9\n", content_type="text/csv")
    response = client.post(reverse("validation:upload"), {"name": "My survey", "file": file})
    assert response.status_code == 400
    text = _text(response)
    assert "“numbers.csv” has no header row" in text and "Add a first row naming each column" in text
    assert 'value="My survey"' in response.content.decode() and 'role="alert"' in response.content.decode()
    assert not Reference.objects.exists()


def test_a_file_over_the_size_limit_is_refused_on_the_form(researcher, client):
    big = b"a,b\n" + b"1,2\n" * (REFERENCE_MAX_BYTES // 4 + 1)
    file = SimpleUploadedFile("huge.csv", big, content_type="text/csv")
    response = client.post(reverse("validation:upload"), {"name": "Huge", "file": file})
    assert response.status_code == 400
    assert "a reference survey can be at most 20 MB" in _text(response) and 'value="Huge"' in response.content.decode()
    assert not Reference.objects.exists()


# --- mapping -----------------------------------------------------------------------------------------


def _mapping_post(**changes) -> dict:
    """The mapping page's form as MAPPING fills it (one block per column of HEADER), with ``changes``."""
    roles = {"respondent_id": "ignore", "age": "demographic", "sex": "demographic", "spend_health": "scale",
             "spend_space": "scale", "trust_brands": "scale", "brand": "choice", "why": "ignore"}  # fmt: skip
    data = {}
    for index, column in enumerate(HEADER):
        data[f"c{index}-column"] = column
        data[f"c{index}-role"] = roles[column]
    for item in MAPPING["questions"]:
        index = HEADER.index(item["column"])
        data[f"c{index}-label"] = item["label"]
        data[f"c{index}-text"] = item.get("text", "")
        data[f"c{index}-values"] = "\n".join(item.get("scale") or [])
    for item in MAPPING["demographics"]:
        index = HEADER.index(item["column"])
        data[f"c{index}-dimension"] = item["dimension"]
        data[f"c{index}-dlabel"] = item["label"]
    data.update(changes)
    return data


def test_saving_the_mapping_opens_the_reference_with_the_start_form(researcher, client):
    reference = upload(researcher)
    response = client.post(
        reverse("validation:mapping", args=[reference.pk]),
        _mapping_post(**{"c4-values": "Too little, About right, Too much"}),
    )
    assert response.status_code == 302 and response.url == reverse("validation:reference", args=[reference.pk])
    reference.refresh_from_db()
    questions = {q["column"]: q for q in reference.mapping["questions"]}
    assert list(questions) == ["spend_health", "spend_space", "trust_brands", "brand"]
    assert questions["spend_space"]["scale"] == THREE  # comma separated on one line
    assert questions["brand"]["options"] == ["Oatly", "Alpro", "Own label"]  # every answer given, commonest first
    assert questions["spend_health"]["text"].startswith("Are we spending")
    assert [d["dimension"] for d in reference.mapping["demographics"]] == ["age", "gender"]
    response = client.get(response.url)
    text = _text(response)
    assert "Saved: 4 questions and 2 demographics" in text and "Start a validation" in text
    assert "Too little → About right → Too much" in text and "Matched on Age ( age ) · Gender ( sex )" in text
    # Size defaults to min(200, respondents) and the cost is shown with the balance.
    assert 'name="size" value="60"' in response.content.decode()
    unit = services.validation_cost(size=1, question_count=4)
    assert f"60 respondents × {unit} credit{'s' if unit != 1 else ''} = {60 * unit:,} credits" in text
    assert "You have 2,000 credits" in text
    # The mapping page now starts from what was saved.
    html = client.get(reverse("validation:mapping", args=[reference.pk])).content.decode()
    assert ">Too little\nAbout right\nToo much</textarea>" in html and "The mapping you saved" in html


@pytest.mark.parametrize(
    ("changes", "message", "column_index"),
    [
        (
            {"c3-column": "spend_heath"},
            "“spend_heath” is not a column in this file",
            None,
        ),
        (
            {"c3-values": "Too little\nAbout right"},
            "“spend_health”: 6 rows have values outside the scale Too little, About right (value “Too much”)",
            3,
        ),
        (
            {"c3-role": "ignore", "c4-role": "ignore", "c5-role": "ignore", "c6-role": "demographic"},
            "No question is mapped",
            None,
        ),
    ],
)
def test_a_bad_mapping_is_shown_beside_its_column_with_everything_typed_kept(
    researcher, client, changes, message, column_index
):
    reference = upload(researcher)
    data = _mapping_post(**{"c5-label": "My own label", "c5-missing": "99, Refused", **changes})
    response = client.post(reverse("validation:mapping", args=[reference.pk]), data)
    assert response.status_code == 400
    html, text = response.content.decode(), _text(response)
    if "outside the scale" in message:
        # The count is the file's own: a sentence naming it comes from the rows, not from here.
        too_much = sum(
            1 for row in csv.DictReader(io.StringIO(reference_csv().decode())) if row["spend_health"] == "Too much"
        )
        message = message.replace("6 rows", f"{too_much} rows")
    assert message in text and 'id="mapping-error"' in html
    if column_index is not None:
        block = html[html.index(f'id="col-{column_index}"') : html.index(f'id="col-{column_index + 1}"')]
        assert "map-error" in html[html.index(f'id="col-{column_index}"') - 60 : html.index(f'id="col-{column_index}"')]
        assert message in _text_of(block) and f'href="#col-{column_index}"' in html
    # What the user typed is all still there.
    assert 'name="c5-label" value="My own label"' in html and 'name="c5-missing" value="99, Refused"' in html
    for name, value in changes.items():
        if name.endswith("-role"):
            assert re.search(rf'name="{name}">.*?<option value="{value}" selected>', html, re.S), name
        elif name.endswith("-values"):
            assert f">{value}</textarea>" in html
        else:
            assert f'name="{name}" value="{value}"' in html
    reference.refresh_from_db()
    assert reference.mapping == {}


def test_a_wide_file_is_mapped_through_the_pages_packed_fields(researcher, client):
    """A survey export with 150 columns: posted one by one its fields pass Django's limit of 1,000, so the page's
    script sends them as one JSON field, read the same way."""
    columns = [f"q{n}" for n in range(150)]
    rows = [",".join(columns)] + [",".join(str(1 + (r + n) % 5) for n in range(150)) for r in range(40)]
    reference = upload(researcher, "\n".join(rows).encode(), name="Wide")
    # Every field the page has for each column, as the browser would post them.
    names = ("column", "role", "label", "text", "values", "missing", "dimension", "dimension_other", "dlabel")
    fields = {f"c{n}-{name}": "" for n in range(150) for name in names}
    fields.update({f"c{n}-column": column for n, column in enumerate(columns)})
    fields.update({f"c{n}-role": "ignore" for n in range(150)})
    fields.update({"c0-role": "scale", "c0-values": "1\n2\n3\n4\n5", "c0-label": "First", "c7-role": "choice"})
    url = reverse("validation:mapping", args=[reference.pk])
    assert client.post(url, fields).status_code == 400  # too many fields, refused before the view
    response = client.post(url, {"fields": json.dumps(fields)})
    assert response.status_code == 302, _text(response)
    reference.refresh_from_db()
    assert [(q["column"], q["kind"], q["label"]) for q in reference.mapping["questions"]] == [
        ("q0", "scale", "First"),
        ("q7", "choice", "Q7"),
    ]
    assert len(reference.mapping["ignored"]) == 148


def test_two_weight_columns_are_refused_beside_the_second(researcher, client):
    reference = upload(researcher)
    response = client.post(
        reverse("validation:mapping", args=[reference.pk]), _mapping_post(**{"c0-role": "weight", "c7-role": "weight"})
    )
    assert response.status_code == 400
    assert "“respondent_id” and “why” are both marked as the weight" in _text(response)


# --- starting ------------------------------------------------------------------------------------------


def test_starting_a_validation_opens_its_page_with_the_panel_being_written(researcher, client):
    reference = mapped(researcher)
    response = client.post(
        reverse("validation:start", args=[reference.pk]), {"size": "24", "depth": "light", "seed": "7"}
    )
    validation = Validation.objects.get(owner=researcher)
    assert response.status_code == 302 and response.url == reverse("validation:detail", args=[validation.pk])
    assert validation.size == 24 and validation.seed == 7 and validation.state == ValidationState.PANEL
    assert credits_balance(user=researcher) == 2000 - 24  # the panel's personas now; the answers when it is ready
    response = client.get(response.url)
    text, html = _text(response), response.content.decode()
    assert "Writing the matched panel" in text and "Asking the questions" in text and "Scoring" in text
    assert reverse("panels:detail", args=[validation.panel_id]) in html and "the matched panel's page" in text
    assert "You can leave this page" in text and "Score again" not in text
    # The steps alone are polled, and reload the page when the validation ends.
    progress = client.get(reverse("validation:progress", args=[validation.pk]))
    assert 'hx-trigger="jobs-changed' in progress.content.decode()
    Validation.objects.filter(pk=validation.pk).update(
        state=ValidationState.FAILED,
        error="The matched panel could not be written; nothing was charged for its questions. Start it again.",
    )
    progress = client.get(reverse("validation:progress", args=[validation.pk]) + "?was=active")
    assert progress["HX-Refresh"] == "true"


def test_a_bad_size_or_seed_is_shown_on_the_start_form(researcher, client):
    reference = mapped(researcher)
    response = client.post(reverse("validation:start", args=[reference.pk]), {"size": "61", "depth": "full"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "between 1 and 60 synthetic respondents" in _text(response) and 'value="61"' in html
    assert 'value="full" checked' in html and "is-invalid" in html
    response = client.post(reverse("validation:start", args=[reference.pk]), {"size": "10", "seed": "abc"})
    assert response.status_code == 400 and "The seed must be a whole number" in _text(response)
    assert '<details class="mb-3" id="advanced" open>' in response.content.decode()
    assert not Validation.objects.exists()


def test_short_of_credits_is_a_402_with_a_way_out_and_nothing_created(owner, client):
    credits_grant(user=owner, amount=5, idempotency_key="test:little")
    client.force_login(owner)
    reference = mapped(owner)
    jobs = Job.objects.count()
    response = client.post(reverse("validation:start", args=[reference.pk]), {"size": "40", "seed": "3"})
    assert response.status_code == 402
    html, text = response.content.decode(), _text(response)
    assert "you have 5" in text and reverse("billing:index") in html and "Buy credits" in text
    assert 'name="size" value="40"' in html and 'name="seed" value="3"' in html
    assert not Validation.objects.exists() and not Panel.objects.exists() and not Survey.objects.exists()
    assert Job.objects.count() == jobs and credits_balance(user=owner) == 5


def test_an_unmapped_reference_asks_for_its_mapping_first(researcher, client):
    reference = upload(researcher)
    text = _text(client.get(reverse("validation:reference", args=[reference.pk])))
    assert "Map the columns first" in text and "Start the validation" not in text
    response = client.post(reverse("validation:start", args=[reference.pk]), {"size": "10"})
    assert response.status_code == 400 and "Map the reference's columns first" in _text(response)


# --- a validation --------------------------------------------------------------------------------------


def test_a_done_validation_shows_the_verdict_first_then_every_question(researcher, client):
    reference = mapped(researcher)
    validation = scored(researcher, reference)
    card = validation.scorecard
    response = client.get(reverse("validation:detail", args=[validation.pk]))
    assert response.status_code == 200
    html, text = response.content.decode(), _text(response)
    verdict_at = html.index('id="verdict"')
    assert verdict_at < html.index('id="question-1"')
    heading = "Verdict: passed" if card["verdict"]["passed"] else "Verdict: not passed yet"
    assert heading in text and card["verdict"]["summary"] in text
    for check in card["verdict"]["checks"]:
        assert check["label"] in text and check["value"] in text
    assert "The rule. The panel passes when it beats a uniform guess on at least 80% of the questions" in text
    for number, question in enumerate(card["questions"], start=1):
        section = html[html.index(f'id="question-{number}"') :]
        section = _text_of(section[: section.index("</section>")])
        assert question["label"] in section
        for option, human, synthetic in zip(
            question["options"], question["human_shares"], question["synthetic_shares"], strict=True
        ):
            assert f"{option} Real people {100 * human:.1f}% · Synthetic panel {100 * synthetic:.1f}%" in section
        assert "Panel Uniform Majority Ceiling" in section
        assert (
            f"Real people ({question['n_human']})" in section
            and f"Synthetic panel ({question['n_synthetic']})" in section
        )
        ks = question["measures"]["ks_similarity"]
        if question["kind"] == "scale":
            assert (
                f"KS similarity 1 − the largest gap between the two cumulative shares; 1 = the same. {ks:.2f}"
                in section
            )
            assert "Welch's t" in section and "Variance ratio" in section and "Mean answer (humans:" in section
        else:
            assert ks is None and "the largest gap between the two cumulative shares" not in section
            assert "Welch's t Mean difference" not in section
            assert "normalised score uses 1 − total variation distance" in section
        if question["normalised"] is not None:
            assert f"= {question['normalised']:.2f}".replace("-", "−") in section
        assert ("By subgroup (age, gender)" in section and "Too few to compare" in section) or "Female" in section
    assert "I trust the brands I buy." in text  # the wording, from the mapping
    # Exports are offered once done (“Score again” needs the survey run's answers: this one has none stored).
    assert reverse("validation:export", args=[validation.pk, "csv"]) in html and "Score again" not in text


def test_a_stopped_validation_says_why_and_where(researcher, client):
    reference = mapped(researcher)
    validation = services.validation_start(owner=researcher, reference=reference, size=12, seed=1)
    reason = "The matched panel could not be written; nothing was charged for its questions. Start it again."
    Validation.objects.filter(pk=validation.pk).update(state=ValidationState.FAILED, error=reason)
    response = client.get(reverse("validation:detail", args=[validation.pk]))
    text = _text(response)
    assert "The validation stopped." in text and reason in text and "Stopped here" in text
    assert "Score again" not in text and "Start it again" in text
    assert client.post(reverse("validation:rescore", args=[validation.pk])).status_code == 302
    validation.refresh_from_db()
    assert validation.state == ValidationState.FAILED  # nothing to score: the questions were never asked


def test_exports_carry_every_question_and_subgroup_with_the_baselines(researcher, client):
    validation = scored(researcher, mapped(researcher))
    response = client.get(reverse("validation:export", args=[validation.pk, "csv"]))
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith(f'validation-{validation.pk}-scorecard.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    questions = validation.scorecard["questions"]
    assert [r["Question"] for r in rows if r["Level"] == "question"] == [q["label"] for q in questions]
    subgroups = sum(len(cards) for q in questions for cards in q["subgroups"].values())
    assert sum(r["Level"] == "subgroup" for r in rows) == subgroups
    first = rows[0]
    ks = questions[0]["measures"]["ks_similarity"]
    assert float(first["ks_similarity"]) == pytest.approx(ks, abs=1e-6)
    assert float(first["ks_similarity (uniform)"]) == pytest.approx(
        questions[0]["baselines"]["uniform"]["ks_similarity"], abs=1e-6
    )
    assert first["ks_similarity (ceiling)"] and first["Normalised on"] == "ks_similarity"
    document = client.get(reverse("validation:export", args=[validation.pk, "json"])).json()
    assert document["reference"]["name"] == "Brand tracker" and document["seed"] == validation.seed
    assert document["mapping"] == validation.mapping and document["scorecard"] == validation.scorecard
    assert set(document) >= {"panel_id", "run_id", "survey_id"}
    assert client.get(reverse("validation:export", args=[validation.pk, "xml"])).status_code == 404


def test_exports_wait_for_the_scorecard(researcher, client):
    validation = services.validation_start(owner=researcher, reference=mapped(researcher), size=5, seed=1)
    response = client.get(reverse("validation:export", args=[validation.pk, "csv"]))
    assert response.status_code == 409 and "no scorecard yet" in response.content.decode()


def test_deleting_the_reference_keeps_the_validations_scorecards(researcher, client):
    reference = mapped(researcher)
    validation = scored(researcher, reference)
    text = _text(client.get(reverse("validation:reference", args=[reference.pk])))
    assert "Its 1 validation keeps its scorecard" in text
    response = client.post(reverse("validation:reference_delete", args=[reference.pk]))
    assert response.status_code == 302 and not Reference.objects.exists()
    assert "Its 1 validation keeps its scorecard." in _text(client.get(response.url))
    validation.refresh_from_db()
    assert validation.reference is None and validation.scorecard["questions"]
    text = _text(client.get(reverse("validation:detail", args=[validation.pk])))
    assert "(deleted: the scorecard stays)" in text and validation.scorecard["verdict"]["summary"] in text
    assert "Score again" not in text  # nothing left to score against


def test_deleting_a_validation_keeps_its_panel_and_survey(researcher, client):
    validation = services.validation_start(owner=researcher, reference=mapped(researcher), size=5, seed=1)
    response = client.post(reverse("validation:delete", args=[validation.pk]))
    assert response.status_code == 302 and not Validation.objects.exists()
    assert (
        Panel.objects.filter(pk=validation.panel_id).exists()
        and Survey.objects.filter(pk=validation.survey_id).exists()
    )


def test_the_account_export_holds_every_reference_row_and_every_scorecard(researcher, other_user):
    reference = mapped(researcher)
    validation = scored(researcher, reference)
    upload(other_user, name="Someone else's")
    [row] = list(references_rows(researcher))
    assert row["name"] == "Brand tracker" and row["columns"] == HEADER and len(row["rows"]) == 60
    assert row["rows"][0] == next(csv.reader(io.StringIO(reference_csv().decode().split("\n", 1)[1])))
    assert row["mapping"] == reference.mapping
    [item] = list(validations_rows(researcher))
    assert item["id"] == validation.pk and item["scorecard"] == validation.scorecard and item["seed"] == validation.seed


# --- nobody else's -------------------------------------------------------------------------------------


def test_another_user_gets_404_from_every_page_export_and_action(researcher, client):
    reference = mapped(researcher)
    validation = scored(researcher, reference)
    intruder = Client()
    intruder.force_login(UserFactory(email="intruder@example.com"))
    gets = [
        reverse("validation:reference", args=[reference.pk]),
        reverse("validation:mapping", args=[reference.pk]),
        reverse("validation:detail", args=[validation.pk]),
        reverse("validation:progress", args=[validation.pk]),
        reverse("validation:export", args=[validation.pk, "csv"]),
        reverse("validation:export", args=[validation.pk, "json"]),
    ]
    for url in gets:
        response = intruder.get(url)
        assert response.status_code == 404, url
        assert "Brand tracker" not in response.content.decode(), url
    posts = [
        reverse("validation:mapping", args=[reference.pk]),
        reverse("validation:start", args=[reference.pk]),
        reverse("validation:reference_delete", args=[reference.pk]),
        reverse("validation:rescore", args=[validation.pk]),
        reverse("validation:delete", args=[validation.pk]),
    ]
    for url in posts:
        assert intruder.post(url, _mapping_post()).status_code == 404, url
    assert "Brand tracker" not in intruder.get(reverse("validation:index")).content.decode()
    assert Reference.objects.get(pk=reference.pk).mapping == reference.mapping
    assert Validation.objects.filter(pk=validation.pk).exists()


# --- the whole path, offline ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_upload_map_start_and_read_the_scorecard_through_the_pages(owner, client, fake_llm, monkeypatch):
    credits_grant(user=owner, amount=1000, idempotency_key="test:fund")
    client.force_login(owner)
    file = SimpleUploadedFile("brands.csv", reference_csv(), content_type="text/csv")
    response = client.post(reverse("validation:upload"), {"name": "Brand tracker", "file": file})
    reference = Reference.objects.get(owner=owner)
    assert client.post(response.url, _mapping_post()).status_code == 302
    response = client.post(reverse("validation:start", args=[reference.pk]), {"size": "24", "seed": "3"})
    validation = Validation.objects.get(owner=owner)
    assert validation.state == ValidationState.DONE, validation.error
    response = client.get(reverse("validation:detail", args=[validation.pk]))
    html, text = response.content.decode(), _text(response)
    card = validation.scorecard
    assert card["verdict"]["summary"] in text and len(card["questions"]) == 4
    for number, question in enumerate(card["questions"], start=1):
        assert f'id="question-{number}"' in html and question["label"] in text
        assert question["n_synthetic"] == 24
    assert reverse("panels:detail", args=[validation.panel_id]) in html
    assert reverse("surveys:run", args=[validation.run_id]) in html
    # Scoring again from the stored answers gives the same scorecard (everything random is seeded).
    assert client.post(reverse("validation:rescore", args=[validation.pk])).status_code == 302
    again = Validation.objects.get(pk=validation.pk)
    assert again.state == ValidationState.DONE and again.scorecard == card

    # It runs on a worker, not in the request (open answers' themes are AI calls); a second click while it
    # scores queues nothing more.
    queued: list = []
    monkeypatch.setattr(tasks.score, "apply_async", lambda args, **options: queued.append(args))
    response = client.post(reverse("validation:rescore", args=[validation.pk]), follow=True)
    assert "Scoring again from the stored answers" in _text(response)
    assert Validation.objects.get(pk=validation.pk).state == ValidationState.SCORING and queued == [(validation.pk,)]
    second = client.post(reverse("validation:rescore", args=[validation.pk]), follow=True)
    assert "being scored already" in _text(second)
    assert len(queued) == 1
    assert tasks.score(validation.pk) == ValidationState.DONE
    assert Validation.objects.get(pk=validation.pk).scorecard == card

    # The worker scoring it dies: the validation is failed at the scoring once it is well past the task's limit
    # (not before), says why, and can be scored again.
    client.post(reverse("validation:rescore", args=[validation.pk]))
    started = Validation.objects.get(pk=validation.pk).scoring_started_at
    assert started is not None and len(queued) == 2
    assert services.validations_reap(now=started + timedelta(minutes=5)) == 0
    later = started + timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + services.SCORING_LOST_AFTER_SECONDS + 1)
    assert services.validations_reap(now=later) == 1
    assert services.validations_reap(now=later) == 0
    lost = Validation.objects.get(pk=validation.pk)
    assert lost.state == ValidationState.FAILED and "interrupted" in lost.error
    page = _text(client.get(reverse("validation:detail", args=[validation.pk])))
    assert "interrupted" in page and "Score again" in page
    client.post(reverse("validation:rescore", args=[validation.pk]))
    assert tasks.score(validation.pk) == ValidationState.DONE
    assert Validation.objects.get(pk=validation.pk).scorecard == card
