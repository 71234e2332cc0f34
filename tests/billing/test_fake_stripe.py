"""The fake Stripe server itself: Stripe's wire shape, idempotency and faults, through the real SDK."""

import pytest
import stripe

from tests.fakes.stripe_server import FAKE_SECRET_KEY, decode_form, make_event, signed_event

PARAMS = {
    "mode": "payment",
    "line_items": [
        {"price_data": {"currency": "usd", "unit_amount": 4900, "product_data": {"name": "x"}}, "quantity": 2}
    ],
    "metadata": {"user_id": "7"},
    "success_url": "https://example.com/?s={CHECKOUT_SESSION_ID}",
}


@pytest.fixture
def client(fake_stripe):
    return stripe.StripeClient(FAKE_SECRET_KEY, base_addresses={"api": fake_stripe.base_url}, max_network_retries=0)


def test_creates_and_retrieves_a_checkout_session(client, fake_stripe):
    session = client.v1.checkout.sessions.create(params=PARAMS)
    assert session.id.startswith("cs_test_") and session.amount_total == 9800 and session.payment_status == "unpaid"
    assert session.url == f"{fake_stripe.base_url}/pay/{session.id}"
    assert client.v1.checkout.sessions.retrieve(session.id).id == session.id
    with pytest.raises(stripe.InvalidRequestError, match=r"No such checkout\.session"):
        client.v1.checkout.sessions.retrieve("cs_missing")


def test_same_key_same_params_replays_and_different_params_is_an_error(client, fake_stripe):
    first = client.v1.checkout.sessions.create(params=PARAMS, options={"idempotency_key": "k"})
    again = client.v1.checkout.sessions.create(params=PARAMS, options={"idempotency_key": "k"})
    assert first.id == again.id and len(fake_stripe.sessions) == 1
    assert [r.replayed for r in fake_stripe.requests] == [False, True]
    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(params={**PARAMS, "mode": "setup"}, options={"idempotency_key": "k"})


def test_faults_come_first_and_are_not_saved_under_the_key(client, fake_stripe):
    fake_stripe.add_fault("server_error")
    fake_stripe.add_fault("payment_required")
    with pytest.raises(stripe.APIError):
        client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "c"})
    with pytest.raises(stripe.CardError):
        client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "c"})
    customer = client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "c"})
    assert customer.email == "a@example.com"
    assert [r.fault for r in fake_stripe.requests] == ["server_error", "payment_required", None]


def test_a_hang_outlasts_a_client_timeout(fake_stripe):
    client = stripe.StripeClient(
        FAKE_SECRET_KEY,
        base_addresses={"api": fake_stripe.base_url},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=0.3),
    )
    fake_stripe.add_fault("hang", seconds=2)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create(params={"email": "a@example.com"})


def test_a_wrong_key_is_401(fake_stripe):
    client = stripe.StripeClient("sk_test_wrong", base_addresses={"api": fake_stripe.base_url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        client.v1.customers.create(params={})


def test_unknown_price_is_resource_missing(client, fake_stripe):
    items = [{"price": "price_nope", "quantity": 1}]
    with pytest.raises(stripe.InvalidRequestError, match="No such price"):
        client.v1.checkout.sessions.create(params={**PARAMS, "line_items": items})


def test_signed_events_verify_with_the_sdk():
    body, header = signed_event(make_event("checkout.session.completed", {"id": "cs_1"}), "whsec_x")
    event = stripe.Webhook.construct_event(body, header, "whsec_x")
    assert event.type == "checkout.session.completed"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, "whsec_y")


def test_decode_form_rebuilds_nested_params():
    pairs = [("a[0][b]", "1"), ("a[0][c][d]", "2"), ("a[1][b]", "3"), ("m[k]", "v"), ("x", "y")]
    assert decode_form(pairs) == {"a": [{"b": "1", "c": {"d": "2"}}, {"b": "3"}], "m": {"k": "v"}, "x": "y"}
