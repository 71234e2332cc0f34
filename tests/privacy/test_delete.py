import json
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.db.models import Sum
from django.test import RequestFactory
from rest_framework.test import APIClient

from billing.models import CreditTransaction
from billing.privacy import ledger_anonymise_user
from billing.services import credits_grant
from cohorta.accounts.models import ApiToken, User
from cohorta.audit.models import AuditEntry
from cohorta.audit.services import audit_record
from cohorta.jobs.models import Job, JobState
from focusgroups.models import Asset, FocusGroup, Message, Participant
from personas.models import Folder, Persona, PersonaVersion
from privacy import services as privacy_services
from privacy.erasure import anonymised_email
from privacy.models import DataExport
from tests.factories import DEFAULT_PASSWORD, JobFactory, UserFactory
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db


def _money_snapshot():
    ledger = CreditTransaction.objects.aggregate(total=Sum("delta"))
    usage = UsageEvent.objects.aggregate(tokens=Sum("input_tokens"))
    return (
        CreditTransaction.objects.count(),
        ledger["total"],
        UsageEvent.objects.count(),
        usage["tokens"],
    )


def _content_snapshot(user_id):
    return {
        "personas": Persona.objects.filter(owner_id=user_id).count(),
        "versions": PersonaVersion.objects.filter(persona__owner_id=user_id).count(),
        "folders": Folder.objects.filter(owner_id=user_id).count(),
        "sessions": FocusGroup.objects.filter(owner_id=user_id).count(),
        "messages": Message.objects.filter(focus_group__owner_id=user_id).count(),
        "participants": Participant.objects.filter(focus_group__owner_id=user_id).count(),
        "assets": Asset.objects.filter(focus_group__owner_id=user_id).count(),
        "jobs": Job.objects.filter(owner_id=user_id).count(),
        "tokens": ApiToken.objects.filter(user_id=user_id).count(),
        "emails": EmailAddress.objects.filter(user_id=user_id).count(),
        "mfa": Authenticator.objects.filter(user_id=user_id).count(),
        "sso": SocialAccount.objects.filter(user_id=user_id).count(),
        "exports": DataExport.objects.filter(owner_id=user_id).count(),
    }


@pytest.fixture
def with_export(rich_account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = privacy_services.data_export_start(user=rich_account.user)
    export = DataExport.objects.get(job=job)
    assert export.file
    return Path(settings.MEDIA_ROOT) / export.file


def test_delete_by_api_removes_content_and_files_and_keeps_money_anonymised(
    rich_account, with_export, django_capture_on_commit_callbacks
):
    user = rich_account.user
    user_id, email = user.pk, user.email
    # The owner once acted as staff on someone else (their email is in that audit entry).
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.9")
    request.user = user
    audit_record(action=AuditEntry.Action.ROLE_CHANGE, target=user, subject_user=user, reason="test", request=request)
    asset_file = Path(rich_account.asset.image.path)
    assert asset_file.is_file() and with_export.is_file()
    before = _money_snapshot()
    theirs_before = _content_snapshot(rich_account.theirs.owner_id)
    assert all(_content_snapshot(user_id).values())  # a bit of everything to delete

    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {rich_account.token}")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete("/api/v1/me/", {"password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 204, response.content

    assert not User.objects.filter(pk=user_id).exists()
    assert not any(_content_snapshot(user_id).values())
    assert not asset_file.exists() and not with_export.exists()
    assert not (Path(settings.MEDIA_ROOT) / "private" / "exports" / str(user_id)).exists()

    # Money and usage: same rows, same sums, nobody attached, no email left.
    assert _money_snapshot() == before
    replacement = anonymised_email(user_id)
    ledger = CreditTransaction.objects.filter(user_email=replacement)
    assert ledger.count() == 2 and not ledger.exclude(user=None).exists()  # +100, -30
    assert sum(ledger.values_list("delta", flat=True)) == 70
    assert not CreditTransaction.objects.filter(user_email=email).exists()
    assert UsageEvent.objects.filter(user=None, input_tokens__in=[1200, 3400]).count() == 2

    # Audit: the deletion is recorded with the anonymised id only; no entry keeps the email.
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ACCOUNT_DELETE)
    assert entry.actor is None and entry.subject_user is None
    assert entry.before == {"user_id": user_id} and entry.after["anonymised_as"] == replacement
    assert entry.after["deleted"]["personas"] == 5 and entry.after["deleted"]["sessions"] == 1
    for row in AuditEntry.objects.all():
        dumped = json.dumps([row.actor_email, row.target_repr, row.reason, row.before, row.after])
        assert email not in dumped and row.ip_address != "203.0.113.9"
    assert AuditEntry.objects.filter(actor_email=replacement).exists()

    # The token died with the account; the other researcher's things are untouched.
    assert api.get("/api/v1/me/").status_code == 401
    assert _content_snapshot(rich_account.theirs.owner_id) == theirs_before
    assert CreditTransaction.objects.filter(user_email="other@example.com").count() == 1


