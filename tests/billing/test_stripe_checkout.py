"""Buying a pack: the Checkout Session Cohorta asks Stripe for, through the real SDK against the fake Stripe."""

import io
import re
import uuid

import pytest
from djstripe.models import Customer

from billing.models import CheckoutAttempt, CheckoutSession, CreditTransaction
from tests.factories import UserFactory
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _attempt_for(response, pack) -> str:
    match = re.search(
        rf'name="pack_id" value="{pack.pk}">\s*<input type="hidden" name="attempt" value="([0-9a-f-]+)"',
        response.content.decode(),
    )
    assert match, "the pack's buy form carries an attempt id"
    return match.group(1)


def _buy(client, pack, attempt: str | None = None):
    return client.post("/billing/buy/", {"pack_id": pack.pk, "attempt": attempt or str(uuid.uuid4())})


# --- not configured ----------------------------------------------------------------------------------------


def test_without_keys_buy_buttons_are_disabled_with_the_reason(client, owner, packs):
    client.force_login(owner)
    response = client.get("/billing/")
    html = response.content.decode()
    assert "Payments are not configured; ask an admin to grant credits" in _text(response)
    buttons = re.findall(r"<button[^>]*data-pack=[^>]*>", html)
    assert len(buttons) == 3 and all("disabled" in b for b in buttons)
    assert 'type="submit"' not in "".join(buttons)
    # The packs are still shown, with their prices.
    assert "$49" in html and "$199" in html and "$499" in html and "220" in html and "600" in html


def test_without_a_webhook_secret_payments_stay_off(client, owner, packs, settings, fake_stripe):
    # A secret key alone would take money that no webhook could ever credit.
    settings.STRIPE_SECRET_KEY = "sk_test_fakecohorta000000000000000000"
    settings.STRIPE_API_BASE = fake_stripe.base_url
    client.force_login(owner)
    assert "Payments are not configured" in _text(client.get("/billing/"))
    response = _buy(client, packs["Starter"])
    assert response.status_code == 503
    assert fake_stripe.requests == []


