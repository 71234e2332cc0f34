"""Generated personas keep to the brief's hard limits (ages, locations, gender mix, count): a sketch that breaks
one is sketched again once, and what is still off is saved as a visible flag."""

import json

import pytest

from billing.selectors import credits_balance, ledger_is_consistent
from billing.services import credits_grant
from cohorta.jobs.models import JobState
from personas import generation
from personas.brief_limits import BriefLimits, gender_targets, location_fits, places_parse
from personas.models import GenerationBrief, Persona
from personas.services import persona_update
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)

BRIEF = "UK parents of young children who cook on weeknights and are curious about meal kits."
CITIES = "UK: Leeds, Bristol, Glasgow"


@pytest.fixture
def funded(owner):
    credits_grant(user=owner, amount=100, idempotency_key="test:fund")
    return owner


def _person(name: str, age: int, location: str, gender: str = "Female") -> dict:
    return {
        "name": name,
        "age": age,
        "gender": gender,
        "location": location,
        "occupation": "Nurse",
        "income_bracket": "£30–40k",
        "education": "Degree",
        "household": "Partner and two children",
        "grounded_in": None,
    }


def _answer(*people: dict) -> str:
    return json.dumps({"personas": list(people)})


def _generate(funded, fake_llm, settings, *answers: str, **brief) -> GenerationBrief:
    settings.PERSONA_GENERATION_PARALLELISM = 1  # the requests come in a known order: sketch, redo, profiles
    for content in answers:
        fake_llm.add_fault("invalid_output", content=content)  # the fake's answer to the next request
    brief = generation.brief_start(owner=funded, description=BRIEF, **brief)
    brief.refresh_from_db()
    assert brief.job.state == JobState.DONE, brief.job.error
    return brief


def _prompt(fake_llm, index: int) -> str:
    return fake_llm.requests[index].body["messages"][-1]["content"]


# --- reading the brief ---------------------------------------------------------------------------


def test_a_region_prefix_holds_for_the_places_after_it():
    places = places_parse(["UK: Leeds", "Bristol", "Glasgow", "France: Lyon"])
    assert [place.label for place in places] == ["Leeds, UK", "Bristol, UK", "Glasgow, UK", "Lyon, France"]
    assert location_fits("Leeds, West Yorkshire", places) and location_fits("glasgow", places)
    assert not location_fits("Lagos, Nigeria", places) and not location_fits("", places)
    assert location_fits("Cardiff, Wales", places_parse(["UK"]))  # a country: any of its names will do


@pytest.mark.parametrize(
    ("mix", "count", "targets"),
    [
        ("roughly even", 6, {"female": 3, "male": 3}),
        ("all women", 4, {"female": 4}),
        ("mostly men", 6, {"male": 4}),
        ("60% women", 5, {"female": 3, "male": 2}),
        ("2 women and 1 man", 3, {"female": 2, "male": 1}),
        ("", 6, {}),
        ("whatever fits", 6, {}),
    ],
)
def test_the_gender_mix_is_read_as_numbers(mix, count, targets):
    assert gender_targets(mix, count) == targets


def test_the_prompt_states_the_limits_plainly(funded, fake_llm, settings):
    _generate(funded, fake_llm, settings, count=2, age_min=25, age_max=50, locations=CITIES, gender_mix="even")
    prompt = _prompt(fake_llm, 0)
    assert "- Count: exactly 2 people, no more and no fewer." in prompt
    assert "- Age: 25 to 50 (inclusive); nobody younger than 25 or older than 50." in prompt
    assert '- Location: each person lives in one of these places: "Leeds, UK"; "Bristol, UK"; "Glasgow, UK".' in prompt
    assert "- Gender: exactly 1 woman and 1 man (the brief says: even)." in prompt


# --- checked, sketched again, flagged ------------------------------------------------------------


