"""A fake Stripe API: the REST shape of the calls Cohorta makes, on a real socket, with faults on demand.

The official ``stripe`` SDK (15.x) works against it unmodified::

    with FakeStripeServer(api_key="sk_test_fakecohorta000000000000000000") as server:
        client = stripe.StripeClient("sk_test_fakecohorta000000000000000000", base_addresses={"api": server.base_url})
        session = client.v1.checkout.sessions.create(params={...}, options={"idempotency_key": "k1"})
        server.requests[-1].params  # the decoded form the SDK sent

Endpoints (form-encoded bodies, Stripe's nested ``a[b][0][c]=v`` keys decoded):

* ``POST /v1/customers`` → a ``customer`` object;
* ``POST /v1/checkout/sessions`` → a ``checkout.session`` (``status "open"``, ``payment_status "unpaid"``,
  ``amount_total`` from ``price_data`` or a price registered in ``server.prices``; an unknown price is a 400
  ``resource_missing``, as at Stripe);
* ``GET /v1/checkout/sessions/{id}`` → the stored session, or 404 ``resource_missing``;
* what dj-stripe reads (``stripe_setup``, ``djstripe_sync_models``, re-fetching an object): ``GET /v1/account``
  (the platform account, ``account_id``), ``GET /v1/{customers,checkout/sessions,payment_intents,charges,refunds,
  balance_transactions,events}`` (lists, ``{"object": "list", "has_more": false}``, filtered by ``charge``,
  ``customer`` and ``payment_intent``) and ``GET …/{id}`` for each
  (404 ``resource_missing`` when unknown). Paying a session makes its payment intent, charge, balance
  transaction and, on ``refund``, a refund; ``deliver`` keeps the events it sends.

Every ``/v1`` request needs ``Authorization: Bearer <api_key>`` (401 otherwise). ``Idempotency-Key`` is honoured
like Stripe does: the same key with the same parameters replays the first response (with
``Idempotent-Replayed: true``) and creates nothing; the same key with other parameters is a 400
``idempotency_error``.

Faults (``add_fault``) are taken, first in first out, by the next ``/v1`` requests. They model failures in
front of Stripe's idempotency layer (a gateway error, a rate limit, a request that never answers), so they
are not saved under the request's idempotency key: a retry with the same key reaches the API. Kinds:
``server_error`` (500 ``api_error``), ``payment_required`` (402 ``card_error``), ``rate_limit`` (429),
``bad_request`` (400 ``invalid_request_error``) and ``hang`` (wait ``seconds`` before answering, then a 500;
its request record says ``client_disconnected`` when the client hung up first).
Every response carries ``Stripe-Should-Retry: false`` so the SDK's own retries don't hide faults from a test
unless the test asks for them (``should_retry=True``).

Outside the API, for journeys in a browser: ``GET /pay/{id}`` is a hosted checkout page whose Pay button
completes the session (``complete``), sends the signed ``charge.succeeded`` and ``checkout.session.completed`` events to
``webhook_url`` when one is set, and redirects to the session's ``success_url``; ``GET /receipts/{charge}``
is a receipt page.

Webhooks: ``sign_payload`` builds the ``Stripe-Signature`` header (``t=…,v1=…``, HMAC-SHA256 of
``f"{t}.{payload}"``) that ``stripe.Webhook.construct_event`` verifies; ``make_event`` and the object
builders (``checkout_session_object``, ``charge_object``) build the payloads; ``server.event(...)`` builds
one from a session the server holds.

Run by hand: ``python -m tests.fakes.stripe_server --port 8812 --webhook-url http://127.0.0.1:8011/billing/stripe/webhook/
--webhook-secret whsec_test``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import html
import http.server
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.hang import hang

__all__ = [
    "FAKE_SECRET_KEY",
    "FAULT_KINDS",
    "FakeStripeServer",
    "RecordedRequest",
    "charge_object",
    "checkout_session_object",
    "decode_form",
    "make_event",
    "sign_payload",
    "signed_event",
]

# dj-stripe checks a key's shape (sk_test_ and 24 or more letters and digits) before using it.
FAKE_SECRET_KEY = "sk_test_fakecohorta000000000000000000"

FAULT_KINDS: dict[str, dict[str, Any]] = {
    # kind: (status, error type, code, message) and the options it takes
    "server_error": {"status": 500, "type": "api_error", "message": "An unknown error occurred."},
    "payment_required": {"status": 402, "type": "card_error", "message": "Your card was declined."},
    "rate_limit": {"status": 429, "type": "invalid_request_error", "message": "Too many requests."},
    "bad_request": {"status": 400, "type": "invalid_request_error", "message": "Invalid request."},
    "hang": {"status": 500, "type": "api_error", "message": "Timed out upstream.", "seconds": 30.0},
}


# Query parameters that narrow a list to one object's children, as at Stripe.
_LIST_FILTERS = ("charge", "customer", "payment_intent")


def _new_id(prefix: str) -> str:
    return f"{prefix}_test_{uuid.uuid4().hex[:24]}"


# --- webhooks: payloads and signatures ---------------------------------------------------------------------


def sign_payload(payload: str, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe would send for ``payload``."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def signed_event(event: dict[str, Any], secret: str, *, timestamp: int | None = None) -> tuple[str, str]:
    """(body, Stripe-Signature header) for an event."""
    payload = json.dumps(event)
    return payload, sign_payload(payload, secret, timestamp=timestamp)


def make_event(type_: str, obj: dict[str, Any], *, event_id: str | None = None, livemode: bool = False) -> dict:
    return {
        "id": event_id or _new_id("evt"),
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }


def charge_object(
    charge_id: str | None = None,
    *,
    payment_intent: str | None,
    amount: int,
    amount_refunded: int = 0,
    currency: str = "usd",
    receipt_url: str | None = None,
    metadata: dict[str, str] | None = None,
    customer: str | None = None,
) -> dict[str, Any]:
    charge_id = charge_id or _new_id("ch")
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "captured": True,
        "created": int(time.time()),
        "currency": currency,
        "customer": customer,
        "livemode": False,
        "metadata": metadata or {},
        "paid": True,
        "payment_intent": payment_intent,
        "receipt_url": receipt_url if receipt_url is not None else f"https://pay.stripe.com/receipts/{charge_id}",
        "refunded": amount_refunded >= amount,
        "status": "succeeded",
    }


def checkout_session_object(
    session_id: str | None = None,
    *,
    payment_status: str = "paid",
    customer: str | None = None,
    metadata: dict[str, str] | None = None,
    client_reference_id: str | None = None,
    amount_total: int = 4900,
    currency: str = "usd",
    payment_intent: str | dict | None = None,
) -> dict[str, Any]:
    return {
        "id": session_id or _new_id("cs"),
        "object": "checkout.session",
        "amount_total": amount_total,
        "client_reference_id": client_reference_id,
        "currency": currency,
        "customer": customer,
        "livemode": False,
        "metadata": metadata or {},
        "mode": "payment",
        "payment_intent": payment_intent,
        "payment_status": payment_status,
        "status": "complete" if payment_status != "unpaid" or payment_intent else "open",
        "url": None,
    }


# --- Stripe's form encoding ---------------------------------------------------------------------------------


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``line_items[0][price_data][currency]=usd`` → ``{"line_items": [{"price_data": {"currency": "usd"}}]}``."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            nxt = None if last else parts[index + 1]
            if isinstance(node, list):
                position = int(part)
                while len(node) <= position:
                    node.append(None)
                if last:
                    node[position] = value
                else:
                    if node[position] is None:
                        node[position] = [] if nxt.isdigit() else {}
                    node = node[position]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if nxt.isdigit() else {})
    return root


# --- the server --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]
    idempotency_key: str | None
    status: int = 0
    replayed: bool = False
    fault: str | None = None
    client_disconnected: bool = False  # a hang: the client hung up before the answer was due


@dataclass
class _Fault:
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Saved:
    fingerprint: str
    status: int
    body: dict[str, Any]


class _ApiError(Exception):
    def __init__(self, status: int, type_: str, message: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.type, self.message, self.code, self.param = status, type_, message, code, param

    def body(self) -> dict[str, Any]:
        error = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


class FakeStripeServer:
    def __init__(
        self,
        *,
        api_key: str = FAKE_SECRET_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_delay: float = 0.0,
        verbose: bool = False,
    ) -> None:
        self.api_key = api_key
        self.host, self.port = host, port
        self.webhook_url, self.webhook_secret, self.webhook_delay = webhook_url, webhook_secret, webhook_delay
        self.verbose = verbose
        self.should_retry = False
        self.requests: list[RecordedRequest] = []
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}
        self.account_id = "acct_test_cohorta"
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.balance_transactions: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.webhook_deliveries: list[tuple[str, int]] = []  # (event type, HTTP status)
        self._faults: deque[_Fault] = deque()
        self._idempotent: dict[str, _Saved] = {}
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    # ---- lifecycle ---------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeStripeServer:
        self.stopping.clear()  # a hang waits on it: a restarted server must hang again
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-stripe", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeStripeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test controls -----------------------------------------------------------------------------------

    def add_fault(self, kind: str, count: int = 1, **options: Any) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {sorted(FAULT_KINDS)}")
        with self._lock:
            for _ in range(count):
                self._faults.append(_Fault(kind, {**FAULT_KINDS[kind], **options}))

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def complete(self, session_id: str, *, payment_status: str = "paid") -> dict[str, Any]:
        """The buyer paid (``"paid"``) or chose a delayed method (``"unpaid"``): a payment intent and, when
        paid, a charge with a receipt. Returns the session as Stripe would now show it."""
        with self._lock:
            session = self.sessions[session_id]
            session["status"] = "complete"
            session["payment_status"] = payment_status
            session["payment_intent"] = session.get("payment_intent") or _new_id("pi")
            if payment_status == "paid" and not session.get("_charge"):
                session["_charge"] = charge_object(
                    payment_intent=session["payment_intent"],
                    amount=session["amount_total"],
                    currency=session["currency"],
                    metadata=(session.get("payment_intent_data") or {}).get("metadata") or {},
                    customer=session.get("customer"),
                    receipt_url=f"{self.base_url}/receipts/{_new_id('ch')}",
                )
                self._record_payment(session)
            return self._public(session)

    def _record_payment(self, session: dict[str, Any]) -> None:
        """The payment intent, charge and balance transaction Stripe keeps for a paid session."""
        charge = session["_charge"]
        txn = {
            "id": _new_id("txn"),
            "object": "balance_transaction",
            "amount": charge["amount"],
            "currency": charge["currency"],
            "created": int(time.time()),
            "fee": 0,
            "net": charge["amount"],
            "status": "available",
            "type": "charge",
            "source": charge["id"],
            "livemode": False,
        }
        charge["balance_transaction"] = txn["id"]
        charge["created"] = int(time.time())
        self.balance_transactions[txn["id"]] = txn
        self.charges[charge["id"]] = charge
        self.payment_intents[session["payment_intent"]] = {
            "id": session["payment_intent"],
            "object": "payment_intent",
            "amount": charge["amount"],
            "amount_received": charge["amount"],
            "currency": charge["currency"],
            "customer": session.get("customer"),
            "created": int(time.time()),
            "latest_charge": charge["id"],
            "metadata": charge.get("metadata") or {},
            "status": "succeeded",
            "livemode": False,
        }

    def charge_for(self, session_id: str) -> dict[str, Any]:
        return dict(self.sessions[session_id]["_charge"])

    def event(self, type_: str, session_id: str, *, event_id: str | None = None) -> dict[str, Any]:
        """A webhook event about a session the server holds: ``checkout.session.*`` carry the session,
        ``charge.*`` its charge."""
        with self._lock:
            if type_.startswith("charge."):
                return make_event(type_, self.charge_for(session_id), event_id=event_id)
            return make_event(type_, self._public(self.sessions[session_id]), event_id=event_id)

    def refund(self, session_id: str, amount: int | None = None) -> dict[str, Any]:
        """Refund ``amount`` more (all that is left by default); returns the ``charge.refunded`` event."""
        with self._lock:
            charge = self.sessions[session_id]["_charge"]
            left = charge["amount"] - charge["amount_refunded"]
            charge["amount_refunded"] += left if amount is None else min(amount, left)
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            refund = {
                "id": _new_id("re"),
                "object": "refund",
                "amount": left if amount is None else min(amount, left),
                "charge": charge["id"],
                "currency": charge["currency"],
                "created": int(time.time()),
                "payment_intent": charge.get("payment_intent"),
                "reason": "requested_by_customer",
                "status": "succeeded",
                "livemode": False,
                "metadata": {},
            }
            self.refunds[refund["id"]] = refund
            return make_event("charge.refunded", dict(charge))

    def deliver(self, event: dict[str, Any]) -> int:
        """POST a signed event to ``webhook_url``; returns the HTTP status."""
        assert self.webhook_url and self.webhook_secret, "set webhook_url and webhook_secret to deliver events"
        with self._lock:
            self.events[event["id"]] = event
        body, signature = signed_event(event, self.webhook_secret)
        request = urllib.request.Request(
            self.webhook_url,
            data=body.encode(),
            headers={"Content-Type": "application/json", "Stripe-Signature": signature},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        self.webhook_deliveries.append((event["type"], status))
        return status

    # ---- the API -----------------------------------------------------------------------------------------

    @staticmethod
    def _public(session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if not k.startswith("_") and k != "payment_intent_data"}

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def handle_api(self, method: str, path: str, params: dict[str, Any], key: str | None) -> tuple[int, dict]:
        """Idempotency layer around ``_route``: same key and parameters → the saved response."""
        if method != "POST" or not key:
            return self._route(method, path, params)
        fingerprint = json.dumps([method, path, params], sort_keys=True)
        with self._lock:
            saved = self._idempotent.get(key)
            if saved is not None:
                if saved.fingerprint != fingerprint:
                    raise _ApiError(
                        400,
                        "idempotency_error",
                        f"Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                    )
                return -saved.status, saved.body  # negative: replayed
            try:
                status, body = self._route(method, path, params)
            except _ApiError as exc:
                if exc.status >= 500:
                    self._idempotent[key] = _Saved(fingerprint, exc.status, exc.body())
                raise
            self._idempotent[key] = _Saved(fingerprint, status, body)
            return status, body

    def _collections(self) -> dict[str, tuple[str, dict[str, dict[str, Any]]]]:
        return {
            "customers": ("customer", self.customers),
            "checkout/sessions": ("checkout.session", self.sessions),
            "payment_intents": ("payment_intent", self.payment_intents),
            "charges": ("charge", self.charges),
            "refunds": ("refund", self.refunds),
            "balance_transactions": ("balance_transaction", self.balance_transactions),
            "events": ("event", self.events),
        }

    def _account(self) -> dict[str, Any]:
        return {
            "id": self.account_id,
            "object": "account",
            "business_profile": {"name": "Cohorta (fake Stripe)"},
            "charges_enabled": True,
            "country": "US",
            "created": 1_700_000_000,
            "default_currency": "usd",
            "details_submitted": True,
            "email": "billing@example.com",
            "metadata": {},
            "payouts_enabled": True,
            "settings": {"dashboard": {"display_name": "Cohorta (fake Stripe)"}},
            "type": "standard",
        }

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict]:
        if method == "POST" and path == "/v1/customers":
            return 200, self._create_customer(params)
        if method == "POST" and path == "/v1/checkout/sessions":
            return 200, self._create_session(params)
        if method == "GET" and path == "/v1/account":
            return 200, self._account()
        if method == "GET" and path == "/v1/accounts":  # connected accounts: Cohorta has none
            return 200, {"object": "list", "url": path, "has_more": False, "data": []}
        if method == "GET" and re.fullmatch(r"/v1/customers/[^/]+/(sources|payment_methods|tax_ids)", path):
            return 200, {"object": "list", "url": path, "has_more": False, "data": []}  # Checkout saves none
        if method == "GET":
            for collection, (kind, store) in self._collections().items():
                if path == f"/v1/{collection}":
                    # Stripe's list filters (``GET /v1/refunds?charge=ch_…``); paging parameters are ignored.
                    wanted = {k: v for k, v in params.items() if k in _LIST_FILTERS}
                    with self._lock:
                        data = [
                            self._public(o) if kind == "checkout.session" else o
                            for o in store.values()
                            if all(o.get(k) == v for k, v in wanted.items())
                        ]
                    return 200, {"object": "list", "url": path, "has_more": False, "data": data}
                match = re.fullmatch(rf"/v1/{collection}/([^/]+)", path)
                if match:
                    with self._lock:
                        found = store.get(match.group(1))
                    if found is None:
                        raise _ApiError(
                            404, "invalid_request_error", f"No such {kind}: '{match.group(1)}'", "resource_missing"
                        )
                    return 200, self._public(found) if kind == "checkout.session" else found
            other = re.fullmatch(r"/v1/([a-z_]+)/([^/]+)", path)
            if other:  # an object of a kind this fake never makes: as at Stripe, it does not exist
                raise _ApiError(
                    404, "invalid_request_error", f"No such {other.group(1)}: '{other.group(2)}'", "resource_missing"
                )
        raise _ApiError(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": _new_id("cus"),
            "object": "customer",
            "created": int(time.time()),
            "email": params.get("email"),
            "name": params.get("name"),
            "metadata": params.get("metadata") or {},
            "livemode": False,
        }
        with self._lock:
            self.customers[customer["id"]] = customer
        return customer

    def _amount(self, items: list[Any]) -> tuple[int, str]:
        total, currency = 0, None
        for index, item in enumerate(items or []):
            quantity = int(item.get("quantity") or 1)
            if "price" in item:
                price = self.prices.get(item["price"])
                if price is None:
                    raise _ApiError(
                        400,
                        "invalid_request_error",
                        f"No such price: '{item['price']}'",
                        "resource_missing",
                        f"line_items[{index}][price]",
                    )
                unit, currency = int(price["unit_amount"]), price["currency"]
            else:
                data = item.get("price_data") or {}
                unit, currency = int(data["unit_amount"]), data["currency"]
            total += unit * quantity
        if currency is None:
            raise _ApiError(400, "invalid_request_error", "Missing required param: line_items.", param="line_items")
        return total, currency

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        for required in ("mode", "success_url"):
            if not params.get(required):
                raise _ApiError(400, "invalid_request_error", f"Missing required param: {required}.", param=required)
        customer = params.get("customer")
        if customer and customer not in self.customers:
            raise _ApiError(400, "invalid_request_error", f"No such customer: '{customer}'", "resource_missing")
        amount, currency = self._amount(params.get("line_items") or [])
        session_id = _new_id("cs")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_total": amount,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": int(time.time()),
            "currency": currency,
            "customer": customer,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "mode": params["mode"],
            "payment_intent": None,
            "payment_intent_data": params.get("payment_intent_data") or {},
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params["success_url"],
            "url": f"{self.base_url}/pay/{session_id}",
        }
        with self._lock:
            self.sessions[session_id] = session
        return self._public(session)

    # ---- the hosted pages (browser journeys) ----------------------------------------------------------------

    def pay_page(self, session_id: str) -> str:
        session = self.sessions[session_id]
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        return (
            "<!doctype html><title>Fake Stripe Checkout</title>"
            "<body style='font-family:sans-serif;max-width:28rem;margin:4rem auto'>"
            f"<h1>Pay {html.escape(amount)}</h1><p>Fake Stripe Checkout for tests.</p>"
            f"<form method='post' action='/pay/{html.escape(session_id)}'><button id='pay'>Pay</button></form>"
            f"<p><a id='cancel' href='{html.escape(session.get('cancel_url') or '/')}'>Cancel</a></p></body>"
        )

    def pay(self, session_id: str) -> str:
        """The Pay button: complete, send the webhook (after ``webhook_delay``), return where to redirect."""
        self.complete(session_id)
        if self.webhook_url and self.webhook_secret:
            # Stripe's usual order: the charge first, then the session.
            events = [self.event("charge.succeeded", session_id), self.event("checkout.session.completed", session_id)]

            def send() -> None:
                time.sleep(self.webhook_delay)
                for event in events:
                    with contextlib.suppress(OSError):
                        self.deliver(event)

            threading.Thread(target=send, daemon=True).start()
        return self.sessions[session_id]["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)


def _mark_hung_up(record: RecordedRequest) -> None:
    record.client_disconnected = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: FakeStripeServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.owner.stopping.is_set() or isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeStripe/1.0"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.owner.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-Id", f"req_{uuid.uuid4().hex[:14]}")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if not url.path.startswith("/v1/"):
            self._hosted(method, url.path)
            return
        pairs = urllib.parse.parse_qsl(raw if method == "POST" else url.query, keep_blank_values=True)
        record = RecordedRequest(
            method=method,
            path=url.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            params=decode_form(pairs),
            idempotency_key=self.headers.get("Idempotency-Key"),
        )
        with owner._lock:
            owner.requests.append(record)
        retry = {"Stripe-Should-Retry": "true" if owner.should_retry else "false"}
        if self.headers.get("Authorization") != f"Bearer {owner.api_key}":
            record.status = 401
            error = {"type": "invalid_request_error", "message": "Invalid API Key provided."}
            self._send(401, json.dumps({"error": error}).encode(), "application/json", retry)
            return
        fault = owner._take_fault()
        if fault is not None:
            record.fault, record.status = fault.kind, fault.options["status"]
            if fault.kind == "hang":
                hang(self.connection, float(fault.options["seconds"]), owner.stopping, lambda: _mark_hung_up(record))
            error = {"type": fault.options["type"], "message": fault.options["message"]}
            self._send(record.status, json.dumps({"error": error}).encode(), "application/json", retry)
            return
        try:
            status, body = owner.handle_api(method, url.path, record.params, record.idempotency_key)
        except _ApiError as exc:
            record.status = exc.status
            self._send(exc.status, json.dumps(exc.body()).encode(), "application/json", retry)
            return
        headers = dict(retry)
        if status < 0:
            status, record.replayed = -status, True
            headers["Idempotent-Replayed"] = "true"
        record.status = status
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _hosted(self, method: str, path: str) -> None:
        owner = self.server.owner
        pay = re.fullmatch(r"/pay/([^/]+)", path)
        if pay and pay.group(1) in owner.sessions:
            if method == "POST":
                self._send(303, b"", "text/plain", {"Location": owner.pay(pay.group(1))})
            else:
                self._send(200, owner.pay_page(pay.group(1)).encode(), "text/html; charset=utf-8")
            return
        if re.fullmatch(r"/receipts/[^/]+", path):
            page = "<!doctype html><title>Receipt</title><h1>Receipt from Fake Stripe</h1><p>Paid. Thank you.</p>"
            self._send(200, page.encode(), "text/html; charset=utf-8")
            return
        self._send(404, b"Not found", "text/plain")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.stripe_server", description="A fake Stripe API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8812)
    parser.add_argument("--api-key", default=FAKE_SECRET_KEY)
    parser.add_argument("--webhook-url", help="where the Pay button sends checkout.session.completed")
    parser.add_argument("--webhook-secret", help="the whsec_… the events are signed with")
    parser.add_argument("--webhook-delay", type=float, default=2.0, help="seconds between paying and the webhook")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    server = FakeStripeServer(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        webhook_delay=args.webhook_delay,
        verbose=args.verbose,
    )
    with server:
        print(f"Fake Stripe on {server.base_url} (api key {args.api_key!r}); Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
