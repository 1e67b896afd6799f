"""A cap on the requests one gunicorn worker runs at once (REQUESTS_IN_FLIGHT; 0 = no cap),
installed around the worker's app by gunicorn.conf.py (`cap_requests_in_flight`).

Under gevent every open connection's request starts as soon as it arrives: in an on-sale rush,
hundreds per process, each holding its request context, session and ORM objects (and its
greenlet's saved stack) while it waits its turn for one of the process's pooled database
connections. Past the cap a request waits before the app, holding nothing but its parsed
headers, and the requests run in arrival order as slots free up: the same work with less memory
in flight (bench/README.md, "Requests in flight").

A slot is held only while the app works on the request, so that slow clients cannot take them
all: a small request body (a form) is read before the request takes one, and the slot is freed
as soon as the app has produced its last piece of the answer, before the server sends it. A request
that waits on something slow and outside the process's CPU (bcrypt's queue on its own thread, an
SMTP server) gives its slot back meanwhile (`slot_given_back`), so a burst of sign-ins cannot take
every slot and stall the pages other visitors load.
"""
from __future__ import annotations

import io
import threading
from contextlib import contextmanager

from flask import has_request_context, request

ENVIRON_KEY = "guichet.in_flight_slot"
READ_FIRST_BYTES = 64 * 1024  # every form of the site is far smaller; larger bodies are read by the app


class InFlightLimit:
    """WSGI middleware. A request holds its slot from the call until its answer's last piece is
    made, or the server closes the body."""

    def __init__(self, wsgi_app, limit: int):
        if limit < 1:
            raise ValueError("the cap needs at least one slot")
        self.wsgi_app = wsgi_app
        self.limit = limit
        # Built in the worker after gevent patched `threading`; built before, a waiting request
        # would still yield: the semaphore's condition makes its waiter lock at each wait, from
        # the patched module (tests/unit/test_in_flight.py).
        self._semaphore = threading.Semaphore(limit)

    def __call__(self, environ, start_response):
        _read_small_body_first(environ)
        slot = _Slot(self._semaphore)
        slot.take()
        environ[ENVIRON_KEY] = slot
        try:
            body = self.wsgi_app(environ, start_response)
        except BaseException:
            slot.give_back()
            raise
        return _BodyHoldingSlot(body, slot)


class _Slot:
    """One request's hold on the cap; giving back twice, or after an interrupted take, is a no-op."""

    __slots__ = ("_semaphore", "held")

    def __init__(self, semaphore):
        self._semaphore = semaphore
        self.held = False

    def take(self, wait: bool = True) -> None:
        self.held = self._semaphore.acquire(blocking=wait)

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self._semaphore.release()


def _read_small_body_first(environ) -> None:
    """A client sending its form slowly does so before its request takes a slot."""
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit() and 0 < int(length) <= READ_FIRST_BYTES:
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(int(length)))


class _BodyHoldingSlot:
    """The app's response body. The slot is freed once the body has no piece left to make (before
    the server sends the last one to a client that may read slowly), or when the server closes
    the body (PEP 3333: it always does), whichever comes first."""

    __slots__ = ("_body", "_slot")

    def __init__(self, body, slot: _Slot):
        self._body = body
        self._slot = slot

    def __iter__(self):
        pieces = iter(self._body)
        for piece in pieces:
            for following in pieces:
                yield piece
                piece = following
            self._slot.give_back()
            yield piece
        self._slot.give_back()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._slot.give_back()


@contextmanager
def slot_given_back():
    """Around a wait that may be long and needs none of this process's CPU: the current request's
    slot goes to the next request meanwhile. Afterwards it takes a slot again if one is free, and
    otherwise finishes over the cap without waiting: it may hold a pooled database connection
    (a sign-in has read the account before bcrypt), and the requests that took every slot may be
    waiting for that very connection. Outside a request, or with no cap, it does nothing."""
    slot = request.environ.get(ENVIRON_KEY) if has_request_context() else None
    if slot is None or not slot.held:
        yield
        return
    slot.give_back()
    try:
        yield
    finally:
        slot.take(wait=False)
