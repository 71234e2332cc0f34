"""The Billing page after Checkout: the self-updating banner, purchases with receipts, plain-word history."""

import re

import pytest

from billing.services import credits_grant
from tests.billing.conftest import make_checkout, post_event
from tests.fakes.stripe_server import checkout_session_object, make_event

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _banner(response) -> str:
    html = response.content.decode()
    start = html.index('<div id="checkout-status"')
    return html[start : html.index("</div>\n</div>", start)]


def _paid_event(checkout, **more) -> dict:
    more.setdefault("payment_intent", "pi_page")
    obj = checkout_session_object(
        checkout.stripe_id,
        metadata={"user_id": str(checkout.user_id), "credits": str(checkout.credits)},
        amount_total=checkout.amount,
        **more,
    )
    return make_event("checkout.session.completed", obj)


def test_returning_from_checkout_shows_a_banner_that_polls_until_confirmed(client, owner, packs, webhook_secret):
    checkout = make_checkout(owner, packs["Starter"], stripe_id="cs_test_page_1")
    client.force_login(owner)

    page = client.get("/billing/?checkout=success&session_id=cs_test_page_1")
    html = page.content.decode()
    assert "Payment received — waiting for confirmation…" in _text(page)
    assert 'hx-get="/billing/checkout/cs_test_page_1/status/"' in html and 'hx-trigger="every 2s"' in html

    # Polling before the webhook: still waiting, still polling.
    poll = client.get("/billing/checkout/cs_test_page_1/status/", HTTP_HX_REQUEST="true")
    assert poll.status_code == 200 and 'hx-trigger="every 2s"' in poll.content.decode()

    post_event(client, _paid_event(checkout))

    # The next poll shows the credits and carries no trigger: polling stops. Balance, purchases
    # and history are swapped in out of band, so the page is current without a refresh.
    settled = client.get("/billing/checkout/cs_test_page_1/status/", HTTP_HX_REQUEST="true")
    html = settled.content.decode()
    assert "50 credits added." in _text(settled) and "Your balance is now 50 credits" in _text(settled)
    assert "hx-trigger" not in html and 'data-status="paid"' in html
    assert 'id="credit-balance-card" hx-swap-oob="true"' in html and 'id="credit-balance">50<' in html
    assert 'id="purchases" hx-swap-oob="true"' in html and 'id="credit-history" hx-swap-oob="true"' in html
    assert "Starter pack: 50 credits" in html


def test_a_delayed_payment_banner_polls_slowly(client, owner, packs):
    make_checkout(owner, packs["Starter"], stripe_id="cs_test_slow", status="processing")
    client.force_login(owner)
    html = client.get("/billing/checkout/cs_test_slow/status/").content.decode()
    assert "Your payment is processing." in html and 'hx-trigger="every 30s"' in html


@pytest.mark.parametrize(
    ("status", "words"),
    [("failed", "The payment did not go through."), ("expired", "This checkout expired before it was paid.")],
)
def test_settled_without_payment_banners(client, owner, packs, status, words):
    make_checkout(owner, packs["Starter"], stripe_id="cs_test_bad", status=status)
    client.force_login(owner)
    page = client.get("/billing/?checkout=success&session_id=cs_test_bad")
    assert words in _text(page) and "hx-trigger" not in _banner(page)


def test_another_users_checkout_status_is_404_and_never_shown(client, owner, other_user, packs):
    make_checkout(owner, packs["Scale"], stripe_id="cs_test_private")
    client.force_login(other_user)
    assert client.get("/billing/checkout/cs_test_private/status/").status_code == 404
    assert client.get("/billing/checkout/cs_test_nonexistent/status/").status_code == 404
    page = client.get("/billing/?checkout=success&session_id=cs_test_private")
    assert page.status_code == 200
    assert "checkout-status" not in page.content.decode() and "600" not in _text(page).split("Buy credits")[0]


def test_status_needs_login(client, owner, packs):
    make_checkout(owner, packs["Scale"], stripe_id="cs_test_login")
    response = client.get("/billing/checkout/cs_test_login/status/")
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_cancelled_checkout_says_nothing_was_charged(client, owner, packs):
    client.force_login(owner)
    assert "Checkout cancelled. Nothing was charged." in _text(client.get("/billing/?checkout=cancelled"))


def test_purchases_list_receipts_and_refunds(client, owner, packs, webhook_secret):
    paid = make_checkout(owner, packs["Pro"], stripe_id="cs_test_receipt")
    post_event(
        client,
        _paid_event(
            paid,
            payment_intent={
                "id": "pi_r",
                "latest_charge": {"id": "ch_r", "receipt_url": "https://pay.stripe.com/receipts/ch_r"},
            },
        ),
    )
    refunded = make_checkout(owner, packs["Starter"], stripe_id="cs_test_refunded", status="paid")
    refunded.amount_refunded = refunded.amount
    refunded.save()
    make_checkout(owner, packs["Scale"], stripe_id="cs_test_abandoned")  # never paid: not a purchase
    client.force_login(owner)

    page = client.get("/billing/")
    html = page.content.decode()
    purchases = html[html.index('id="purchase-list"') : html.index("</table>", html.index('id="purchase-list"'))]
    assert 'href="https://pay.stripe.com/receipts/ch_r"' in purchases and 'rel="noopener noreferrer"' in purchases
    assert "Pro" in purchases and "$199" in purchases and "Paid" in purchases
    assert "Refunded" in purchases
    assert "Scale" not in purchases


def test_history_names_kinds_in_plain_words(client, owner):
    credits_grant(user=owner, amount=10, idempotency_key="g", created_by=None, description="")
    client.force_login(owner)
    assert "Added by an admin" in _text(client.get("/billing/"))


def test_packs_show_price_per_credit_and_enabled_buttons_when_configured(client, owner, packs, stripe_on):
    client.force_login(owner)
    page = client.get("/billing/")
    text = _text(page)
    assert "$0.98 per credit" in text and "$0.90 per credit" in text and "$0.83 per credit" in text
    buttons = re.findall(r"<button[^>]*data-pack=[^>]*>", page.content.decode())
    assert len(buttons) == 3 and not any("disabled" in b for b in buttons)
