import stripe
from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

from billing import stripe_mirror

# Up to about 20 minutes of tries: each wait is drawn below 5 s doubled per try, at most 10 minutes (under the
# broker's visibility timeout, so a waiting retry is not delivered twice).
MIRROR_MAX_RETRIES = 8


@shared_task(name="billing.tasks.stripe_event_mirror", bind=True, max_retries=MIRROR_MAX_RETRIES)
def stripe_event_mirror(self, event_id: str) -> str:
    try:
        return stripe_mirror.stripe_event_mirror(event_id=event_id)
    except stripe_mirror.MIRROR_RETRY_ERRORS as exc:
        if self.request.retries >= self.max_retries:
            stripe_mirror.stripe_event_mirror_failed(event_id=event_id, error=f"{type(exc).__name__}: {exc}")
            return "failed"
        countdown = get_exponential_backoff_interval(5, self.request.retries, 600, full_jitter=True)
        raise self.retry(exc=exc, countdown=countdown) from None
    except stripe.StripeError as exc:
        # A refused request (a bad key, an object Stripe will not show) fails the same way every time.
        stripe_mirror.stripe_event_mirror_failed(event_id=event_id, error=f"{type(exc).__name__}: {exc}")
        return "failed"
    except Exception as exc:
        stripe_mirror.stripe_event_mirror_failed(event_id=event_id, error=f"{type(exc).__name__}: {exc}")
        raise
