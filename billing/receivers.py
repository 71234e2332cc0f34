import stripe
from django.conf import settings
from django.db import transaction
from djstripe import event_handlers
from djstripe.models import Event
from djstripe.signals import WEBHOOK_SIGNALS

from billing import tasks
from billing.services import credits_grant_trial
from billing.stripe_webhooks import WEBHOOK_EVENTS, stripe_event_receive

# dj-stripe's own handlers for these types re-fetch each object from the Stripe API; ours act on the
# verified payload instead, so a slow or unreachable Stripe never holds up or fails a payment.
_DJSTRIPE_HANDLERS = (event_handlers.handle_charge_event, event_handlers.handle_other_event)


def grant_trial_credits(sender, request, user, **kwargs) -> None:
    """allauth's user_signed_up: every new account starts with the trial credits."""
    credits_grant_trial(user=user)


def stripe_connect() -> None:
    """Route the money-moving Stripe events to billing, and point the stripe SDK (which dj-stripe uses)
    at ``STRIPE_API_BASE``."""
    stripe.api_base = settings.STRIPE_API_BASE
    for event_type in WEBHOOK_EVENTS:
        signal = WEBHOOK_SIGNALS[event_type]
        for handler in _DJSTRIPE_HANDLERS:
            # sender=Event as dj-stripe connected them: without it the disconnect silently does nothing.
            signal.disconnect(handler, sender=Event)
        signal.connect(stripe_event_receive, sender=Event, dispatch_uid=f"billing.stripe_event_receive:{event_type}")
        signal.connect(
            stripe_event_mirror_later, sender=Event, dispatch_uid=f"billing.stripe_event_mirror:{event_type}"
        )


def stripe_event_mirror_later(sender, event: Event, **kwargs) -> None:
    """Copy the event's object into dj-stripe's tables once the event is committed (``billing.stripe_mirror``).

    Not part of handling the event: nothing is queued if handling rolls back, and ``robust`` keeps a failure
    to queue (or, with eager tasks, to copy) from reaching the webhook's answer.
    """
    if not settings.STRIPE_MIRROR_OBJECTS:
        return
    event_id = event.id

    def queue_stripe_event_mirror() -> None:  # named: Django logs a robust callback's failure by its name
        tasks.stripe_event_mirror.delay(event_id)

    transaction.on_commit(queue_stripe_event_mirror, robust=True)


def stripe_api_base_follow(sender, setting, value, **kwargs) -> None:
    """Tests point ``STRIPE_API_BASE`` at a fake server per test: dj-stripe's calls follow it."""
    if setting == "STRIPE_API_BASE":
        stripe.api_base = value or stripe.DEFAULT_API_BASE
