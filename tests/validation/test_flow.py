"""A validation end to end, offline: upload a small real-looking survey, map it, build the matched panel,
ask it the questions through survey mode, score the answers against the humans'."""

import csv
import io
import json
import random

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.errors import ApplicationError, InsufficientCredits
from panels.models import Panel, TargetKind
from surveys.models import Survey
from validation import gss, services
from validation.models import Validation, ValidationState

pytestmark = pytest.mark.django_db(transaction=True)

THREE = ["Too little", "About right", "Too much"]
FIVE = ["Strongly disagree", "Disagree", "Neither", "Agree", "Strongly agree"]


def reference_csv(rows: int = 60, seed: int = 4) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["age", "sex", "spend_health", "spend_space", "trust_brands", "why"])
    for _ in range(rows):
        sex = rng.choice(["Female", "Male"])
        writer.writerow(
            [
                rng.choice(["18-34", "35-54", "55+"]),
                sex,
                rng.choices(THREE, weights=[6, 3, 1])[0],
                rng.choices([*THREE, ""], weights=[2, 5, 3, 1])[0],
                rng.choice(FIVE),
                rng.choice(["Prices keep going up for everything.", "I trust what my friends recommend to me."]),
            ]
        )
    return out.getvalue().encode()


MAPPING = {
    "questions": [
        {"column": "spend_health", "kind": "scale", "scale": THREE, "label": "Health",
         "text": "Are we spending too much, too little or about the right amount on the nation's health?"},
        {"column": "spend_space", "kind": "scale", "scale": THREE, "label": "Space",
         "text": "Are we spending too much, too little or about the right amount on space exploration?"},
        {"column": "trust_brands", "kind": "scale", "scale": FIVE, "label": "Trust in brands",
         "text": "I trust the brands I buy."},
    ],
    "demographics": [
        {"column": "age", "dimension": "age", "label": "Age"},
        {"column": "sex", "dimension": "gender", "label": "Gender"},
    ],
    "weight": None,
    "ignored": ["why"],
}  # fmt: skip


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=1000, idempotency_key="test:fund")
    return owner


def upload_reference(owner, data: bytes | None = None):
    upload = SimpleUploadedFile("brands.csv", data or reference_csv(), content_type="text/csv")
    return services.reference_upload(owner=owner, upload=upload, name="Brand tracker")


def test_a_validation_runs_end_to_end_and_scores_every_question(funded, fake_llm):
    reference = services.reference_map(reference=upload_reference(funded), mapping=MAPPING)
    before = credits_balance(user=funded)
    validation = services.validation_start(owner=funded, reference=reference, size=24, seed=3)
    validation.refresh_from_db()
    assert validation.state == ValidationState.DONE, validation.error
    panel = validation.panel
    assert panel.target_kind == TargetKind.REFERENCE and panel.members.count() == 24
    # Each synthetic respondent carries a real respondent's demographics as its sampled core.
    people = {(row["age"], row["sex"]) for row in csv.DictReader(io.StringIO(reference_csv().decode()))}
    for member in panel.members.all():
        assert (member.core["age"], member.core["gender"]) in people
    card = validation.scorecard
    assert [q["label"] for q in card["questions"]] == ["Health", "Space", "Trust in brands"]
    for question in card["questions"]:
        assert question["n_human"] >= 50 and question["n_synthetic"] == 24
        assert 0 <= question["measures"]["ks_similarity"] <= 1
        assert set(question["baselines"]) == {"uniform", "majority", "ceiling"}
    assert card["questions"][2]["kind"] == "scale"
    assert card["verdict"]["checks"] and isinstance(card["verdict"]["passed"], bool)
    assert card["verdict"]["summary"]
    # Credits as survey mode: the panel's personas, then their answers.
    spent = before - credits_balance(user=funded)
    assert spent == services.validation_cost(size=24, question_count=3)


def test_the_gss_reference_loads_with_its_mapping(funded):
    data = gss.reference_csv(items=["natspac", "natheal"])
    reference = services.reference_map(
        reference=upload_reference(funded, data), mapping=gss.mapping(["natspac", "natheal"])
    )
    assert reference.row_count == 2348
    assert [q["column"] for q in reference.mapping["questions"]] == ["natspac", "natheal"]


