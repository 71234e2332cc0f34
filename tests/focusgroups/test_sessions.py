"""Focus-group sessions: services, the list/create/settings/archive/delete pages, the picker, the API, access."""

import re
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cohorta.errors import ApplicationError
from focusgroups import services
from focusgroups.access import get_focus_group_for_user
from focusgroups.models import (
    Answer,
    Asset,
    AssetKind,
    DiscussionGuide,
    FocusGroup,
    FocusGroupStatus,
    Message,
    Participant,
)
from personas.models import Persona
from tests.focusgroups.factories import FocusGroupFactory, add_message
from tests.personas.factories import PersonaFactory

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _personas(owner, count: int, **kwargs) -> list[Persona]:
    return [PersonaFactory(owner=owner, **kwargs) for _ in range(count)]


def _ids(personas) -> list[int]:
    return [persona.pk for persona in personas]


def _participant_ids(focus_group) -> list[int]:
    return list(
        Participant.objects.filter(focus_group=focus_group).order_by("position").values_list("persona_id", flat=True)
    )


def _snapshot(focus_group) -> tuple:
    focus_group.refresh_from_db()
    return (
        focus_group.title,
        focus_group.objective,
        focus_group.archived,
        focus_group.cost_cap_usd,
        _participant_ids(focus_group),
        Message.objects.filter(focus_group=focus_group).count(),
    )


