import pytest
from django.core.management import call_command

from billing.selectors import credits_balance
from cohorta.accounts.models import User

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_prints_logins(capsys, settings):
    settings.DEBUG = True  # pytest-django runs with DEBUG off; the default password is for local use
    call_command("seed_demo")
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "demo@cohorta.local" in out and "admin@cohorta.local" in out
    demo = User.objects.get(email="demo@cohorta.local")
    assert credits_balance(user=demo) == 200  # granted once, not twice
    assert User.objects.get(email="admin@cohorta.local").is_staff
    assert demo.check_password("cohorta-demo-2026")


def test_seed_demo_leaves_existing_accounts_and_their_sessions_alone(client, capsys, settings):
    """`make run` runs it on every start: someone logged in stays logged in, with the password they chose."""
    settings.DEBUG = True
    call_command("seed_demo", "--no-content")
    demo = User.objects.get(email="demo@cohorta.local")
    demo.set_password("my-own-password-42")
    demo.name = "Dana D."
    demo.save()
    admin = User.objects.get(email="admin@cohorta.local")
    admin.is_active = False  # an operator disabled it
    admin.save()
    client.force_login(demo)
    assert client.get("/billing/").status_code == 200
    capsys.readouterr()

    call_command("seed_demo", "--no-content")
    out = capsys.readouterr().out
    demo.refresh_from_db()
    admin.refresh_from_db()
    assert demo.check_password("my-own-password-42") and demo.name == "Dana D."
    assert not admin.is_active and admin.check_password("cohorta-demo-2026")
    assert "demo@cohorta.local  (password unchanged" in out and "cohorta-demo-2026" not in out
    assert client.get("/billing/").status_code == 200  # still logged in

    # An explicit --password is a reset: both accounts get it.
    call_command("seed_demo", "--no-content", "--password", "a-new-one-2027")
    assert "demo@cohorta.local  /  a-new-one-2027" in capsys.readouterr().out
    demo.refresh_from_db()
    admin.refresh_from_db()
    assert demo.check_password("a-new-one-2027") and admin.check_password("a-new-one-2027")
    assert not admin.is_active  # only the password
    assert client.get("/billing/").status_code == 302  # the old session ends with the old password


def test_seed_demo_without_a_password_in_production_only_refuses_to_create(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    call_command("seed_demo", "--no-content", "--quiet", "--password", "chosen-by-the-operator")
    call_command("seed_demo", "--no-content", "--quiet")  # nothing to create: nothing to refuse
    assert User.objects.get(email="admin@cohorta.local").check_password("chosen-by-the-operator")
    User.objects.filter(email="demo@cohorta.local").delete()
    with pytest.raises(CommandError):
        call_command("seed_demo", "--no-content", "--quiet")


def test_seed_demo_refuses_default_password_in_production(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo")


def _demo_counts(user):
    from cohorta.jobs.models import Job
    from focusgroups.models import FocusGroup, Message
    from personas.models import Folder, Persona, PersonaVersion

    return {
        "personas": Persona.objects.filter(owner=user).count(),
        "versions": PersonaVersion.objects.filter(persona__owner=user).count(),
        "folders": Folder.objects.filter(owner=user).count(),
        "sessions": FocusGroup.objects.filter(owner=user).count(),
        "messages": Message.objects.filter(focus_group__owner=user).count(),
        "jobs": Job.objects.filter(owner=user).count(),
    }


def test_seed_demo_gives_the_researcher_personas_and_a_finished_session(settings, capsys):
    from focusgroups.models import FocusGroup, FocusGroupStatus, MessageRole
    from focusgroups.report import analysis
    from focusgroups.report.exports import report_markdown

    settings.DEBUG = True
    call_command("seed_demo")
    assert "added 5 personas and the session" in capsys.readouterr().out
    demo = User.objects.get(email="demo@cohorta.local")
    first = _demo_counts(demo)
    assert first == {"personas": 5, "versions": 5, "folders": 1, "sessions": 1, "messages": 19, "jobs": 1}

    session = FocusGroup.objects.get(owner=demo)
    assert session.status == FocusGroupStatus.ENDED and session.ended_at and session.last_sequence == 19
    assert session.participants.count() == 4 and session.guide.data["sections"]
    assert session.messages.filter(role=MessageRole.PERSONA).count() == 14
    found = analysis.analysis_get(focus_group=session)
    # Every quote survived the product's own check against the transcript: none was dropped.
    assert len(found["themes"]) == 5 and found["dropped_quotes"] == 0 and found["dropped_themes"] == 0
    assert {s["persona"] for s in found["report"]["stances"]} == {
        "Priya Shah",
        "Tom Gallagher",
        "Mei Lin",
        "Dave Okafor",
    }
    assert [f["section"] for f in found["report"]["findings"]] == [
        "Cleaning habits today",
        "First reactions to the refill concept",
        "Price and value",
    ]
    assert "Executive summary" in report_markdown(session)

    # Running it again creates nothing new, and says nothing about content.
    call_command("seed_demo")
    assert "added" not in capsys.readouterr().out
    assert _demo_counts(demo) == first
    assert _demo_counts(User.objects.get(email="admin@cohorta.local"))["personas"] == 0


def test_seed_demo_without_content(settings):
    settings.DEBUG = True
    call_command("seed_demo", "--no-content", "--quiet")
    assert _demo_counts(User.objects.get(email="demo@cohorta.local"))["personas"] == 0
