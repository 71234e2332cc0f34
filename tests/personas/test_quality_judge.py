"""The persona quality judge (personas/quality.py): scores from the model, a failed check (never a score) when
the judge answers garbage, the bar from App settings, and the reads."""

import json

import pytest

from cohorta.core.models import get_app_settings
from llm.simulator_quality import judge
from personas.models import PersonaCheck
from personas.quality import JUDGE_SCHEMA, checks_for, judge_messages, judge_persona, latest_check, latest_checks_for
from tests.personas.factories import PersonaFactory
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db

EVIDENCE = [
    ("What matters most to you?", "My kids, and not wasting money."),
    ("What do you care about above everything else?", "My children, and being careful with money."),
]


def verdict(adherence: int, consistency: int) -> str:
    return json.dumps(
        {
            "adherence": {"reason": f"Adherence reason {adherence}.", "score": adherence},
            "consistency": {"reason": f"Consistency reason {consistency}.", "score": consistency},
        }
    )


def run_judge(persona, **overrides):
    kwargs = {
        "persona": persona,
        "evidence": EVIDENCE,
        "user": persona.owner,
        "source_kind": "probe",
        "source_id": None,
        "source_label": "Probe interview",
    }
    kwargs.update(overrides)
    return judge_persona(**kwargs)


def test_scores_and_reasons_come_from_the_judge(fake_llm):
    persona = PersonaFactory(name="Dana Whitfield", occupation="Nurse", speaking_style="Blunt, short sentences.")
    fake_llm.add_fault("invalid_output", content=verdict(7, 4))  # a valid answer, served as the judge's

    check = run_judge(persona, source_kind="panel", source_id=12, source_label="Panel: Ohio voters")

    assert (check.adherence, check.consistency) == (7, 4)
    assert check.adherence_reason == "Adherence reason 7."
    assert check.consistency_reason == "Consistency reason 4."
    assert check.judge_model == fake_llm.requests[-1].body["model"]
    assert not check.failed and check.error == ""
    assert (check.source_kind, check.source_id, check.source_label) == ("panel", 12, "Panel: Ohio voters")
    assert check.evidence_count == 2
    assert PersonaCheck.objects.get().pk == check.pk
    event = UsageEvent.objects.get()
    assert (event.feature, event.persona_id, event.user_id) == ("persona_judge", persona.pk, persona.owner_id)
    # What the judge was shown: the propositions, the profile and the answers, fenced as data.
    prompt = fake_llm.requests[-1].body["messages"][0]["content"]
    assert "IN-CHARACTER ADHERENCE" in prompt and "SELF-CONSISTENCY" in prompt
    assert "When in doubt, score lower" in prompt
    assert "<<<REFERENCE the persona's profile" in prompt and "- Works as: Nurse" in prompt
    assert "Q2: What do you care about above everything else?\nA2: My children" in prompt
    schema = fake_llm.requests[-1].body["response_format"]["json_schema"]
    assert schema["strict"] is True and schema["name"] == "persona_judge"


@pytest.mark.parametrize(
    "faults",
    [
        [("garbage_output", {})],  # not JSON at all
        [("invalid_output", {"content": verdict(15, 3)})],  # JSON, but a score off the 0–9 scale
        [("invalid_output", {"content": '{"adherence": 7}'})],  # JSON of the wrong shape
    ],
)
def test_a_judge_that_answers_garbage_leaves_a_failed_check_not_a_score(fake_llm, faults):
    persona = PersonaFactory()
    for kind, options in faults:
        fake_llm.add_fault(kind, times=2, **options)  # the first answer and the gateway's one retry

    check = run_judge(persona)

    assert check.failed and check.pk is not None
    assert check.adherence is None and check.consistency is None
    assert check.error.startswith("The quality judge gave no usable scores:")
    assert "wrong shape" in check.error
    assert not check.flagged
    assert len(fake_llm.requests) == 2  # tried, retried once, then gave up: no third call
    assert latest_check(persona=persona) is None  # a failed check says nothing about the persona


def test_one_bad_answer_then_a_good_one_is_scored(fake_llm):
    persona = PersonaFactory()
    fake_llm.add_fault("garbage_output")
    fake_llm.add_fault("invalid_output", content=verdict(8, 8))
    check = run_judge(persona)
    assert (check.adherence, check.consistency, check.failed) == (8, 8, False)


