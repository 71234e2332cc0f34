"""The client's address behind the front proxy, for the WSGI process (gunicorn).

Behind a proxy every request reaches gunicorn from the proxy's address. The audit log records
``REMOTE_ADDR`` and allauth's per-IP rate limits (log-in, sign-up, password reset) count by it,
so without this every visitor would share one address and one log-in budget. daphne's
``--proxy-headers`` does the same for the websocket process.

Only a peer in ``TRUSTED_PROXIES`` (addresses or networks, ``*`` for any; the front proxy on this
machine by default) is believed, and ``X-Forwarded-For`` is read from the right, past the
addresses of trusted proxies (a platform's router in front of the proxy): the entry found there was
written by a proxy we trust, which a client cannot forge. (gunicorn's own FORWARDED_ALLOW_IPS only
decides whether it believes X-Forwarded-Proto, which Django reads itself with BEHIND_TLS_PROXY=1,
and takes no networks.) A connection on a unix socket has no address and only local processes can
open it, so it counts as trusted.
"""

import ipaddress
from collections.abc import Callable, Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted(values: list[str]) -> list[Network] | None:
    """``TRUSTED_PROXIES`` as networks; None means any peer (``*``)."""
    entries = [entry.strip() for entry in values if entry.strip()]
    if "*" in entries:
        return None
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


class ForwardedForMiddleware:
    """WSGI middleware: ``REMOTE_ADDR`` from ``X-Forwarded-For`` when the peer is a trusted proxy."""

    def __init__(self, app: Callable, trusted: list[str]) -> None:
        self.app = app
        self.trusted = parse_trusted(trusted)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        peer = environ.get("REMOTE_ADDR", "")
        # No address: a unix socket, which only local processes can open.
        if forwarded and (not peer or self.is_trusted(peer)):
            client = self.client(forwarded)
            if client is not None:
                environ["REMOTE_ADDR"] = client
        return self.app(environ, start_response)

    def client(self, forwarded: str) -> str | None:
        """Right to left, the first address that is not a trusted proxy's: each proxy appends the peer
        it saw, so that entry was written by a proxy we trust, and everything left of it by the client
        (who can write anything). None when the entry there is not an address."""
        entries = [entry.strip() for entry in forwarded.split(",")]
        for index in range(len(entries) - 1, -1, -1):
            if index == 0 or not self.is_trusted(entries[index]):
                return _address(entries[index])
        return None

    def is_trusted(self, value: str) -> bool:
        address = _address(value)
        if address is None:
            return False
        return self.trusted is None or any(ipaddress.ip_address(address) in network for network in self.trusted)


def _address(value: str) -> str | None:
    """A bare IP address, or None for anything else (a port, a name, garbage): the audit log stores it
    in an IP address column."""
    candidate = value.strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
