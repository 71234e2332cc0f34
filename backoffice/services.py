"""Operators' writes to money and access. Every one leaves an audit entry.

Credits still move only through ``billing.services``; these functions add the
operator, the reason and the audit trail around them.
"""

from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction
from django.template.defaultfilters import pluralize

from billing.models import CreditTransaction, CreditTransactionKind
from billing.services import credits_adjust, credits_grant
from cohorta.accounts.services import user_set_active
from cohorta.audit.models import AuditEntry
from cohorta.audit.services import audit_record
from cohorta.errors import ApplicationError


@transaction.atomic
def credits_admin_change(
    *, users: Iterable, amount: int, kind: str, reason: str, token: str, actor, request=None
) -> list[CreditTransaction]:
    """Grant (``kind`` grant, amount > 0) or correct (``kind`` adjustment, either sign) each user's credits.

    All or nothing: if one user's balance cannot cover a removal, an ApplicationError
    naming them is raised and no balance changes. ``token`` comes from the form that
    was shown, so submitting the same form twice replays instead of paying twice.
    """
    reason = reason.strip()
    if not reason:
        raise ValueError("A reason is required")
    if kind == CreditTransactionKind.GRANT and amount <= 0:
        raise ValueError("A grant adds credits: use an adjustment to remove them")
    entries = []
    for user in users:
        key = f"admin-credits:{token}:{user.pk}"
        if CreditTransaction.objects.filter(idempotency_key=key).exists():
            continue  # this form was already applied to this user
        if kind == CreditTransactionKind.GRANT:
            entry = credits_grant(
                user=user,
                amount=amount,
                idempotency_key=key,
                reference=f"admin:{actor.pk}",
                description=reason,
                created_by=actor,
            )
            action = AuditEntry.Action.CREDIT_GRANT
        else:
            try:
                entry = credits_adjust(
                    user=user, delta=amount, idempotency_key=key, description=reason, created_by=actor
                )
            except ApplicationError as exc:
                if exc.code != "balance_would_go_negative":
                    raise
                raise ApplicationError(
                    f"{user.email} has {exc.extra['balance']} credit{pluralize(exc.extra['balance'])}: removing "
                    f"{-amount} would take the balance below zero.",
                    code=exc.code,
                    status_code=exc.status_code,
                    extra={**exc.extra, "user_id": user.pk},
                ) from None
            action = AuditEntry.Action.CREDIT_ADJUST
        audit_record(
            action=action,
            actor=actor,
            target=entry,
            subject_user=user,
            before={"credit_balance": entry.balance_after - entry.delta},
            after={"credit_balance": entry.balance_after, "delta": entry.delta, "ledger_id": entry.pk},
            reason=reason,
            request=request,
        )
        entries.append(entry)
    return entries


@transaction.atomic
def quota_admin_set(*, users: Iterable, quota_usd: Decimal | None, reason: str, actor, request=None) -> int:
    """Set each user's monthly LLM quota; None returns them to the default in app settings."""
    changed = 0
    for user in users:
        if user.monthly_quota_usd == quota_usd:
            continue
        before = user.monthly_quota_usd
        user.monthly_quota_usd = quota_usd
        user.save(update_fields=["monthly_quota_usd"])
        audit_record(
            action=AuditEntry.Action.QUOTA_CHANGE,
            actor=actor,
            target=user,
            subject_user=user,
            before={"monthly_quota_usd": before},
            after={"monthly_quota_usd": quota_usd},
            reason=reason,
            request=request,
        )
        changed += 1
    return changed


@transaction.atomic
def role_admin_set(*, user, admin: bool, actor, request=None, reason: str = "") -> bool:
    """Make a user an admin (staff and superuser: the back office's one operator role) or a researcher.

    Returns whether anything changed. Operators cannot demote themselves: a
    mis-click would lock the last admin out.
    """
    if not admin and user.pk == actor.pk:
        raise ApplicationError("You cannot remove your own admin access.", code="self_demotion")
    before = {"is_staff": user.is_staff, "is_superuser": user.is_superuser}
    if before == {"is_staff": admin, "is_superuser": admin}:
        return False
    user.is_staff = user.is_superuser = admin
    user.save(update_fields=["is_staff", "is_superuser"])
    audit_record(
        action=AuditEntry.Action.ROLE_CHANGE,
        actor=actor,
        target=user,
        subject_user=user,
        before=before,
        after={"is_staff": admin, "is_superuser": admin},
        reason=reason,
        request=request,
    )
    return True


@transaction.atomic
def active_admin_set(*, user, active: bool, actor, request=None, reason: str = "") -> bool:
    """Enable or disable an account (disabling cancels its jobs). Returns whether anything changed."""
    if not active and user.pk == actor.pk:
        raise ApplicationError("You cannot disable your own account.", code="self_disable")
    if user.is_active == active:
        return False
    user_set_active(user=user, active=active)
    audit_record(
        action=AuditEntry.Action.USER_ENABLE if active else AuditEntry.Action.USER_DISABLE,
        actor=actor,
        target=user,
        subject_user=user,
        before={"is_active": not active},
        after={"is_active": active},
        reason=reason,
        request=request,
    )
    return True


# Fields of the user change form whose changes are about access or money.
USER_AUDITED_FIELDS: dict[str, str | None] = {
    "is_active": None,  # the action depends on the new value
    "is_staff": AuditEntry.Action.ROLE_CHANGE,
    "is_superuser": AuditEntry.Action.ROLE_CHANGE,
    "groups": AuditEntry.Action.ROLE_CHANGE,
    "user_permissions": AuditEntry.Action.ROLE_CHANGE,
    "monthly_quota_usd": AuditEntry.Action.QUOTA_CHANGE,
}


def user_form_changes_audit(*, user, before: dict, after: dict, actor, request=None, reason: str = "") -> int:
    """Audit what the user change form changed; one entry per kind of change. Returns entries written."""
    grouped: dict[str, tuple[dict, dict]] = {}
    for field, action in USER_AUDITED_FIELDS.items():
        if field not in after or before.get(field) == after[field]:
            continue
        if action is None:
            action = AuditEntry.Action.USER_ENABLE if after[field] else AuditEntry.Action.USER_DISABLE
        old, new = grouped.setdefault(action, ({}, {}))
        old[field], new[field] = before.get(field), after[field]
    for action, (old, new) in grouped.items():
        audit_record(
            action=action,
            actor=actor,
            target=user,
            subject_user=user,
            before=old,
            after=new,
            reason=reason,
            request=request,
        )
    return len(grouped)