@pytest.fixture
def logged_in(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def six(owner):
    return _personas(owner, 6)


def _form(personas, **overrides) -> dict:
    data = {
        "title": "Oat milk, by subscription",
        "objective": "Learn whether young families would pay monthly for oat milk, and what would stop them.",
        "concept": "A 4-litre monthly box, £12, skip or cancel any time.",
        "cost_cap_usd": "",
        "persona_ids": [str(pk) for pk in _ids(personas)],
    }
    data.update(overrides)
    return data


# --- services: create ------------------------------------------------------------------------------


def test_create_with_six_personas_keeps_their_order(owner, six):
    order = [six[3], six[0], six[5], six[1], six[4], six[2]]
    fg = services.focus_group_create(
        owner=owner, title="  Oat milk  ", objective="Why or why not?", persona_ids=_ids(order), cost_cap_usd="5.50"
    )
    assert fg.title == "Oat milk"
    assert fg.status == FocusGroupStatus.DRAFT
    assert fg.cost_cap_usd == Decimal("5.50")
    assert _participant_ids(fg) == _ids(order)


@pytest.mark.parametrize(
    ("count", "duplicate", "message"),
    [
        (1, False, "Choose at least 2 participants (you chose 1)"),
        (0, False, "Choose at least 2 participants (you chose 0)"),
        (13, False, "Choose at most 12 participants (you chose 13)"),
        (3, True, "Each persona can take part only once"),
    ],
)
def test_create_refuses_a_wrong_number_or_repeats(owner, count, duplicate, message):
    personas = _personas(owner, count)
    ids = _ids(personas) + ([personas[0].pk] if duplicate else [])
    with pytest.raises(ApplicationError) as exc:
        services.focus_group_create(owner=owner, title="T", objective="O", persona_ids=ids)
    assert exc.value.code == "validation_error"
    assert exc.value.status_code == 400
    assert message in exc.value.extra["fields"]["persona_ids"][0]
    assert not FocusGroup.objects.exists()
    assert not Participant.objects.exists()


def test_create_with_another_users_persona_is_not_found(owner, other_user):
    mine = _personas(owner, 2)
    theirs = PersonaFactory(owner=other_user)
    for ids in ([*_ids(mine), theirs.pk], [*_ids(mine), 999_999], [*_ids(mine), "abc"]):
        with pytest.raises(ApplicationError) as exc:
            services.focus_group_create(owner=owner, title="T", objective="O", persona_ids=ids)
        assert exc.value.status_code == 404
        assert exc.value.message == "No such persona."
    assert not FocusGroup.objects.exists()


def test_create_reports_every_field_problem_at_once(owner):
    persona = PersonaFactory(owner=owner)
    with pytest.raises(ApplicationError) as exc:
        services.focus_group_create(owner=owner, title=" ", objective="", persona_ids=[persona.pk], cost_cap_usd="-1")
    fields = exc.value.extra["fields"]
    assert set(fields) == {"title", "objective", "persona_ids", "cost_cap_usd"}
    assert exc.value.message == "A title is required."
    assert not FocusGroup.objects.exists()


@pytest.mark.parametrize("cap", ["0", "abc", "1.234", "100000000"])
def test_create_refuses_a_bad_spending_cap(owner, six, cap):
    with pytest.raises(ApplicationError) as exc:
        services.focus_group_create(owner=owner, title="T", objective="O", persona_ids=_ids(six[:2]), cost_cap_usd=cap)
    assert "cost_cap_usd" in exc.value.extra["fields"]


# --- services: update, participants ------------------------------------------------------------


def test_update_changes_only_what_is_given(owner):
    fg = FocusGroupFactory(owner=owner, participants=2, concept="Old concept", cost_cap_usd=Decimal("3.00"))
    services.focus_group_update(focus_group=fg, title="New title")
    fg.refresh_from_db()
    assert (fg.title, fg.concept, fg.cost_cap_usd) == ("New title", "Old concept", Decimal("3.00"))
    services.focus_group_update(focus_group=fg, concept="", cost_cap_usd=None)
    fg.refresh_from_db()
    assert (fg.concept, fg.cost_cap_usd) == ("", None)
    with pytest.raises(ApplicationError) as exc:
        services.focus_group_update(focus_group=fg, title="", objective=" ")
    assert set(exc.value.extra["fields"]) == {"title", "objective"}
    fg.refresh_from_db()
    assert fg.title == "New title"


def test_participants_set_adds_removes_and_reorders_before_anyone_speaks(owner):
    a, b, c, d = _personas(owner, 4)
    fg = FocusGroupFactory(owner=owner, participants=[a, b, c])
    services.participants_set(focus_group=fg, persona_ids=[d.pk, c.pk])
    assert _participant_ids(fg) == [d.pk, c.pk]
    services.participants_set(focus_group=fg, persona_ids=[c.pk, a.pk, d.pk])
    assert _participant_ids(fg) == [c.pk, a.pk, d.pk]


def test_participants_set_keeps_everyone_who_has_spoken(owner):
    a, b, c, d = _personas(owner, 4)
    fg = FocusGroupFactory(owner=owner, participants=[a, b, c])
    add_message(fg, content="What do you think of a monthly box?")
    add_message(fg, persona=a)
    add_message(fg, persona=b)

    # Adding is fine, and so is removing someone who has not spoken.
    services.participants_set(focus_group=fg, persona_ids=[a.pk, b.pk, d.pk])
    assert _participant_ids(fg) == [a.pk, b.pk, d.pk]

    with pytest.raises(ApplicationError) as exc:
        services.participants_set(focus_group=fg, persona_ids=[a.pk, d.pk])
    assert exc.value.status_code == 409
    assert exc.value.code == "participant_has_spoken"
    assert f"{b.name} has already spoken" in exc.value.message
    assert exc.value.extra == {"persona_ids": [b.pk]}
    assert _participant_ids(fg) == [a.pk, b.pk, d.pk]


@pytest.mark.parametrize("case", ["one", "thirteen", "duplicate", "foreign"])
def test_participants_set_follows_the_create_rules(owner, other_user, case):
    personas = _personas(owner, 13)
    fg = FocusGroupFactory(owner=owner, participants=personas[:3])
    ids = {
        "one": _ids(personas[:1]),
        "thirteen": _ids(personas),
        "duplicate": [personas[0].pk, personas[1].pk, personas[0].pk],
        "foreign": [personas[0].pk, PersonaFactory(owner=other_user).pk],
    }[case]
    with pytest.raises(ApplicationError) as exc:
        services.participants_set(focus_group=fg, persona_ids=ids)
    assert exc.value.status_code == (404 if case == "foreign" else 400)
    assert _participant_ids(fg) == _ids(personas[:3])


# --- services: archive, delete -------------------------------------------------------------------


def test_archive_makes_the_session_read_only_until_restored(owner):
    personas = _personas(owner, 3)
    fg = FocusGroupFactory(owner=owner, participants=personas[:2])
    services.focus_group_archive(focus_group=fg, archived=True)
    fg.refresh_from_db()
    assert fg.archived and not fg.accepts_messages
    assert get_focus_group_for_user(owner, fg.pk) == fg
    with pytest.raises(ApplicationError) as exc:
        get_focus_group_for_user(owner, fg.pk, for_write=True)
    assert exc.value.status_code == 409
    with pytest.raises(ApplicationError):
        services.focus_group_update(focus_group=fg, title="Changed")
    with pytest.raises(ApplicationError):
        services.participants_set(focus_group=fg, persona_ids=_ids(personas))

    services.focus_group_archive(focus_group=fg, archived=False)
    fg = get_focus_group_for_user(owner, fg.pk, for_write=True)
    services.focus_group_update(focus_group=fg, title="Changed")
    assert FocusGroup.objects.get(pk=fg.pk).title == "Changed"


def test_delete_removes_everything_in_the_session_but_keeps_the_personas(owner, django_capture_on_commit_callbacks):
    a, b = _personas(owner, 2)
    fg = FocusGroupFactory(owner=owner, participants=[a, b])
    prompt = add_message(fg, content="First question")
    add_message(fg, persona=a)
    Answer.objects.create(focus_group=fg, persona=b, prompt_message=prompt)
    DiscussionGuide.objects.create(focus_group=fg, data={"title": "Guide", "sections": []})
    asset = Asset(focus_group=fg, kind=AssetKind.IMAGE, filename="shelf.png")
    asset.image.save("shelf.png", ContentFile(b"png"), save=True)
    storage, name = asset.image.storage, asset.image.name
    assert storage.exists(name)
    keep = FocusGroupFactory(owner=owner, participants=[a, b])
    add_message(keep, persona=a)

    with django_capture_on_commit_callbacks(execute=True):
        services.focus_group_delete(focus_group=fg)

    assert not FocusGroup.objects.filter(pk=fg.pk).exists()
    for model in (Participant, Message, Answer, Asset, DiscussionGuide):
        assert not model.objects.filter(focus_group_id=fg.pk).exists()
    assert not storage.exists(name)
    assert Persona.objects.filter(pk__in=[a.pk, b.pk]).count() == 2
    assert Message.objects.filter(focus_group=keep).count() == 1
    assert _participant_ids(keep) == [a.pk, b.pk]


# --- list page ----------------------------------------------------------------------------------


def test_list_shows_only_my_sessions_with_status_participants_and_counts(logged_in, owner, other_user):
    mine = FocusGroupFactory(owner=owner, title="Oat milk pricing", participants=3, status=FocusGroupStatus.LIVE)
    add_message(mine)
    add_message(mine, persona=mine.participants.first().persona)
    FocusGroupFactory(owner=other_user, title="Someone else's session", participants=2)
    response = logged_in.get(reverse("focusgroups:index"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Oat milk pricing" in page
    assert "Someone else" not in page
    row = response.context["page_obj"].object_list[0]
    assert (row.participant_count, row.message_count) == (3, 2)
    assert page.count('class="avatar"') == 3
    assert "fg-status-live" in page
    assert reverse("focusgroups:detail", args=[mine.pk]) in page
    assert reverse("focusgroups:create") in page


def test_list_search_and_archived_toggle(logged_in, owner):
    FocusGroupFactory(owner=owner, title="Oat milk pricing")
    FocusGroupFactory(owner=owner, title="Banking app onboarding", concept="A new savings pot feature")
    FocusGroupFactory(owner=owner, title="Old oat study", archived=True)

    def titles(**params):
        response = logged_in.get(reverse("focusgroups:index"), params)
        return {fg.title for fg in response.context["page_obj"].object_list}

    assert titles() == {"Oat milk pricing", "Banking app onboarding"}
    assert titles(q="oat") == {"Oat milk pricing"}
    assert titles(q="savings") == {"Banking app onboarding"}
    assert titles(archived="1") == {"Old oat study"}
    assert titles(archived="1", q="oat") == {"Old oat study"}
    assert titles(q="nothing like this") == set()
    response = logged_in.get(reverse("focusgroups:index"), {"q": "nothing like this"})
    assert "No sessions match" in _text(response)


def test_list_empty_state_explains_and_sends_to_personas_first(logged_in, owner):
    response = logged_in.get(reverse("focusgroups:index"))
    text = _text(response)
    assert "No focus groups yet" in text
    assert "A focus group puts 2–12 of your personas in a room" in text
    assert reverse("personas:generate") in response.content.decode()
    assert "Generate personas first" in text

    _personas(owner, 2)
    response = logged_in.get(reverse("focusgroups:index"))
    assert "Generate personas first" not in _text(response)
    assert "Create your first focus group" in _text(response)


def test_list_query_count_does_not_grow_with_sessions(logged_in, owner):
    personas = _personas(owner, 4)

    def make(count):
        for _ in range(count):
            fg = FocusGroupFactory(owner=owner, participants=personas[:3])
            add_message(fg, persona=personas[0])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert logged_in.get(reverse("focusgroups:index")).status_code == 200
        return len(captured)

    make(5)
    queries()  # warm the per-process caches (app settings, quota) the base template reads
    few = queries()
    make(45)
    assert queries() == few


# --- create page --------------------------------------------------------------------------------


def test_create_page_lists_only_my_personas_in_the_picker(logged_in, owner, other_user, six):
    stranger = PersonaFactory(owner=other_user, name="Zed Stranger")
    response = logged_in.get(reverse("focusgroups:create"))
    assert response.status_code == 200
    page = response.content.decode()
    for persona in six:
        assert f'name="pick" value="{persona.pk}"' in page
    assert stranger.name not in page
    assert 'hx-get="/focusgroups/persona-picker/"' in page or reverse("focusgroups:persona_picker") in page


def test_create_with_six_personas_redirects_to_the_discussion(logged_in, owner, six):
    response = logged_in.post(reverse("focusgroups:create"), _form(six, cost_cap_usd="7.50"))
    fg = FocusGroup.objects.get(owner=owner)
    assert response.status_code == 302
    assert response["Location"] == reverse("focusgroups:detail", args=[fg.pk])
    assert _participant_ids(fg) == _ids(six)
    assert fg.cost_cap_usd == Decimal("7.50")


@pytest.mark.parametrize(
    ("count", "duplicate", "message"),
    [
        (1, False, "Choose at least 2 participants"),
        (13, False, "Choose at most 12 participants"),
        (3, True, "Each persona can take part only once"),
    ],
)
def test_create_page_shows_participant_errors_and_saves_nothing(logged_in, owner, count, duplicate, message):
    personas = _personas(owner, count)
    data = _form(personas)
    if duplicate:
        data["persona_ids"].append(str(personas[0].pk))
    response = logged_in.post(reverse("focusgroups:create"), data)
    assert response.status_code == 200
    assert message in _text(response)
    assert not FocusGroup.objects.exists()
    # What was typed and chosen is kept (once each).
    page = response.content.decode()
    assert "Oat milk, by subscription" in page
    assert page.count(f'name="persona_ids" value="{personas[0].pk}"') == 1


def test_create_page_shows_field_and_participant_errors_together(logged_in, owner):
    persona = PersonaFactory(owner=owner)
    response = logged_in.post(reverse("focusgroups:create"), _form([persona], title="", objective=""))
    text = _text(response)
    assert "Give the session a title." in text
    assert "Say what the research needs to learn." in text
    assert "Choose at least 2 participants" in text
    assert not FocusGroup.objects.exists()


def test_create_page_with_another_users_persona_is_404_and_saves_nothing(logged_in, owner, other_user):
    mine = _personas(owner, 2)
    theirs = PersonaFactory(owner=other_user, name="Zed Stranger")
    response = logged_in.post(reverse("focusgroups:create"), _form([*mine, theirs]))
    assert response.status_code == 404
    assert "no longer exists" in _text(response)
    assert "Zed Stranger" not in response.content.decode()
    assert not FocusGroup.objects.exists()


def test_create_page_works_without_javascript(logged_in, owner, six):
    """Ticks arrive as pick/shown; a chip's remove button and the search button re-show the form unsaved."""
    url = reverse("focusgroups:create")
    base = _form([])
    # Search: nothing saved, the list narrows, typed text kept.
    response = logged_in.post(url, {**base, "q": six[0].name, "_search": "1"})
    assert response.status_code == 200
    assert not FocusGroup.objects.exists()
    assert [p.pk for p in response.context["picker_results"]] == [six[0].pk]
    assert "Oat milk, by subscription" in response.content.decode()
    assert "Choose at least" not in _text(response)

    # Tick three in the list; untick one already chosen; remove another with its chip button.
    data = {
        **base,
        "persona_ids": [str(six[0].pk), str(six[1].pk), str(six[2].pk)],
        "shown": [str(p.pk) for p in six],
        "pick": [str(six[0].pk), str(six[2].pk), str(six[3].pk), str(six[4].pk)],
        "unpick": str(six[4].pk),
    }
    response = logged_in.post(url, data)
    assert not FocusGroup.objects.exists()
    assert [p.pk for p in response.context["chosen"]] == [six[0].pk, six[2].pk, six[3].pk]

    del data["unpick"]
    response = logged_in.post(url, data)
    assert response.status_code == 302
    assert _participant_ids(FocusGroup.objects.get()) == [six[0].pk, six[2].pk, six[3].pk, six[4].pk]


def test_create_page_with_too_few_personas_links_to_generation(logged_in, owner):
    PersonaFactory(owner=owner)
    response = logged_in.get(reverse("focusgroups:create"))
    assert "needs at least 2 personas and you have 1" in _text(response)
    assert reverse("personas:generate") in response.content.decode()


# --- the picker partial -----------------------------------------------------------------------------


def test_picker_partial_searches_my_personas_and_ticks_the_chosen(logged_in, owner, other_user):
    maria = PersonaFactory(owner=owner, name="Maria Lopez", occupation="Nurse")
    tom = PersonaFactory(owner=owner, name="Tom Baker", occupation="Plumber")
    PersonaFactory(owner=other_user, name="Maria Stranger")
    url = reverse("focusgroups:persona_picker")
    response = logged_in.get(url, {"q": "maria", "persona_ids": [maria.pk, tom.pk]}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page
    assert "Maria Lopez" in page and "Nurse" in page
    assert "Maria Stranger" not in page and "Tom Baker" not in page
    assert re.search(rf'value="{maria.pk}" data-name="Maria Lopez" checked', page)
    assert "No persona matches" in _text(logged_in.get(url, {"q": "zzz"}))


def test_picker_marks_participants_who_spoke_as_fixed(logged_in, owner):
    a, b, c = _personas(owner, 3)
    fg = FocusGroupFactory(owner=owner, participants=[a, b])
    add_message(fg, persona=a)
    response = logged_in.get(reverse("focusgroups:persona_picker"), {"fg": fg.pk, "persona_ids": [a.pk, b.pk]})
    page = response.content.decode()
    assert f'name="pick" value="{a.pk}"' not in page  # disabled: cannot be unticked
    assert f'name="pick" value="{b.pk}"' in page
    assert re.search(rf'name="pick" value="{c.pk}" data-name="[^"]+">', page)  # listed, not ticked
    assert "Has spoken" in page


# --- settings (edit) page ----------------------------------------------------------------------------


def test_edit_page_has_the_session_header_and_settings_tab(logged_in, owner):
    fg = FocusGroupFactory(owner=owner, title="Oat milk pricing", participants=3)
    response = logged_in.get(reverse("focusgroups:edit", args=[fg.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="nav-link active" href="{}"'.format(reverse("focusgroups:edit", args=[fg.pk])) in page
    assert reverse("focusgroups:delete", args=[fg.pk]) in page
    assert reverse("focusgroups:archive", args=[fg.pk]) in page
    assert [p.pk for p in response.context["chosen"]] == _participant_ids(fg)


def test_edit_saves_fields_and_participants(logged_in, owner):
    personas = _personas(owner, 4)
    fg = FocusGroupFactory(owner=owner, participants=personas[:2])
    data = _form([personas[3], personas[0], personas[2]], title="Renamed", cost_cap_usd="2.25", concept="")
    response = logged_in.post(reverse("focusgroups:edit", args=[fg.pk]), data)
    assert response.status_code == 302
    fg.refresh_from_db()
    assert (fg.title, fg.concept, fg.cost_cap_usd) == ("Renamed", "", Decimal("2.25"))
    assert _participant_ids(fg) == [personas[3].pk, personas[0].pk, personas[2].pk]


def test_edit_refuses_to_remove_someone_who_spoke_and_changes_nothing(logged_in, owner):
    a, b, c = _personas(owner, 3)
    fg = FocusGroupFactory(owner=owner, participants=[a, b, c])
    add_message(fg, persona=c)
    before = _snapshot(fg)
    response = logged_in.post(reverse("focusgroups:edit", args=[fg.pk]), _form([a, b], title="Renamed"))
    assert response.status_code == 409
    assert f"{c.name} has already spoken in this session" in _text(response)
    assert _snapshot(fg) == before  # the title change rolled back too


def test_edit_validation_errors_keep_the_session(logged_in, owner):
    fg = FocusGroupFactory(owner=owner, participants=3)
    before = _snapshot(fg)
    response = logged_in.post(reverse("focusgroups:edit", args=[fg.pk]), _form(fg_personas(fg)[:1], title=""))
    assert response.status_code == 200
    assert "Give the session a title." in _text(response)
    assert "Choose at least 2 participants" in _text(response)
    assert _snapshot(fg) == before


def fg_personas(fg) -> list[Persona]:
    return [p.persona for p in fg.participants.select_related("persona")]


# --- archive and delete pages ---------------------------------------------------------------------------


def test_archive_and_restore_from_the_pages(logged_in, owner):
    fg = FocusGroupFactory(owner=owner, participants=3)
    url = reverse("focusgroups:archive", args=[fg.pk])
    assert logged_in.get(url).status_code == 405

    response = logged_in.post(url, {"archived": "1"})
    assert response["Location"] == reverse("focusgroups:edit", args=[fg.pk])
    fg.refresh_from_db()
    assert fg.archived
    listed = logged_in.get(reverse("focusgroups:index")).context["page_obj"].object_list
    assert fg not in listed
    assert fg in logged_in.get(reverse("focusgroups:index"), {"archived": "1"}).context["page_obj"].object_list

    # Read-only: the settings page says so and a save is refused.
    page = logged_in.get(reverse("focusgroups:edit", args=[fg.pk]))
    assert "This session is archived" in _text(page)
    before = _snapshot(fg)
    response = logged_in.post(reverse("focusgroups:edit", args=[fg.pk]), _form(fg_personas(fg), title="Changed"))
    assert response.status_code == 409
    assert "Restore it to change it" in _text(response)
    assert _snapshot(fg) == before

    response = logged_in.post(url, {"archived": "0", "next": reverse("focusgroups:index") + "?archived=1"})
    assert response["Location"] == reverse("focusgroups:index") + "?archived=1"
    fg.refresh_from_db()
    assert not fg.archived


def test_archive_ignores_an_offsite_next(logged_in, owner):
    fg = FocusGroupFactory(owner=owner)
    response = logged_in.post(reverse("focusgroups:archive", args=[fg.pk]), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("focusgroups:edit", args=[fg.pk])


def test_delete_asks_for_confirmation_then_deletes(logged_in, owner):
    fg = FocusGroupFactory(owner=owner, title="Oat milk pricing", participants=2)
    add_message(fg)
    url = reverse("focusgroups:delete", args=[fg.pk])
    response = logged_in.get(url)
    assert response.status_code == 200
    text = _text(response)
    assert "Delete “Oat milk pricing”?" in text
    assert "1 message" in text
    assert FocusGroup.objects.filter(pk=fg.pk).exists()

    response = logged_in.post(url)
    assert response["Location"] == reverse("focusgroups:index")
    assert not FocusGroup.objects.filter(pk=fg.pk).exists()
    assert Persona.objects.filter(owner=owner).count() == 2


# --- access ------------------------------------------------------------------------------------------


def _page_urls(fg_id: int) -> list[tuple[str, str, dict]]:
    return [
        ("get", reverse("focusgroups:edit", args=[fg_id]), {}),
        ("post", reverse("focusgroups:edit", args=[fg_id]), {"title": "Hijacked", "objective": "x"}),
        ("post", reverse("focusgroups:archive", args=[fg_id]), {"archived": "1"}),
        ("get", reverse("focusgroups:delete", args=[fg_id]), {}),
        ("post", reverse("focusgroups:delete", args=[fg_id]), {}),
        ("get", reverse("focusgroups:persona_picker"), {"fg": fg_id}),
    ]


def test_another_users_session_is_404_on_every_page_and_unchanged(logged_in, owner, other_user):
    theirs = FocusGroupFactory(owner=other_user, participants=3)
    add_message(theirs)
    before = _snapshot(theirs)
    for method, url, data in _page_urls(theirs.pk):
        response = getattr(logged_in, method)(url, data)
        assert response.status_code == 404, (method, url)
    assert _snapshot(theirs) == before
    assert logged_in.get(reverse("focusgroups:edit", args=[999_999])).status_code == 404


def test_anonymous_is_sent_to_login(client, owner):
    fg = FocusGroupFactory(owner=owner, participants=2)
    urls = [("get", reverse("focusgroups:index"), {}), ("get", reverse("focusgroups:create"), {})]
    urls += [("post", reverse("focusgroups:create"), {}), *_page_urls(fg.pk)]
    for method, url, data in urls:
        response = getattr(client, method)(url, data)
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith("/accounts/login/")
    assert FocusGroup.objects.get(pk=fg.pk).archived is False


# --- API ---------------------------------------------------------------------------------------------

API = "/api/v1/focus-groups/"


def test_api_create_and_detail(owner_api, owner):
    personas = _personas(owner, 3)
    response = owner_api.post(
        API,
        {"title": "Oat milk", "objective": "Why?", "persona_ids": _ids(personas[::-1]), "cost_cap_usd": "4.00"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft"
    assert body["participant_count"] == 3 and body["message_count"] == 0
    assert body["cost_cap_usd"] == "4.00"
    assert [p["persona"]["id"] for p in body["participants"]] == _ids(personas[::-1])
    summary = body["participants"][0]["persona"]
    assert summary["name"] == personas[2].name and summary["headline"] == personas[2].headline

    fg = FocusGroup.objects.get(pk=body["id"])
    add_message(fg, persona=personas[0])
    detail = owner_api.get(f"{API}{fg.pk}/").json()
    assert detail["message_count"] == 1
    assert len(detail["participants"]) == 3


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("one", 400, "validation_error"),
        ("thirteen", 400, "validation_error"),
        ("duplicate", 400, "validation_error"),
        ("foreign", 404, "not_found"),
        ("no_title", 400, "validation_error"),
    ],
)
def test_api_create_errors_save_nothing(owner_api, owner, other_user, case, status, code):
    personas = _personas(owner, 13)
    body = {"title": "T", "objective": "O", "persona_ids": _ids(personas[:3])}
    if case == "one":
        body["persona_ids"] = _ids(personas[:1])
    elif case == "thirteen":
        body["persona_ids"] = _ids(personas)
    elif case == "duplicate":
        body["persona_ids"] = [personas[0].pk, personas[0].pk, personas[1].pk]
    elif case == "foreign":
        body["persona_ids"] = [personas[0].pk, PersonaFactory(owner=other_user).pk]
    else:
        body["title"] = ""
    response = owner_api.post(API, body, format="json")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not FocusGroup.objects.exists()


def test_api_list_is_mine_paginated_searchable_and_archived_separately(owner_api, owner, other_user):
    for i in range(3):
        FocusGroupFactory(owner=owner, title=f"Oat study {i}", participants=2)
    FocusGroupFactory(owner=owner, title="Bank app", archived=True)
    FocusGroupFactory(owner=other_user, title="Oat study of theirs")
    body = owner_api.get(API).json()
    assert body["count"] == 3
    assert {row["title"] for row in body["results"]} == {"Oat study 0", "Oat study 1", "Oat study 2"}
    assert all(row["participant_count"] == 2 for row in body["results"])
    assert owner_api.get(API, {"q": "study 1"}).json()["count"] == 1
    assert [row["title"] for row in owner_api.get(API, {"archived": "true"}).json()["results"]] == ["Bank app"]
    page = owner_api.get(API, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]


def test_api_patch_edits_archives_and_restores(owner_api, owner):
    fg = FocusGroupFactory(owner=owner, participants=2)
    url = f"{API}{fg.pk}/"
    response = owner_api.patch(url, {"title": "Renamed", "cost_cap_usd": "1.50"}, format="json")
    assert response.status_code == 200
    assert (response.json()["title"], response.json()["cost_cap_usd"]) == ("Renamed", "1.50")
    assert owner_api.patch(url, {"title": ""}, format="json").status_code == 400

    assert owner_api.patch(url, {"archived": True}, format="json").json()["archived"] is True
    response = owner_api.patch(url, {"title": "While archived"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "archived"
    assert owner_api.put(f"{url}participants/", {"persona_ids": _participant_ids(fg)}, format="json").status_code == 409

    response = owner_api.patch(url, {"archived": False, "title": "Back"}, format="json")
    assert response.status_code == 200
    assert (response.json()["archived"], response.json()["title"]) == (False, "Back")


def test_api_participants_get_and_put(owner_api, owner, other_user):
    a, b, c, d = _personas(owner, 4)
    fg = FocusGroupFactory(owner=owner, participants=[a, b, c])
    url = f"{API}{fg.pk}/participants/"
    assert [p["persona"]["id"] for p in owner_api.get(url).json()] == [a.pk, b.pk, c.pk]

    response = owner_api.put(url, {"persona_ids": [d.pk, a.pk]}, format="json")
    assert response.status_code == 200
    assert [p["persona"]["id"] for p in response.json()] == [d.pk, a.pk]

    add_message(fg, persona=d)
    response = owner_api.put(url, {"persona_ids": [a.pk, b.pk]}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "participant_has_spoken"
    foreign = PersonaFactory(owner=other_user)
    assert owner_api.put(url, {"persona_ids": [d.pk, foreign.pk]}, format="json").status_code == 404
    assert owner_api.put(url, {"persona_ids": [d.pk]}, format="json").status_code == 400
    assert _participant_ids(fg) == [d.pk, a.pk]


def test_api_delete(owner_api, owner):
    fg = FocusGroupFactory(owner=owner, participants=2)
    add_message(fg)
    assert owner_api.delete(f"{API}{fg.pk}/").status_code == 204
    assert not FocusGroup.objects.filter(pk=fg.pk).exists()
    assert not Message.objects.exists()


def test_api_another_users_session_is_404_and_unchanged(owner_api, owner, other_user):
    theirs = FocusGroupFactory(owner=other_user, participants=3)
    add_message(theirs)
    mine = _personas(owner, 2)
    before = _snapshot(theirs)
    url = f"{API}{theirs.pk}/"
    calls = [
        ("get", url, None),
        ("patch", url, {"title": "Hijacked"}),
        ("patch", url, {"archived": True}),
        ("delete", url, None),
        ("get", f"{url}participants/", None),
        ("put", f"{url}participants/", {"persona_ids": _ids(mine)}),
    ]
    for method, path, body in calls:
        response = getattr(owner_api, method)(path, body, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"
    assert _snapshot(theirs) == before


def test_api_anonymous_is_401(api_client, owner):
    fg = FocusGroupFactory(owner=owner, participants=2)
    for method, path in [
        ("get", API),
        ("post", API),
        ("get", f"{API}{fg.pk}/"),
        ("patch", f"{API}{fg.pk}/"),
        ("delete", f"{API}{fg.pk}/"),
        ("get", f"{API}{fg.pk}/participants/"),
        ("put", f"{API}{fg.pk}/participants/"),
    ]:
        assert getattr(api_client, method)(path, {}, format="json").status_code == 401, (method, path)
    assert FocusGroup.objects.filter(pk=fg.pk).exists()


def test_admin_pages_render(client, staff_user, owner):
    fg = FocusGroupFactory(owner=owner, participants=2)
    persona = fg.participants.first().persona
    message = add_message(fg, persona=persona)
    DiscussionGuide.objects.create(focus_group=fg, data={"title": "G", "sections": [{"title": "Intro"}]})
    asset = Asset.objects.create(focus_group=fg, kind=AssetKind.DOCUMENT, filename="brief.txt", text="Hello")
    client.force_login(staff_user)
    for name, args in [
        ("admin:focusgroups_focusgroup_changelist", []),
        ("admin:focusgroups_focusgroup_change", [fg.pk]),
        ("admin:focusgroups_participant_changelist", []),
        ("admin:focusgroups_message_changelist", []),
        ("admin:focusgroups_message_change", [message.pk]),
        ("admin:focusgroups_discussionguide_changelist", []),
        ("admin:focusgroups_discussionguide_change", [fg.guide.pk]),
        ("admin:focusgroups_asset_changelist", []),
        ("admin:focusgroups_asset_change", [asset.pk]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 200, name