def test_a_provider_outage_is_a_failed_check_too(fake_llm, settings):
    settings.LLM_MAX_RETRIES = 0
    persona = PersonaFactory()
    fake_llm.add_fault("server_error", status=500)
    check = run_judge(persona)
    assert check.failed and "unavailable" in check.error


def test_no_answers_is_a_failed_check_without_a_call(fake_llm):
    persona = PersonaFactory()
    check = run_judge(persona, evidence=[("Anything?", "   ")])
    assert check.failed and "no answers" in check.error
    assert fake_llm.requests == []


def test_unknown_source_kind_is_refused():
    with pytest.raises(ValueError):
        run_judge(PersonaFactory(), source_kind="vibes")


@pytest.mark.parametrize(
    ("bar", "adherence", "consistency", "flagged"),
    [(6, 6, 6, False), (6, 5, 9, True), (6, 9, 5, True), (4, 5, 4, False), (9, 8, 9, True), (0, 0, 0, False)],
)
def test_flagged_is_below_the_admin_bar_on_either_score(bar, adherence, consistency, flagged):
    app = get_app_settings()
    app.quality_judge_bar = bar
    app.save()
    check = PersonaCheck.objects.create(
        persona=PersonaFactory(),
        adherence=adherence,
        consistency=consistency,
        adherence_reason="a",
        consistency_reason="c",
        source_kind="probe",
    )
    assert check.flagged is flagged
    below = sorted((score, reason) for score, reason in ((adherence, "a"), (consistency, "c")) if score < bar)
    assert check.flag_reasons == ([reason for _, reason in below] if flagged else [])


def test_simulator_scores_follow_what_was_said(settings):
    """The offline judge is not a constant: breaking character and contradicting oneself score low."""
    persona = PersonaFactory(occupation="Nurse", values=["Family", "Honesty"], location="Leeds")
    good = [
        ("What matters most to you?", "Family and honesty, always. Nursing in Leeds taught me that."),
        ("What do you care about most of all?", "Family and honesty, always. That is what nursing taught me."),
    ]
    bad = [
        ("What matters most to you?", "As an AI language model I do not have values."),
        ("What do you care about most of all?", "Fast cars, loud parties and gambling on weekends."),
    ]

    def scores(evidence):
        prompt = judge_messages(persona, evidence)[0]["content"]
        data = judge(JUDGE_SCHEMA, prompt)
        return data["adherence"]["score"], data["consistency"]["score"]

    good_scores, bad_scores = scores(good), scores(bad)
    assert good_scores[0] > bad_scores[0] and good_scores[1] > bad_scores[1]
    assert bad_scores[0] <= 2
    assert min(good_scores) >= 6


def test_judge_through_the_simulator_saves_a_simulated_check(settings):
    settings.LLM_SIMULATED = True
    settings.LLM_SIMULATOR_TOKEN_DELAY = 0
    persona = PersonaFactory(occupation="Nurse", values=["Family"])
    check = run_judge(persona, evidence=[("What matters?", "Family, and my work as a nurse.")] * 2)
    assert check.simulated and not check.failed
    assert 0 <= check.adherence <= 9 and 0 <= check.consistency <= 9


def test_reads_latest_and_for_a_set():
    one, two = PersonaFactory(), PersonaFactory()
    old = PersonaCheck.objects.create(persona=one, adherence=3, consistency=3, source_kind="probe")
    new = PersonaCheck.objects.create(persona=one, adherence=8, consistency=7, source_kind="panel", source_id=5)
    PersonaCheck.objects.create(persona=one, source_kind="panel", source_id=5, error="failed")  # newest, failed
    theirs = PersonaCheck.objects.create(persona=two, adherence=2, consistency=9, source_kind="survey", source_id=5)

    assert latest_check(persona=one) == new
    assert latest_checks_for(personas=[one, two]) == {one.pk: new, two.pk: theirs}
    assert set(checks_for(personas=[one.pk])) == {old, new, PersonaCheck.objects.filter(error="failed").get()}
    assert list(checks_for(personas=[one, two], source_kind="panel", source_id=5).filter(error="")) == [new]
