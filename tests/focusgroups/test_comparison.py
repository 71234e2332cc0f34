"""Model comparison: the same guide and personas re-run on another model alias."""

import pytest

from billing.selectors import credits_balance
from cohorta.errors import ApplicationError
from focusgroups.autonomous import runs as autonomous
from focusgroups.discussion import services as discussion
from focusgroups.models import FocusGroup
from focusgroups.report import comparison
from tests.focusgroups.test_autonomous import make_session
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _finished_session(owner, turns):
    session = make_session(owner)
    autonomous.run_start(focus_group=session)
    turns()
    session.refresh_from_db()
    assert session.status == "ended"
    return session


def test_a_rerun_copies_the_session_and_uses_the_other_alias(funded, turns, fake_llm, settings):
    original = _finished_session(funded, turns)
    copy = comparison.comparison_start(focus_group=original, alias="mini")
    turns()
    copy.refresh_from_db()
    assert copy.compare_of == original and copy.model_alias == "mini" and copy.status == "ended"
    assert list(copy.participants.values_list("persona_id", flat=True)) == list(
        original.participants.values_list("persona_id", flat=True)
    )
    assert copy.guide.data == original.guide.data
    answers = UsageEvent.objects.filter(focus_group_id=copy.pk, feature="persona_response")
    assert answers.exists() and set(answers.values_list("model", flat=True)) == {settings.LLM_MODELS["mini"]}
    original_answers = UsageEvent.objects.filter(focus_group_id=original.pk, feature="persona_response")
    assert set(original_answers.values_list("model", flat=True)) == {settings.LLM_MODELS["main"]}
    assert credits_balance(user=funded) == 100 - 40 - 40  # each run is charged once


def test_only_ended_sessions_with_a_guide_and_known_aliases(funded, turns):
    live = make_session(funded)
    with pytest.raises(ApplicationError) as info:
        comparison.comparison_start(focus_group=live, alias="mini")
    assert info.value.code == "not_ended"
    discussion.focus_group_set_status(focus_group=live, status="ended")
    with pytest.raises(ApplicationError) as info:
        comparison.comparison_start(focus_group=live, alias="gigantic")
    assert info.value.code == "validation_error" and FocusGroup.objects.count() == 1


def test_the_compare_page_shows_both_runs_side_by_side(funded, turns, client):
    original = _finished_session(funded, turns)
    client.force_login(funded)
    response = client.post(f"/focus-groups/{original.pk}/compare/", {"alias": "mini"})
    copy = FocusGroup.objects.get(compare_of=original)
    assert response.status_code == 302 and response["Location"] == f"/focus-groups/{copy.pk}/"
    turns()
    page = client.get(f"/focus-groups/{copy.pk}/compare/").content.decode()
    assert "Original" in page and "Re-run" in page and "AI calls" in page and "mini" in page


def test_another_user_cannot_compare_or_see_the_comparison(funded, other_user, turns):
    from django.test import Client

    original = _finished_session(funded, turns)
    page = Client()
    page.force_login(other_user)
    assert page.get(f"/focus-groups/{original.pk}/compare/").status_code == 404
    assert page.post(f"/focus-groups/{original.pk}/compare/", {"alias": "mini"}).status_code == 404
    assert FocusGroup.objects.count() == 1


def test_each_model_is_named_once_per_run(funded, turns):
    original = _finished_session(funded, turns)
    models = comparison.usage_for(original)["models"]
    assert models and len(models) == len(set(models))
    assert UsageEvent.objects.filter(focus_group_id=original.pk).count() > len(models)
