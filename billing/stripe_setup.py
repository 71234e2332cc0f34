"""dj-stripe's rows for this deployment, from the environment: the platform Account and its secret
APIKey, and the WebhookEndpoint whose secret verifies Stripe's webhooks.

Idempotent: the release step runs it after every migrate. The endpoint keeps its id and its
``djstripe_uuid`` across runs, so its URL (``/stripe/webhook/<uuid>/``) never changes; only its
secret and URL follow the environment. The endpoint itself is made in the Stripe dashboard
(pointing at ``/billing/stripe/webhook/`` or the uuid URL); this records its secret, it does not
create anything at Stripe.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from djstripe.enums import WebhookEndpointStatus
from djstripe.models import Account, APIKey, WebhookEndpoint

from billing.stripe_webhooks import WEBHOOK_EVENTS
from cohorta.errors import ApplicationError

# Our local record of the endpoint configured in Stripe's dashboard: one per deployment.
ENDPOINT_ID = "we_cohorta_from_env"


@dataclass
class StripeSetup:
    account: Account
    endpoint: WebhookEndpoint
    created: bool


def configured_webhook_endpoint() -> WebhookEndpoint | None:
    """The endpoint ``stripe_setup`` recorded, if it has a secret to verify with."""
    return WebhookEndpoint.objects.filter(id=ENDPOINT_ID).exclude(secret="").first()


def stripe_setup(*, site_url: str = "") -> StripeSetup:
    """Record the platform account (one ``GET /v1/account`` the first time a key is seen), its API key, and
    the webhook endpoint with ``STRIPE_WEBHOOK_SECRET``. Raises ``ApplicationError`` without both secrets."""
    secret_key, webhook_secret = settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET
    if not secret_key or not webhook_secret:
        raise ApplicationError(
            "Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET first (see README, Payments).",
            code="payments_not_configured",
        )
    with transaction.atomic():
        api_key, _ = APIKey.objects.get_or_create_by_api_key(secret_key)
        if api_key.djstripe_owner_account is None:
            api_key.refresh_account()
        account = api_key.djstripe_owner_account
        endpoint = WebhookEndpoint.objects.filter(id=ENDPOINT_ID).first()
        created = endpoint is None
        if created:
            endpoint = WebhookEndpoint(id=ENDPOINT_ID)
        endpoint.secret = webhook_secret
        endpoint.livemode = api_key.livemode
        endpoint.djstripe_owner_account = account
        endpoint.enabled_events = list(WEBHOOK_EVENTS)
        endpoint.status = WebhookEndpointStatus.enabled
        endpoint.api_version = endpoint.api_version or ""
        endpoint.metadata = {"djstripe_uuid": str(endpoint.djstripe_uuid), "managed_by": "manage.py stripe_setup"}
        endpoint.url = f"{site_url.rstrip('/')}/stripe/webhook/{endpoint.djstripe_uuid}/" if site_url else ""
        endpoint.save()
    return StripeSetup(account=account, endpoint=endpoint, created=created)
