"""Writes for credit packs: every change is audit-logged with the values before and after."""

from django.db import transaction
from django.forms.models import model_to_dict

from billing.models import CreditPack
from cohorta.audit.models import AuditEntry
from cohorta.audit.services import audit_record

_AUDITED_FIELDS = ["name", "credits", "price", "currency", "active", "stripe_price_id", "sort_order"]


def _snapshot(pack: CreditPack | None) -> dict:
    return model_to_dict(pack, fields=_AUDITED_FIELDS) if pack is not None else {}


@transaction.atomic
def credit_pack_save(*, pack: CreditPack, actor, request=None) -> CreditPack:
    """Create or change a pack. Open checkouts keep the credits and price they started with."""
    before = _snapshot(CreditPack.objects.filter(pk=pack.pk).first()) if pack.pk else {}
    pack.save()
    after = _snapshot(pack)
    if before != after:
        changed = [name for name in _AUDITED_FIELDS if before.get(name) != after.get(name)]
        audit_record(
            action=AuditEntry.Action.PACK_CHANGE,
            actor=actor,
            target=pack,
            before={name: before.get(name) for name in changed} if before else {},
            after={name: after[name] for name in changed},
            reason="Pack created" if not before else "Changed: " + ", ".join(changed),
            request=request,
        )
    return pack
