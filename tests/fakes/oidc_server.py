"""A fake OpenID Connect provider (and the Microsoft Entra ID + Graph endpoints allauth calls), on a real socket.

allauth's ``openid_connect`` provider works against it unmodified: point ``server_url`` at ``server.base_url``
and it reads the discovery document, sends the browser to ``/authorize``, swaps the code at ``/token``, reads
``/userinfo`` and checks the ID token against the RSA key published at ``/jwks``::

    with FakeOIDCServer(client_id="cohorta", client_secret="s3cret") as idp:
        idp.user = {"sub": "u-1", "email": "ada@example.com", "email_verified": True, "name": "Ada Lovelace"}
        ...

Endpoints:

* ``GET /.well-known/openid-configuration`` — discovery (issuer is ``base_url``);
* ``GET /authorize`` — checks ``client_id``, ``response_type=code`` and ``redirect_uri``, then, by ``consent``:
  ``"allow"`` redirects back at once with ``code`` and ``state``; ``"deny"`` redirects back with
  ``error=access_denied`` (the person cancelled); ``"page"`` shows a small consent page whose *Allow* and
  *Cancel* buttons (``POST /authorize``) do the same — what a browser journey clicks;
* ``POST /token`` — the authorization-code grant: client authentication (``client_secret_post`` or
  ``client_secret_basic``), the code used once, the same ``redirect_uri``, PKCE (S256) when a challenge was
  sent; answers ``access_token`` and an ``id_token`` signed RS256 with the key it generated;
* ``GET /userinfo`` — the claims of the person behind a bearer access token;
* ``GET /jwks`` — the public key (``kid`` ``fake-key-1``).

Microsoft, as allauth's ``microsoft`` provider calls it (``login_url`` and ``graph_url`` set to ``base_url``):
``/{tenant}/oauth2/v2.0/authorize`` and ``/{tenant}/oauth2/v2.0/token`` behave as above (the tenants asked for
are recorded in ``tenants``), and ``GET /v1.0/me`` answers a Graph profile (``id``, ``mail``, ``displayName``…).

Faults in the next ID token (``token_faults``, first in first out): ``wrong_audience`` (``aud`` is another
client), ``expired`` (``exp`` an hour ago), ``bad_signature`` (signed by another key under the same ``kid``),
``wrong_issuer``.

Run by hand: ``python -m tests.fakes.oidc_server --port 8813 --client-id cohorta --client-secret dev-secret``
and start Cohorta with ``OIDC_CLIENT_ID=cohorta OIDC_CLIENT_SECRET=dev-secret
OIDC_SERVER_URL=http://127.0.0.1:8813 OIDC_NAME="Fake IdP"``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import html
import http.server
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["TOKEN_FAULTS", "FakeOIDCServer"]

TOKEN_FAULTS = ("wrong_audience", "expired", "bad_signature", "wrong_issuer")
KEY_ID = "fake-key-1"
MICROSOFT_PATH = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/(?P<endpoint>authorize|token)")


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    user: dict[str, Any]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None


@dataclass
class _Pending:
    """An authorization request waiting on the consent page."""

    params: dict[str, str]
    user: dict[str, Any] = field(default_factory=dict)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeOIDCServer:
    def __init__(
        self,
        *,
        client_id: str = "cohorta-test",
        client_secret: str = "fake-oidc-secret",
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "Fake IdP",
        consent: str = "allow",
        verbose: bool = False,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.host, self.port, self.name = host, port, name
        self.consent = consent  # allow | deny | page
        self.verbose = verbose
        self.user: dict[str, Any] = {
            "sub": "fake-user-1",
            "email": "ada@example.com",
            "email_verified": True,
            "name": "Ada Lovelace",
            "given_name": "Ada",
            "family_name": "Lovelace",
        }
        self.token_faults: deque[str] = deque()
        self.tenants: list[str] = []
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.token_lifetime = 300
        self._key = _new_key()
        self._codes: dict[str, _Grant] = {}
        self._access_tokens: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self.stopping = threading.Event()

    # ---- lifecycle ---------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base_url

    def start(self) -> FakeOIDCServer:
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-oidc", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOIDCServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test controls -----------------------------------------------------------------------------------

    def add_token_fault(self, kind: str) -> None:
        if kind not in TOKEN_FAULTS:
            raise ValueError(f"unknown token fault {kind!r}; one of {TOKEN_FAULTS}")
        with self._lock:
            self.token_faults.append(kind)

    def paths_requested(self, method: str | None = None) -> list[str]:
        return [path for m, path in self.requests if method in (None, m)]

    # ---- protocol ----------------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        base = self.base_url
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name", "given_name", "family_name"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]}

    def check_authorization(self, params: dict[str, str]) -> str | None:
        """The reason an authorization request is refused outright (shown on the provider's page), or None."""
        if params.get("client_id") != self.client_id:
            return "Unknown client_id."
        if params.get("response_type") != "code":
            return "Only response_type=code is supported."
        if not params.get("redirect_uri", "").startswith(("http://", "https://")):
            return "A redirect_uri is required."
        return None

    def decide(self, params: dict[str, str], *, allow: bool, user: dict[str, Any] | None = None) -> str:
        """Where the browser goes back to after the person allowed or cancelled."""
        back: dict[str, str] = {}
        if allow:
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = _Grant(
                    client_id=params["client_id"],
                    redirect_uri=params["redirect_uri"],
                    user=dict(user if user is not None else self.user),
                    nonce=params.get("nonce"),
                    code_challenge=params.get("code_challenge"),
                    code_challenge_method=params.get("code_challenge_method"),
                )
            back["code"] = code
        else:
            back.update(error="access_denied", error_description="The user cancelled the sign-in.")
        if "state" in params:
            back["state"] = params["state"]
        separator = "&" if "?" in params["redirect_uri"] else "?"
        return params["redirect_uri"] + separator + urllib.parse.urlencode(back)

    def hold(self, params: dict[str, str]) -> str:
        request_id = secrets.token_urlsafe(12)
        with self._lock:
            self._pending[request_id] = _Pending(params=params, user=dict(self.user))
        return request_id

    def release(self, request_id: str) -> _Pending | None:
        with self._lock:
            return self._pending.pop(request_id, None)

    def exchange(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
            client_id, client_secret = urllib.parse.unquote(client_id), urllib.parse.unquote(client_secret)
        if client_id != self.client_id or client_secret != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant.client_id != client_id:
            return 400, {"error": "invalid_grant", "error_description": "Unknown or used code."}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri does not match."}
        if grant.code_challenge:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if grant.code_challenge_method != "S256" or digest != grant.code_challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed."}
        access_token = secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[access_token] = grant.user
            fault = self.token_faults.popleft() if self.token_faults else None
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "openid profile email",
            "id_token": self.id_token(grant, fault=fault),
        }

    def id_token(self, grant: _Grant, *, fault: str | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + self.token_lifetime,
            "jti": secrets.token_hex(8),
            **grant.user,
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        key = self._key
        if fault == "wrong_audience":
            claims["aud"] = "some-other-application"
        elif fault == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif fault == "wrong_issuer":
            claims["iss"] = "https://impostor.example.com"
        elif fault == "bad_signature":
            key = _new_key()
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KEY_ID})

    def userinfo(self, authorization: str | None) -> dict[str, Any] | None:
        token = (authorization or "").removeprefix("Bearer ").strip()
        with self._lock:
            return self._access_tokens.get(token)

    @staticmethod
    def graph_profile(user: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": user["sub"],
            "mail": user.get("email"),
            "userPrincipalName": user.get("email"),
            "displayName": user.get("name"),
            "givenName": user.get("given_name"),
            "surname": user.get("family_name"),
        }

    def consent_page(self, request_id: str, params: dict[str, str], user: dict[str, Any]) -> str:
        who = html.escape(f"{user.get('name') or ''} <{user.get('email') or ''}>".strip())
        rid = html.escape(request_id)
        name = html.escape(self.name)
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} — sign in</title>
<style>body{{font:16px system-ui,sans-serif;background:#eef1f6;margin:0;display:grid;place-items:center;
min-height:100vh}}
main{{background:#fff;padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0002;max-width:24rem}}
button{{font:inherit;padding:.5rem 1.25rem;border-radius:6px;border:1px solid #345;margin-right:.5rem;cursor:pointer}}
.allow{{background:#234;color:#fff}}</style></head>
<body><main><h1>{name}</h1>
<p>Signed in as <strong>{who}</strong>.</p>
<p><strong>{html.escape(params.get("client_id", ""))}</strong> wants your name and email address.</p>
<form method="post" action="/authorize"><input type="hidden" name="request" value="{rid}">
<button class="allow" name="decision" value="allow">Allow</button>
<button name="decision" value="deny">Cancel</button></form></main></body></html>"""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: FakeOIDCServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.owner.stopping.is_set() or isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOIDC/1.0"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.owner.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _page(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self._send(302, b"", "text/plain", {"Location": location})

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True)) if method == "POST" else {}
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        with owner._lock:
            owner.requests.append((method, url.path))
        path = url.path
        microsoft = MICROSOFT_PATH.fullmatch(path)
        if microsoft:
            with owner._lock:
                owner.tenants.append(microsoft["tenant"])
            path = "/" + microsoft["endpoint"]

        if path == "/.well-known/openid-configuration" and method == "GET":
            self._json(200, owner.discovery())
        elif path == "/jwks" and method == "GET":
            self._json(200, owner.jwks())
        elif path == "/authorize" and method == "GET":
            self._authorize(query)
        elif path == "/authorize" and method == "POST":
            pending = owner.release(form.get("request", ""))
            if pending is None:
                self._page(400, "<h1>This sign-in request has expired.</h1>")
                return
            allow = form.get("decision") == "allow"
            self._redirect(owner.decide(pending.params, allow=allow, user=pending.user))
        elif path == "/token" and method == "POST":
            status, body = owner.exchange(form, self.headers.get("Authorization"))
            self._json(status, body)
        elif path in ("/userinfo", "/v1.0/me") and method == "GET":
            user = owner.userinfo(self.headers.get("Authorization"))
            if user is None:
                self._json(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            else:
                self._json(200, user if path == "/userinfo" else owner.graph_profile(user))
        else:
            self._send(404, b"Not found", "text/plain")

    def _authorize(self, params: dict[str, str]) -> None:
        owner = self.server.owner
        refused = owner.check_authorization(params)
        if refused:
            self._page(400, f"<h1>Sign-in request refused</h1><p>{html.escape(refused)}</p>")
        elif owner.consent == "page":
            request_id = owner.hold(params)
            self._page(200, owner.consent_page(request_id, params, owner.user))
        else:
            self._redirect(owner.decide(params, allow=owner.consent == "allow"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.oidc_server", description="A fake OpenID Connect provider."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8813)
    parser.add_argument("--client-id", default="cohorta-test")
    parser.add_argument("--client-secret", default="fake-oidc-secret")
    parser.add_argument("--email", default="ada@example.com", help="the person who signs in")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    server = FakeOIDCServer(
        client_id=args.client_id,
        client_secret=args.client_secret,
        host=args.host,
        port=args.port,
        consent="page",
        verbose=args.verbose,
    )
    server.user["email"] = args.email
    with server:
        print(
            f"Fake OpenID Connect provider on {server.base_url} (client {args.client_id!r}); Ctrl-C to stop", flush=True
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
