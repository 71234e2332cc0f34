"""A copy of each money-moving event's Stripe object in dj-stripe's tables, for the admin.

dj-stripe's own handlers for ``checkout.session.*`` and ``charge.*`` are disconnected (they
re-fetch from Stripe inside the webhook), so after billing has handled an event, and once it
is committed, a Celery task copies the event's object with dj-stripe's
``sync_from_stripe_data``: the checkout ``Session`` or the ``Charge`` from the verified payload
as stored on the ``Event``, and for ``charge.refunded`` the charge's ``Refund``\\ s (listed from
Stripe: since API version 2022-11-15 a charge no longer carries them). dj-stripe fetches the
nested objects it does not have yet from Stripe: the ``PaymentIntent``, the charge's
``BalanceTransaction`` and ``PaymentMethod``, and the ``Customer`` when the buyer's is not stored.

The copy is for reading only and never touches credits: the webhook has already answered
Stripe and the ledger moved before this runs, and a failure here is retried by the task, then
logged and recorded on ``StripeObjectMirror``. ``manage.py djstripe_sync_models`` refreshes
everything from Stripe.
"""

import logging

import stripe
from django.db import transaction
from django.utils import timezone
from djstripe.models import Charge, Event, Refund, Session
from djstripe.settings import djstripe_settings

from billing.models import StripeObjectMirror

logger = logging.getLogger(__name__)

# Worth another try later: Stripe or the network failed, not the request.
MIRROR_RETRY_ERRORS = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)

_MODELS = {"checkout.session": Session, "charge": Charge}


def stripe_event_mirror(*, event_id: str) -> str:
    """Copy the object of a stored event into dj-stripe's tables; what happened, in a word.

    Idempotent and order-safe: an event already copied, or older than the one last copied for
    the same object, changes nothing and calls nothing. Raises ``stripe.StripeError`` when Stripe
    fails (the task retries ``MIRROR_RETRY_ERRORS``); nothing is half-written then.
    """
    event = Event.objects.filter(id=event_id).first()
    if event is None:
        return "no such event"
    obj = (event.data or {}).get("object") or {}
    model = _MODELS.get(obj.get("object", ""))
    if model is None or not isinstance(obj.get("id"), str):
        return "not mirrored"
    api_key = djstripe_settings.get_default_api_key(livemode=event.livemode)
    # Stripe is called with the row locked: only another copy of this same object waits for it.
    with transaction.atomic():
        state, _ = StripeObjectMirror.objects.select_for_update().get_or_create(
            stripe_id=obj["id"], defaults={"object_type": obj["object"]}
        )
        copied = (
            state.event_id and Event.objects.filter(id=state.event_id).values_list("created", "djstripe_id").first()
        )
        if copied and (event.created, event.djstripe_id) <= copied:
            return "up to date"
        row = model.sync_from_stripe_data(obj, api_key=api_key)
        if event.type == "charge.refunded":
            for refund in Refund.api_list(api_key=api_key, charge=row.id):
                Refund.sync_from_stripe_data(refund, api_key=api_key)
        state.event, state.mirrored_at = event, timezone.now()
        state.error, state.failed_at = "", None
        state.save()
    return "mirrored"


def stripe_event_mirror_failed(*, event_id: str, error: str) -> None:
    """Record that copying this event's object gave up (the admin's data stays as it was)."""
    event = Event.objects.filter(id=event_id).first()
    obj = ((event.data or {}).get("object") or {}) if event else {}
    logger.error(
        "Stripe event %s: copying %s %s for the admin failed: %s", event_id, obj.get("object"), obj.get("id"), error
    )
    if not isinstance(obj.get("id"), str):
        return
    StripeObjectMirror.objects.update_or_create(
        stripe_id=obj["id"],
        defaults={"object_type": str(obj.get("object", ""))[:50], "error": error[:5000], "failed_at": timezone.now()},
    )
