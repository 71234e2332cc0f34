"""The fakes' ``hang`` fault: wait, and notice whether the client gives up first.

A test can then tell from the fake's record, not from a clock, that its client's timeout (or deadline)
ended the wait: the fake's own answer was still due when the client hung up."""

import select
import socket
import threading
import time
from collections.abc import Callable

__all__ = ["hang"]


def hang(conn: socket.socket, seconds: float, stopping: threading.Event, on_hang_up: Callable[[], None]) -> None:
    """Wait ``seconds`` (less once ``stopping`` is set), calling ``on_hang_up`` as soon as the client closes
    ``conn`` meanwhile."""
    until = time.monotonic() + seconds
    while not stopping.is_set() and (left := until - time.monotonic()) > 0:
        readable, _, _ = select.select([conn], [], [], min(left, 0.05))
        if not readable or stopping.is_set():
            continue
        try:
            closed = conn.recv(1, socket.MSG_PEEK) == b""
        except OSError:  # reset by the client
            closed = True
        if closed:
            on_hang_up()
        break  # closed, or bytes of a next request: nothing more to watch for, only the wait
    stopping.wait(max(0.0, until - time.monotonic()))