def test_wrong_password_deletes_nothing(rich_account, owner_api, with_export):
    before = _content_snapshot(rich_account.user.pk), _money_snapshot()
    response = owner_api.delete("/api/v1/me/", {"password": "not-my-password"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "wrong_password"
    assert (_content_snapshot(rich_account.user.pk), _money_snapshot()) == before
    assert User.objects.filter(pk=rich_account.user.pk, is_active=True).exists()
    assert with_export.exists() and Path(rich_account.asset.image.path).exists()
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.ACCOUNT_DELETE).exists()
    assert owner_api.delete("/api/v1/me/", {}, format="json").status_code == 400  # password is required


def test_repeated_wrong_passwords_lock_deletion_for_a_while(owner, owner_api):
    for _ in range(5):
        assert owner_api.delete("/api/v1/me/", {"password": "guess"}, format="json").status_code == 400
    response = owner_api.delete("/api/v1/me/", {"password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 429
    assert User.objects.filter(pk=owner.pk).exists()


def test_running_and_waiting_jobs_are_stopped_and_removed(owner, owner_api, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    waiting = JobFactory(owner=owner, state=JobState.PENDING)
    running = JobFactory(owner=owner, state=JobState.RUNNING)
    response = owner_api.delete("/api/v1/me/", {"password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 204
    assert not Job.objects.filter(pk__in=[waiting.pk, running.pk]).exists()


def test_the_last_superuser_cannot_delete_themselves(staff_user):
    api = APIClient()
    api.force_authenticate(staff_user)
    response = api.delete("/api/v1/me/", {"password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "last_superuser"
    UserFactory(email="second-admin@example.com", is_staff=True, is_superuser=True)
    assert api.delete("/api/v1/me/", {"password": DEFAULT_PASSWORD}, format="json").status_code == 204


def test_ledger_anonymisation_touches_only_the_email(owner, other_user):
    grant = credits_grant(user=owner, amount=5, idempotency_key="g1")
    credits_grant(user=other_user, amount=7, idempotency_key="g2")
    assert ledger_anonymise_user(user_id=owner.pk, replacement="x@anonymised.invalid") == 1
    row = CreditTransaction.objects.get(pk=grant.pk)
    assert (row.user_email, row.user_id, row.delta, row.balance_after) == ("x@anonymised.invalid", owner.pk, 5, 5)
    assert CreditTransaction.objects.get(idempotency_key="g2").user_email == "other@example.com"


# --- the settings page ---------------------------------------------------------------------------


def test_delete_page_needs_password_and_typed_confirmation_then_says_goodbye(
    rich_account, client, django_capture_on_commit_callbacks
):
    user = rich_account.user
    client.force_login(user)
    page = client.get("/settings/delete/").content.decode()
    assert "Delete my account permanently" in page and "5</strong> personas" in page

    wrong_word = client.post("/settings/delete/", {"password": DEFAULT_PASSWORD, "confirm": "delete"})
    assert "Type DELETE in capital letters" in wrong_word.content.decode()
    wrong_password = client.post("/settings/delete/", {"password": "nope", "confirm": "DELETE"})
    assert "That password is not right" in wrong_password.content.decode()
    assert User.objects.filter(pk=user.pk).exists() and Persona.objects.filter(owner=user).count() == 5

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/settings/delete/", {"password": DEFAULT_PASSWORD, "confirm": "DELETE"})
    assert response.status_code == 302 and response["Location"] == "/settings/deleted/"
    goodbye = client.get("/settings/deleted/")
    assert goodbye.status_code == 200 and "Your account has been deleted" in goodbye.content.decode()
    assert not User.objects.filter(pk=user.pk).exists()
    # Logged out: settings pages send the visitor to log in.
    assert client.get("/settings/").status_code == 302
    assert not FocusGroup.objects.filter(pk=rich_account.focus_group.pk).exists()