def test_a_sketch_outside_the_limits_is_sketched_again_and_saved_clean(funded, fake_llm, settings):
    first = _answer(
        _person("Amara Okafor", 31, "Leeds, UK"),
        _person("Joan Whitley", 72, "Bristol, UK"),
        _person("Chidi Eze", 40, "Lagos, Nigeria", "Male"),
    )
    again = _answer(_person("Ruth Price", 45, "Bristol, UK"), _person("Callum Reid", 33, "Glasgow, UK", "Male"))
    brief = _generate(funded, fake_llm, settings, first, again, count=3, age_min=25, age_max=50, locations=CITIES)

    personas = Persona.objects.filter(brief=brief).order_by("name")
    assert [(p.name, p.age, p.location) for p in personas] == [
        ("Amara Okafor", 31, "Leeds, UK"),
        ("Callum Reid", 33, "Glasgow, UK"),
        ("Ruth Price", 45, "Bristol, UK"),
    ]
    assert all(p.brief_mismatch == "" for p in personas)
    # One more sketch call, for the two that broke the limits, told what was wrong with them.
    redo = _prompt(fake_llm, 1)
    assert "- Count: exactly 2 people" in redo
    assert "Age 72 is outside the brief's 25–50." in redo
    assert "Lives in Lagos, Nigeria, not one of the brief's locations (Leeds, Bristol, Glasgow (UK))." in redo
    assert "Amara Okafor" in redo  # a kept name is not reused
    assert len(fake_llm.requests) == 2 + 3  # two sketches, then exactly the three profiles asked for
    assert UsageEvent.objects.filter(job=brief.job, feature="persona_basic").count() == 2
    # The redo is ours to pay for: the researcher pays per persona delivered, once.
    assert 100 - credits_balance(user=funded) == 3 * 2 and ledger_is_consistent(user=funded)
    assert brief.job.result["created"] and len(brief.job.result["created"]) == 3


def test_a_sketch_still_outside_the_limits_is_saved_with_a_flag_that_shows(funded, fake_llm, settings, client):
    first = _answer(_person("Amara Okafor", 31, "Leeds, UK"), _person("Joan Whitley", 72, "Lagos, Nigeria"))
    again = _answer(_person("Edith Shaw", 70, "Paris, France"))  # no better: the new sketch is kept, flagged
    brief = _generate(funded, fake_llm, settings, first, again, count=2, age_min=25, age_max=50, locations=CITIES)

    flagged = Persona.objects.get(brief=brief, name="Edith Shaw")
    assert flagged.brief_mismatch == (
        "Age 70 is outside the brief's 25–50. "
        "Lives in Paris, France, not one of the brief's locations (Leeds, Bristol, Glasgow (UK))."
    )
    assert Persona.objects.get(brief=brief, name="Amara Okafor").brief_mismatch == ""
    assert Persona.objects.filter(brief=brief).count() == 2 and 100 - credits_balance(user=funded) == 4
    assert len(fake_llm.requests) == 2 + 2  # sketched again once, not again and again

    client.force_login(funded)
    listing = client.get("/personas/").content.decode()
    assert listing.count("Outside the brief") == 1 and "Age 70 is outside the brief&#x27;s 25–50." in listing
    page = client.get(f"/personas/{flagged.pk}/").content.decode()
    assert 'id="brief-mismatch"' in page and "Lives in Paris, France" in page
    assert f"/personas/briefs/{brief.pk}/" in page

    # Brought inside the brief by hand, it loses the part of the flag that no longer holds.
    persona_update(persona=flagged, data={"age": 44})
    assert flagged.brief_mismatch.startswith("Lives in Paris, France") and "Age" not in flagged.brief_mismatch
    persona_update(persona=flagged, data={"location": "Glasgow, UK"})
    assert flagged.brief_mismatch == ""
    assert 'id="brief-mismatch"' not in client.get(f"/personas/{flagged.pk}/").content.decode()


def test_the_gender_mix_is_kept_by_sketching_the_surplus_again(funded, fake_llm, settings):
    men = [_person(name, 30 + i, "Leeds, UK", "Male") for i, name in enumerate(["Al Ng", "Bo Li", "Cy Ow", "Di Ma"])]
    women = _answer(_person("Eve Ros", 41, "Leeds, UK"), _person("Fay Orr", 36, "Leeds, UK", "Woman (she/her)"))
    brief = _generate(funded, fake_llm, settings, _answer(*men), women, count=4, gender_mix="roughly even")

    assert "- Gender: exactly 2 women (the brief says: roughly even)." in _prompt(fake_llm, 1)
    assert "Gender: the panel has 4 men; the brief asks for roughly even (2 women and 2 men)." in _prompt(fake_llm, 1)
    personas = Persona.objects.filter(brief=brief)
    assert sorted(p.name for p in personas) == ["Al Ng", "Bo Li", "Eve Ros", "Fay Orr"]
    assert not any(p.brief_mismatch for p in personas)


def test_a_brief_without_limits_costs_no_second_sketch(funded, fake_llm, settings):
    brief = _generate(funded, fake_llm, settings, count=3)
    assert len(fake_llm.requests) == 1 + 3 and not Persona.objects.filter(brief=brief).exclude(brief_mismatch="")


def test_the_limits_object_flags_the_surplus_gender_last():
    limits = BriefLimits(count=3, genders={"female": 1, "male": 1}, gender_mix="mixed")
    issues = limits.panel_issues([_person("A", 30, "x"), _person("B", 31, "y"), _person("C", 32, "z")])
    assert [bool(found) for found in issues] == [False, False, True]
    assert limits.genders_needed([_person("A", 30, "x")] * 3, [2]) == {"male": 1}