def test_an_unmapped_reference_cannot_be_validated(funded):
    with pytest.raises(ApplicationError, match="Map the reference"):
        services.validation_start(owner=funded, reference=upload_reference(funded), size=10)


def test_short_of_credits_is_a_402_before_any_work(owner):
    credits_grant(user=owner, amount=5, idempotency_key="test:little")
    reference = services.reference_map(reference=upload_reference(owner), mapping=MAPPING)
    with pytest.raises(InsufficientCredits):
        services.validation_start(owner=owner, reference=reference, size=40)
    assert not Validation.objects.exists() and not Panel.objects.exists() and not Survey.objects.exists()


@pytest.mark.parametrize("size", [0, 61, "x"])
def test_a_size_outside_the_reference_is_refused(funded, size):
    reference = services.reference_map(reference=upload_reference(funded), mapping=MAPPING)
    with pytest.raises(ApplicationError, match=r"between 1 and 60|whole number"):
        services.validation_start(owner=funded, reference=reference, size=size)


def test_validate_panel_runs_a_reference_end_to_end_and_prints_the_scorecard(owner, fake_llm, tmp_path):
    """The benchmark command offline: a CSV and its mapping, the credits granted, the scorecard printed."""
    reference = tmp_path / "brands.csv"
    reference.write_bytes(reference_csv())
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    out = io.StringIO()
    call_command(
        "validate_panel", "--user", owner.email, "--reference", str(reference), "--mapping", str(mapping),
        "--size", "20", "--grant", stdout=out,
    )  # fmt: skip
    printed = out.getvalue()
    assert "Trust in brands" in printed and "Beats a uniform guess" in printed
    validation = Validation.objects.get(owner=owner)
    assert validation.state == ValidationState.DONE and len(validation.scorecard["questions"]) == 3


def test_validate_panel_says_what_is_wrong(owner):
    with pytest.raises(CommandError, match="No such file"):
        call_command("validate_panel", "--user", owner.email, "--reference", "nowhere.csv")
    with pytest.raises(CommandError, match="No account"):
        call_command("validate_panel", "--user", "nobody@example.com")


def test_open_answers_are_compared_by_their_themes(funded, client):
    """Offline, on the simulator (the fake server's themes are schema-valid noise, which the checks drop)."""
    mapping = {**MAPPING, "questions": [*MAPPING["questions"][:1], {"column": "why", "kind": "open", "label": "Why",
               "text": "Why do you buy the brands you buy?"}], "ignored": []}  # fmt: skip
    reference = services.reference_map(reference=upload_reference(funded), mapping=mapping)
    validation = services.validation_start(owner=funded, reference=reference, size=20, seed=8)
    validation.refresh_from_db()
    assert validation.state == ValidationState.DONE, validation.error
    (compared,) = validation.scorecard["open_questions"]
    assert compared["label"] == "Why" and compared["human_answers"] == 60 and compared["synthetic_answers"] == 20
    assert compared["human_themes"] and compared["synthetic_themes"], json.dumps(compared)
    assert 0 <= compared["f1"] <= 1
    matched = {pair["human"] for pair in compared["pairs"]}
    assert matched | set(compared["unmatched_human"]) == {theme["title"] for theme in compared["human_themes"]}
    client.force_login(funded)
    page = client.get(f"/validation/{validation.pk}/").content.decode()
    assert "Open-text questions" in page and compared["human_themes"][0]["title"] in page
    exported = client.get(f"/validation/{validation.pk}/scorecard.csv").content.decode("utf-8-sig")
    (row,) = [line for line in csv.reader(io.StringIO(exported)) if line[0] == "open"]
    assert row[1] == "Why" and row[-1].startswith("Themes F1")


@pytest.mark.parametrize(("field", "value"), [("seed", "abc"), ("seed", -1), ("depth", "deep")])
def test_a_bad_seed_or_depth_is_refused_before_any_work(funded, field, value):
    reference = services.reference_map(reference=upload_reference(funded), mapping=MAPPING)
    with pytest.raises(ApplicationError, match=r"seed must be|light or full"):
        services.validation_start(owner=funded, reference=reference, size=5, **{field: value})
    assert not Validation.objects.exists()