def test_without_keys_the_api_says_so(owner_api, packs):
    response = owner_api.post("/api/v1/billing/checkout/", {"pack_id": packs["Pro"].pk}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "payments_not_configured"
    assert "ask an admin to grant credits" in response.json()["error"]["message"]


# --- creating the session -----------------------------------------------------------------------------------


def test_buy_opens_a_checkout_session_for_the_pack(client, owner, packs, stripe_on):
    client.force_login(owner)
    page = client.get("/billing/")
    assert "Payments are not configured" not in _text(page)
    attempt = _attempt_for(page, packs["Starter"])

    response = _buy(client, packs["Starter"], attempt)

    session = CheckoutSession.objects.get()
    assert response.status_code == 302 and response.url == session.url
    assert session.url.startswith(stripe_on.base_url + "/pay/cs_test_")
    assert (session.user, session.pack, session.credits, session.amount, session.currency, session.status) == (
        owner,
        packs["Starter"],
        50,
        4900,
        "usd",
        "pending",
    )
    assert str(session.attempt_id) == attempt
    # The click's own record of what it buys, at the pack's terms when it was made.
    snapshot = CheckoutAttempt.objects.get(pk=attempt)
    assert (snapshot.pack, snapshot.credits, snapshot.amount, snapshot.currency) == (packs["Starter"], 50, 4900, "usd")
    customer_call, session_call = stripe_on.requests
    assert customer_call.path == "/v1/customers" and customer_call.idempotency_key == f"customer:{owner.pk}"
    assert customer_call.params["email"] == owner.email
    # The user's Stripe customer is dj-stripe's, with the user as its subscriber.
    customer = Customer.objects.get(subscriber=owner)
    assert customer.id == stripe_on.sessions[session.stripe_id]["customer"] and customer.email == owner.email
    assert customer_call.params["metadata"]["djstripe_subscriber"] == str(owner.pk)
    sent = session_call.params
    assert session_call.idempotency_key == f"checkout:{attempt}"
    assert sent["mode"] == "payment"
    assert sent["customer"] == customer.id
    assert sent["client_reference_id"] == str(owner.pk)
    assert sent["line_items"] == [
        {
            "price_data": {
                "currency": "usd",
                "unit_amount": "4900",
                "product_data": {"name": "Cohorta Starter: 50 credits"},
            },
            "quantity": "1",
        }
    ]
    assert sent["metadata"] == {
        "user_id": str(owner.pk),
        "pack_id": str(packs["Starter"].pk),
        "credits": "50",
        "attempt_id": attempt,
    }
    assert sent["payment_intent_data"]["metadata"] == sent["metadata"]
    assert sent["success_url"] == "http://testserver/billing/?checkout=success&session_id={CHECKOUT_SESSION_ID}"
    assert sent["cancel_url"] == "http://testserver/billing/?checkout=cancelled"
    # Nothing is credited by opening a checkout.
    assert CreditTransaction.objects.count() == 0


def test_a_pack_with_a_stripe_price_is_sold_with_that_price(client, owner, packs, stripe_on):
    pack = packs["Pro"]
    pack.stripe_price_id = "price_pro_2026"
    pack.save()
    stripe_on.prices["price_pro_2026"] = {"unit_amount": 18900, "currency": "usd"}  # a promotion set at Stripe
    client.force_login(owner)
    _buy(client, pack)
    assert stripe_on.requests[-1].params["line_items"] == [{"price": "price_pro_2026", "quantity": "1"}]
    assert CheckoutSession.objects.get().amount == 18900  # what Stripe will charge, not our copy


def test_a_double_submit_gets_the_same_session(client, owner, packs, stripe_on):
    client.force_login(owner)
    attempt = str(uuid.uuid4())
    first, second = _buy(client, packs["Pro"], attempt), _buy(client, packs["Pro"], attempt)
    assert first.url == second.url
    assert CheckoutSession.objects.count() == 1
    assert len(stripe_on.requests_to("POST", "/v1/checkout/sessions")) == 1


def test_a_lost_response_is_retried_with_the_same_key_and_stripe_answers_with_the_same_session(
    client, owner, packs, stripe_on
):
    # Stripe created the session but our row was lost (say the process died): the retry of that
    # click sends the same key, and Stripe replays the same session rather than making a second.
    client.force_login(owner)
    attempt = str(uuid.uuid4())
    first = _buy(client, packs["Pro"], attempt)
    CheckoutSession.objects.all().delete()
    second = _buy(client, packs["Pro"], attempt)
    assert second.url == first.url
    creates = stripe_on.requests_to("POST", "/v1/checkout/sessions")
    assert [r.replayed for r in creates] == [False, True]
    assert len(stripe_on.sessions) == 1


def test_every_purchase_reuses_the_users_stripe_customer(client, owner, packs, stripe_on):
    client.force_login(owner)
    _buy(client, packs["Starter"])
    _buy(client, packs["Scale"])
    assert len(stripe_on.requests_to("POST", "/v1/customers")) == 1
    assert len({s["customer"] for s in stripe_on.sessions.values()}) == 1
    assert CheckoutSession.objects.count() == 2


def test_an_inactive_pack_cannot_be_bought(client, owner, packs, stripe_on):
    packs["Scale"].active = False
    packs["Scale"].save()
    client.force_login(owner)
    page = client.get("/billing/")
    assert "Buy Scale" not in _text(page)
    response = _buy(client, packs["Scale"])
    assert response.status_code == 404
    assert "not on sale" in _text(response)
    assert stripe_on.requests == []


def test_someone_elses_attempt_id_is_refused(client, owner, packs, stripe_on):
    client.force_login(owner)
    attempt = str(uuid.uuid4())
    _buy(client, packs["Starter"], attempt)
    client.force_login(UserFactory())
    response = _buy(client, packs["Starter"], attempt)
    assert response.status_code == 409
    assert CheckoutSession.objects.count() == 1


def test_a_client_chooses_only_the_pack_never_its_price_or_credits(owner_api, packs, stripe_on):
    body = {"pack_id": packs["Pro"].pk, "credits": 100000, "price": "0.01", "amount": 1, "currency": "jpy"}
    response = owner_api.post("/api/v1/billing/checkout/", body, format="json")
    assert response.status_code == 201
    session = CheckoutSession.objects.get()
    assert (session.credits, session.amount, session.currency) == (220, 19900, "usd")
    sent = stripe_on.requests_to("POST", "/v1/checkout/sessions")[0].params
    assert sent["line_items"][0]["price_data"]["unit_amount"] == "19900"
    assert sent["line_items"][0]["price_data"]["currency"] == "usd"


def test_an_open_checkout_keeps_the_terms_of_its_click_when_the_pack_changes(client, owner, packs, stripe_on):
    client.force_login(owner)
    attempt = str(uuid.uuid4())
    first = _buy(client, packs["Pro"], attempt)
    packs["Pro"].credits, packs["Pro"].price = 999, "1.00"
    packs["Pro"].save()
    assert _buy(client, packs["Pro"], attempt).url == first.url  # the same session, at the old terms
    session = CheckoutSession.objects.get()
    assert (session.credits, session.amount) == (220, 19900)


def test_retrying_a_click_after_the_pack_changed_is_refused(client, owner, packs, stripe_on):
    client.force_login(owner)
    attempt = _attempt_for(client.get("/billing/"), packs["Pro"])
    stripe_on.add_fault("server_error")
    assert _buy(client, packs["Pro"], attempt).status_code == 503  # the click is recorded, no session made
    packs["Pro"].price = "149.00"  # a price change while the buyer looked at the error
    packs["Pro"].save()

    refused = _buy(client, packs["Pro"], attempt)

    assert refused.status_code == 409
    assert (
        "The Pro pack changed since this page was opened (now 220 credits for 149.00 USD). "
        "Nothing was charged; reload the page and buy again." in _text(refused)
    )
    assert _attempt_for(refused, packs["Pro"]) != attempt  # the form offers a fresh click at the new price
    assert stripe_on.requests_to("POST", "/v1/checkout/sessions") == [] and CheckoutSession.objects.count() == 0
    assert _buy(client, packs["Pro"], _attempt_for(refused, packs["Pro"])).status_code == 302
    assert CheckoutSession.objects.get().amount == 14900


# --- the provider fails ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["server_error", "payment_required", "rate_limit"])
def test_a_stripe_error_shows_a_clear_message_and_a_retry_reuses_the_key(client, owner, packs, stripe_on, fault):
    client.force_login(owner)
    attempt = _attempt_for(client.get("/billing/"), packs["Pro"])
    Customer.objects.create(id="cus_existing", subscriber=owner, livemode=False)
    stripe_on.customers["cus_existing"] = {"id": "cus_existing"}
    stripe_on.add_fault(fault)

    failed = _buy(client, packs["Pro"], attempt)

    assert failed.status_code == 503
    text = _text(failed)
    assert "Checkout could not start." in text
    assert "The payment provider could not start checkout. Nothing was charged; please try again in a minute." in text
    assert "sk_test_fakecohorta000000000000000000" not in failed.content.decode()
    assert CheckoutSession.objects.count() == 0 and CreditTransaction.objects.count() == 0
    assert CheckoutAttempt.objects.get(pk=attempt).last_error
    # The page offers the same attempt again for that pack: "Try again" is the same click to Stripe.
    assert _attempt_for(failed, packs["Pro"]) == attempt

    retried = _buy(client, packs["Pro"], attempt)

    assert retried.status_code == 302
    keys = [r.idempotency_key for r in stripe_on.requests_to("POST", "/v1/checkout/sessions")]
    assert keys == [f"checkout:{attempt}", f"checkout:{attempt}"]
    session = CheckoutSession.objects.get()
    assert session.status == "pending" and CreditTransaction.objects.count() == 0


def test_a_hanging_provider_times_out_into_the_same_error(client, owner, packs, stripe_on, settings):
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    stripe_on.add_fault("hang", seconds=30)  # its 500 would say the same: only the hang-up tells the timeout fired
    client.force_login(owner)
    response = _buy(client, packs["Starter"])
    [hung] = [r for r in stripe_on.requests if r.fault == "hang"]
    wait_until(lambda: hung.client_disconnected, 10, "the fake to see the checkout give up")
    assert response.status_code == 503
    assert "could not start checkout" in _text(response)
    assert CheckoutSession.objects.count() == 0


def test_the_api_reports_provider_errors_and_a_retry_with_the_same_attempt_succeeds(owner_api, packs, stripe_on):
    attempt = str(uuid.uuid4())
    stripe_on.add_fault("server_error", count=2)  # two tries fail at their first call to Stripe
    body = {"pack_id": packs["Starter"].pk, "attempt_id": attempt}

    first = owner_api.post("/api/v1/billing/checkout/", body, format="json")
    assert first.status_code == 503
    assert first.json()["error"]["code"] == "payment_provider_error"
    assert first.json()["error"]["extra"] == {"attempt_id": attempt}
    second = owner_api.post("/api/v1/billing/checkout/", body, format="json")
    assert second.status_code == 503
    third = owner_api.post("/api/v1/billing/checkout/", body, format="json")
    assert third.status_code == 201
    assert set(third.json()) == {"checkout_url", "session_id"}
    assert third.json()["checkout_url"] == stripe_on.sessions[third.json()["session_id"]]["url"]
    # Retrying again after success returns the same session, without a new call to Stripe.
    again = owner_api.post("/api/v1/billing/checkout/", body, format="json")
    assert again.json() == third.json()
    assert len(stripe_on.sessions) == 1


# --- API ------------------------------------------------------------------------------------------------------


def test_packs_api_lists_the_packs_on_sale(owner_api, packs):
    packs["Scale"].active = False
    packs["Scale"].save()
    response = owner_api.get("/api/v1/billing/packs/")
    assert response.status_code == 200
    assert response.json() == [
        {"id": packs["Starter"].pk, "name": "Starter", "credits": 50, "price": "49.00", "currency": "usd"},
        {"id": packs["Pro"].pk, "name": "Pro", "credits": 220, "price": "199.00", "currency": "usd"},
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "pack_id"), ({"pack_id": "x"}, "pack_id"), ({"pack_id": 1, "attempt_id": "nope"}, "attempt_id")],
)
def test_checkout_api_validates_its_input(owner_api, packs, stripe_on, body, field):
    response = owner_api.post("/api/v1/billing/checkout/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]


def test_checkout_api_unknown_pack_is_404(owner_api, packs, stripe_on):
    response = owner_api.post("/api/v1/billing/checkout/", {"pack_id": 999999}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "pack_not_found"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/billing/packs/"),
        ("post", "/api/v1/billing/checkout/"),
        ("get", "/api/v1/billing/checkout/cs_x/"),
    ],
)
def test_billing_api_needs_authentication(api_client, method, url):
    assert getattr(api_client, method)(url).status_code in (401, 403)


