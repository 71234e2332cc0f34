import logging
import uuid
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from djstripe.views import ProcessWebhookView

from billing import selectors
from billing.forms import BuyForm
from billing.stripe_checkout import PaymentProviderError, checkout_session_create, payments_enabled
from billing.stripe_setup import configured_webhook_endpoint
from billing.stripe_webhooks import stripe_webhook_verify
from cohorta.accounts.http import AuthenticatedHttpRequest
from cohorta.api.errors import error_body
from cohorta.errors import ApplicationError

logger = logging.getLogger(__name__)


def _ledger_context(request: AuthenticatedHttpRequest) -> dict:
    page = Paginator(selectors.ledger_for_user(user=request.user), 25).get_page(request.GET.get("page"))
    return {
        "balance": selectors.credits_balance(user=request.user),
        "page_obj": page,
        "purchases": selectors.purchases_for_user(user=request.user)[:20],
    }


def _render_index(
    request: AuthenticatedHttpRequest, *, error: str = "", retry: tuple[int, uuid.UUID] | None = None, status: int = 200
) -> HttpResponse:
    packs = list(selectors.credit_packs_on_sale())
    for pack in packs:
        # "Try again" after a provider error resubmits the same attempt, so Stripe sees the same key.
        pack.attempt_id = retry[1] if retry and retry[0] == pack.pk else uuid.uuid4()
    outcome = request.GET.get("checkout", "")
    checkout = None
    if outcome == "success":
        checkout = selectors.checkout_session_for_user(user=request.user, session_id=request.GET.get("session_id", ""))
    context = {
        **_ledger_context(request),
        "costs": selectors.credit_costs(),
        "packs": packs,
        "payments_enabled": payments_enabled(),
        "checkout": checkout,
        "checkout_outcome": outcome,
        "checkout_error": error,
    }
    return render(request, "billing/index.html", context, status=status)


@login_required
@require_GET
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _render_index(request)


@login_required
@require_POST
def buy(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = BuyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That purchase form was incomplete. Please choose a pack again.")
        return redirect("billing:index")
    pack_id, attempt_id = form.cleaned_data["pack_id"], form.cleaned_data["attempt"]
    try:
        session = checkout_session_create(
            user=request.user,
            pack_id=pack_id,
            attempt_id=attempt_id,
            return_url=request.build_absolute_uri(reverse("billing:index")),
        )
    except ApplicationError as exc:
        # Only a provider failure is retried with the same click; after any other refusal the form gets a fresh one.
        retry = (pack_id, attempt_id) if isinstance(exc, PaymentProviderError) else None
        return _render_index(request, error=exc.message, retry=retry, status=exc.status_code)
    if not session.url:
        return redirect(f"{reverse('billing:index')}?checkout=success&session_id={session.stripe_id}")
    return redirect(session.url)


@login_required
@require_GET
def checkout_status(request: AuthenticatedHttpRequest, session_id: str) -> HttpResponse:
    """The banner after returning from Checkout; polled by htmx until the payment is settled."""
    checkout = selectors.checkout_session_for_user(user=request.user, session_id=session_id)
    if checkout is None:
        raise Http404
    context = {"checkout": checkout, "costs": selectors.credit_costs()}
    if checkout.is_final and request.htmx:
        # Settled while the page watched: refresh balance, purchases and history in the same swap.
        context.update(_ledger_context(request), refresh_page_parts=True)
    else:
        context["balance"] = selectors.credits_balance(user=request.user)
    return render(request, "billing/_checkout_status.html", context)


_djstripe_webhook = ProcessWebhookView.as_view()


# dj-stripe's view manages its own transactions (its delivery log must survive a failed event).
@transaction.non_atomic_requests
@csrf_exempt  # Stripe cannot send a CSRF token; the signature is the authentication.
@require_POST
def stripe_webhook(request: HttpRequest, uuid: UUID | None = None) -> JsonResponse:
    """Stripe's webhook, at dj-stripe's ``/stripe/webhook/<uuid>/`` and at the older
    ``/billing/stripe/webhook/`` (the endpoint ``manage.py stripe_setup`` recorded).

    The signature is checked here first, so an unsigned or forged delivery is a 400 that stores
    nothing; then dj-stripe logs the delivery, stores the event once and sends the signals billing's
    receivers credit from. The answer says what the event did (``selectors.stripe_event_status``).
    """
    endpoint = configured_webhook_endpoint()
    if endpoint is None or (uuid is not None and endpoint.djstripe_uuid != uuid):
        error = ApplicationError(
            "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET, then manage.py stripe_setup).",
            code="payments_not_configured",
            status_code=503 if uuid is None else 404,
        )
        return JsonResponse(error_body(error.code, error.message), status=error.status_code)
    try:
        event = stripe_webhook_verify(
            payload=request.body, signature=request.headers.get("Stripe-Signature", ""), secret=endpoint.secret
        )
    except ApplicationError as exc:
        return JsonResponse(error_body(exc.code, exc.message), status=exc.status_code)
    try:
        response = _djstripe_webhook(request, uuid=endpoint.djstripe_uuid)
    except Exception:
        # dj-stripe logged the traceback on the delivery (admin: Webhook event triggers); a 500 makes
        # Stripe deliver the event again later.
        logger.exception("Stripe webhook %s could not be processed", event["id"])
        body = error_body("server_error", "The event could not be processed; it will be retried.")
        return JsonResponse(body, status=500)
    if response.status_code != 200:
        error = ApplicationError("Stripe webhook was not accepted.", code="invalid_event", status_code=400)
        return JsonResponse(error_body(error.code, error.message), status=response.status_code)
    return JsonResponse({"received": True, "status": selectors.stripe_event_status(event_id=event["id"])})
