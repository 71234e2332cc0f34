"""Deleting an account: the user's content goes, their money and usage history stays, anonymised.

What is deleted: personas (and versions), folders, generation briefs, sessions with everything in
them (participants, guide, assets and their files, messages, runs), jobs, data exports and their
files, API tokens, email addresses, two-factor authenticators, and the user row.

What stays, for accounting: credit ledger rows and usage events (and checkout records), with the
user link cleared and any copy of the email replaced by ``deleted-user-<id>@anonymised.invalid``.
Audit entries stay too (they are the record of who changed money or access), with the deleted
user's email replaced the same way. One new audit entry records the deletion, naming only the
anonymised id.
"""

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Replace

from billing.privacy import billing_anonymise_user
from cohorta.accounts.models import ApiToken
from cohorta.audit.models import AuditEntry
from cohorta.audit.services import audit_record
from cohorta.errors import ApplicationError
from cohorta.jobs.models import Job
from cohorta.jobs.services import jobs_cancel_for_user
from focusgroups.models import Asset, FocusGroup, Participant
from personas.models import Folder, GenerationBrief, Persona
from privacy.models import DataExport
from privacy.services import export_files_remove_for_user
from usage.privacy import usage_anonymise_user

logger = logging.getLogger(__name__)

CONFIRMATION_WORD = "DELETE"
# Wrong passwords allowed per user within the window before deletion is refused for a while:
# a stolen session or API token must not become a way to guess the password.
MAX_FAILED_ATTEMPTS = 5
FAILED_WINDOW_SECONDS = 15 * 60


def anonymised_email(user_id) -> str:
    return f"deleted-user-{user_id}@anonymised.invalid"


@dataclass
class ErasureResult:
    user_id: int
    anonymised_as: str
    deleted: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)


def _failures_key(user_id) -> str:
    return f"account-delete-failures:{user_id}"


def account_delete_check_password(*, user, password: str) -> None:
    """Raise unless ``password`` is the user's; counts failures and locks out after a few."""
    key = _failures_key(user.pk)
    if (cache.get(key) or 0) >= MAX_FAILED_ATTEMPTS:
        raise ApplicationError(
            "Too many wrong passwords. Wait 15 minutes, then try again.", code="rate_limited", status_code=429
        )
    if not password or not user.check_password(password):
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, FAILED_WINDOW_SECONDS)
        raise ApplicationError(
            "That password is not right, so nothing was deleted.",
            code="wrong_password",
            status_code=400,
            extra={"fields": {"password": ["That password is not right."]}},
        )
    cache.delete(key)


def _check_not_last_superuser(user) -> None:
    if not user.is_superuser:
        return
    others = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(pk=user.pk)
    if not others.exists():
        raise ApplicationError(
            "You are the only active superuser: make someone else a superuser in the admin first, "
            "or nobody could run Cohorta's back office.",
            code="last_superuser",
            status_code=409,
        )


def account_delete(*, user, password: str) -> ErasureResult:
    """Delete the account after checking its password. Nothing changes when the password is wrong.

    Files (asset images, export ZIPs) are removed once the database changes are committed.
    The caller logs the user out.
    """
    account_delete_check_password(user=user, password=password)
    _check_not_last_superuser(user)
    return _erase(user)


def _audit_anonymise(*, user, replacement: str) -> int:
    """Replace the user's email in audit entries that mention it (and drop the IP of their own actions).

    The audit log is append-only (its queryset refuses updates) so that nobody can rewrite
    who did what. Erasure rewrites one thing only, the deleted person's email, through the
    base manager; actions, times, amounts and the staff who acted stay untouched.
    """
    email = user.email
    rows = AuditEntry._base_manager.filter(
        Q(actor_id=user.pk) | Q(subject_user_id=user.pk) | Q(target_repr__contains=email) | Q(reason__contains=email)
    )
    count = 0
    for entry in rows.only("id", "actor_id", "before", "after"):
        values: dict[str, Any] = {
            "target_repr": Replace("target_repr", Value(email), Value(replacement)),
            "reason": Replace("reason", Value(email), Value(replacement)),
        }
        if entry.actor_id == user.pk:
            # Their own actions: who (email) and from where (IP) are both personal data.
            values["actor_email"] = replacement
            values["ip_address"] = None
        for name in ("before", "after"):
            text = json.dumps(getattr(entry, name))
            if email in text:
                values[name] = json.loads(text.replace(json.dumps(email)[1:-1], replacement))
        count += AuditEntry._base_manager.filter(pk=entry.pk).update(**values)
    return count


@transaction.atomic
def _erase(user) -> ErasureResult:

    User = get_user_model()  # noqa: N806
    # The row lock makes a second, concurrent deletion wait and then find nothing.
    user = User.objects.select_for_update().get(pk=user.pk)
    user_id = user.pk
    replacement = anonymised_email(user_id)
    result = ErasureResult(user_id=user_id, anonymised_as=replacement)

    # Waiting jobs are cancelled; a running one finds its row gone at its next step and stops.
    jobs_cancel_for_user(user=user, reason="The account was deleted.")

    asset_files = [
        (asset.image.storage, asset.image.name)
        for asset in Asset.objects.filter(focus_group__owner=user).exclude(image="").only("image")
    ]

    # Kept, anonymised: before the user row goes, while the rows can still be found by user id.
    result.kept.update(billing_anonymise_user(user_id=user_id, replacement=replacement))
    result.kept["usage_events"] = usage_anonymise_user(user_id=user_id)
    result.kept["audit_entries"] = _audit_anonymise(user=user, replacement=replacement)

    deleted = result.deleted
    deleted["sessions"] = FocusGroup.objects.filter(owner=user).count()
    # Participant.persona is PROTECT: the participants go before the personas they point at.
    Participant.objects.filter(focus_group__owner=user).delete()
    FocusGroup.objects.filter(owner=user).delete()
    deleted["personas"] = Persona.objects.filter(owner=user).count()
    Persona.objects.filter(owner=user).delete()
    deleted["folders"] = Folder.objects.filter(owner=user).count()
    Folder.objects.filter(owner=user).delete()
    deleted["persona_briefs"] = GenerationBrief.objects.filter(owner=user).count()
    GenerationBrief.objects.filter(owner=user).delete()
    deleted["data_exports"] = DataExport.objects.filter(owner=user).count()
    deleted["jobs"] = Job.objects.filter(owner=user).count()
    deleted["api_tokens"] = ApiToken.objects.filter(user=user).count()
    deleted["email_addresses"] = EmailAddress.objects.filter(user=user).count()
    deleted["two_factor"] = Authenticator.objects.filter(user=user).count()
    deleted["single_sign_on"] = SocialAccount.objects.filter(user=user).count()
    deleted["files"] = len(asset_files)
    # Everything else that belongs to the account goes with the user row (CASCADE).
    user.delete()

    audit_record(
        action=AuditEntry.Action.ACCOUNT_DELETE,
        actor=None,
        before={"user_id": user_id},
        after={"anonymised_as": replacement, "deleted": deleted, "kept": result.kept},
        reason="Deleted by the account holder, who confirmed with their password.",
    )

    def remove_files() -> None:
        for storage, name in asset_files:
            try:
                storage.delete(name)
            except OSError:
                logger.exception("Could not delete asset file %s of a deleted account", name)
        export_files_remove_for_user(user_id=user_id)

    # Files are not transactional: they go only once the rows are really gone.
    transaction.on_commit(remove_files)
    logger.info("Account %s deleted", user_id)
    return result