def test_checkout_detail_api_is_scoped_to_the_owner(owner_api, owner, other_user, packs, stripe_on):
    created = owner_api.post("/api/v1/billing/checkout/", {"pack_id": packs["Pro"].pk}, format="json").json()
    mine = owner_api.get(f"/api/v1/billing/checkout/{created['session_id']}/")
    assert mine.status_code == 200
    assert mine.json()["status"] == "pending" and mine.json()["credits"] == 220 and mine.json()["price"] == "199.00"
    owner_api.force_authenticate(other_user)
    assert owner_api.get(f"/api/v1/billing/checkout/{created['session_id']}/").status_code == 404


def test_a_stored_customer_missing_from_the_stripe_account_is_replaced(client, owner, packs, stripe_on):
    # The keys moved (test → live, or another account): the customer we stored does not exist there.
    Customer.objects.create(id="cus_from_the_old_account", subscriber=owner, livemode=False)
    client.force_login(owner)
    response = _buy(client, packs["Starter"])
    assert response.status_code == 302
    replaced = Customer.objects.get(subscriber=owner)
    assert replaced.id != "cus_from_the_old_account" and replaced.id in stripe_on.customers
    assert Customer.objects.get(id="cus_from_the_old_account").date_purged is not None
    (create_customer,) = stripe_on.requests_to("POST", "/v1/customers")
    assert create_customer.idempotency_key == f"customer:{owner.pk}:replaces:cus_from_the_old_account"
    assert stripe_on.sessions[CheckoutSession.objects.get().stripe_id]["customer"] == replaced.id


def test_djstripe_sync_models_mirrors_a_purchase_from_the_fake_stripe(client, owner, packs, stripe_on):
    from django.core.management import call_command
    from djstripe.models import Charge, PaymentIntent, Session

    from billing.stripe_setup import stripe_setup

    stripe_setup()
    client.force_login(owner)
    _buy(client, packs["Starter"])
    session_id = CheckoutSession.objects.get().stripe_id
    stripe_on.complete(session_id)

    out = io.StringIO()
    call_command("djstripe_sync_models", "Customer", "Session", "PaymentIntent", "Charge", stdout=out, stderr=out)

    assert "fail" not in out.getvalue().lower(), out.getvalue()

    assert Customer.objects.get(subscriber=owner).id == stripe_on.sessions[session_id]["customer"]
    assert Session.objects.filter(id=session_id).exists()
    charge = stripe_on.charge_for(session_id)
    assert Charge.objects.get(id=charge["id"]).amount == 49
    assert PaymentIntent.objects.filter(id=charge["payment_intent"]).exists()
    assert CreditTransaction.objects.count() == 0  # mirroring Stripe grants nothing: only the webhook does
