"""The one writer of the audit log."""

from decimal import Decimal
from typing import Any

from django.db import models

from cohorta.audit.models import AuditEntry


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return str(value.pk)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def client_ip(request) -> str | None:
    """The caller's address. REMOTE_ADDR is the proxy's when behind one; daphne's
    --proxy-headers (see README) rewrites it from X-Forwarded-For, so it is trusted as is."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    action: str,
    actor=None,
    target: models.Model | None = None,
    subject_user=None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
    request=None,
) -> AuditEntry:
    """Record one action on money or access. ``actor`` None means the system did it.

    ``request`` gives the IP (and the actor, when ``actor`` is not passed and the
    request has a signed-in user).
    """
    request_user = getattr(request, "user", None)
    if actor is None and request_user is not None and request_user.is_authenticated:
        actor = request_user
    return AuditEntry.objects.create(
        actor=actor,
        actor_email=getattr(actor, "email", "") or "",
        action=action,
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        subject_user=subject_user,
        before=_jsonable(before or {}),
        after=_jsonable(after or {}),
        reason=reason,
        ip_address=client_ip(request),
    )
