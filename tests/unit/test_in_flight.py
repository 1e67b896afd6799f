"""The cap on requests in flight (app/in_flight.py), on plain WSGI callables and a bare Flask app."""
from __future__ import annotations

import io
import threading

import pytest
from flask import Flask

from app.in_flight import READ_FIRST_BYTES, InFlightLimit, slot_given_back

WAIT = 5  # seconds: a step that has not happened by then never will


def start_response(status, headers, exc_info=None):
    return lambda data: None


class GatedApp:
    """A WSGI app whose requests block until `gate` opens; counts how many run at once."""

    def __init__(self):
        self.gate = threading.Event()
        self.running = self.most_at_once = 0
        self.entered = threading.Semaphore(0)
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.entered.release()
        try:
            self.gate.wait(WAIT)
            start_response("200 OK", [])
            return [b"ok"]
        finally:
            with self._lock:
                self.running -= 1


def request_in_thread(wsgi, bodies: list) -> threading.Thread:
    def run():
        bodies.append(wsgi({}, start_response))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def free_slots(limit: InFlightLimit) -> int:
    """How many requests could start now (takes and gives back every free slot)."""
    taken = 0
    semaphore = limit._semaphore
    while semaphore.acquire(blocking=False):
        taken += 1
    for _ in range(taken):
        semaphore.release()
    return taken


def wait_until(condition) -> bool:
    done = threading.Event()
    for _ in range(WAIT * 100):
        if condition():
            return True
        done.wait(0.01)
    return False


def test_no_more_than_the_cap_run_at_once_and_the_others_wait_their_turn():
    inner = GatedApp()
    limit = InFlightLimit(inner, 2)
    bodies: list = []
    threads = [request_in_thread(limit, bodies) for _ in range(5)]
    assert inner.entered.acquire(timeout=WAIT) and inner.entered.acquire(timeout=WAIT)
    assert not inner.entered.acquire(timeout=0.2)  # the third waits before the app
    inner.gate.set()
    assert wait_until(lambda: len(bodies) == 2)
    assert not inner.entered.acquire(timeout=0.2)  # answered, but their bodies are open: slots held
    for closed in range(5):
        assert wait_until(lambda closed=closed: len(bodies) > closed)
        bodies[closed].close()
    for thread in threads:
        thread.join(WAIT)
    assert inner.most_at_once == 2
    assert free_slots(limit) == 2


def test_closing_the_body_closes_the_apps_body_and_frees_the_slot_once():
    closed = []

    class Body(list):
        def close(self):
            closed.append(True)

    limit = InFlightLimit(lambda environ, start: Body([b"a", b"b"]), 1)
    body = limit({}, start_response)
    assert free_slots(limit) == 0  # answered, nothing sent yet
    body.close()
    body.close()  # a second close gives back nothing more
    assert closed == [True, True] and free_slots(limit) == 1


def test_the_slot_is_free_before_the_last_piece_is_sent():
    """A client reading slowly holds no slot while the server sends it the last (for a page, the
    only) piece; while the app still makes pieces, the slot stays taken."""
    limit = InFlightLimit(lambda environ, start: iter([b"head", b"middle", b"tail"]), 1)
    pieces = iter(limit({}, start_response))
    assert next(pieces) == b"head" and free_slots(limit) == 0
    assert next(pieces) == b"middle" and free_slots(limit) == 0
    assert next(pieces) == b"tail" and free_slots(limit) == 1  # nothing left to make: free while it is sent
    assert list(pieces) == [] and free_slots(limit) == 1
    for body in ([b"page"], []):  # a whole page, an empty body
        limit = InFlightLimit(lambda environ, start, body=body: body, 1)
        assert list(limit({}, start_response)) == body and free_slots(limit) == 1


class SlowUpload(io.RawIOBase):
    """A request body whose bytes arrive when `arrived` is set (`reading` tells it is awaited)."""

    def __init__(self, data: bytes, arrived: threading.Event):
        self.data, self.arrived, self.reading = data, arrived, threading.Event()

    def read(self, size=-1):
        self.reading.set()
        self.arrived.wait(WAIT)
        data, self.data = self.data, b""
        return data


def test_a_slow_upload_of_a_small_form_holds_no_slot_while_it_arrives():
    seen = []

    def app(environ, start):
        seen.append(environ["wsgi.input"].read())
        return [b"ok"]

    limit = InFlightLimit(app, 1)
    arrived = threading.Event()
    form = b"email=zoe%40example.com&password=x"
    upload = SlowUpload(form, arrived)
    slow = threading.Thread(target=lambda: list(limit({"CONTENT_LENGTH": str(len(form)), "wsgi.input": upload},
                                                      start_response)))
    slow.start()
    assert upload.reading.wait(WAIT)
    other = threading.Thread(target=lambda: list(limit({"wsgi.input": io.BytesIO()}, start_response)))
    other.start()
    other.join(WAIT)  # another request goes through while the form is still arriving
    served_meanwhile = not other.is_alive()
    arrived.set()
    slow.join(WAIT)
    other.join(WAIT)
    assert served_meanwhile and seen == [b"", form]  # and the app read the whole form, from memory


def test_a_large_body_is_left_to_the_app():
    large = io.BytesIO(b"x" * (READ_FIRST_BYTES + 1))
    environ = {"CONTENT_LENGTH": str(READ_FIRST_BYTES + 1), "wsgi.input": large}
    InFlightLimit(lambda e, s: [e["wsgi.input"].read(10)], 1)(environ, start_response)
    assert environ["wsgi.input"] is large and large.tell() == 10


def test_an_app_that_raises_gives_its_slot_back():
    def failing(environ, start):
        raise RuntimeError("boom")

    limit = InFlightLimit(failing, 1)
    with pytest.raises(RuntimeError):
        limit({}, start_response)
    assert free_slots(limit) == 1


def test_a_cap_needs_a_slot():
    with pytest.raises(ValueError):
        InFlightLimit(lambda e, s: [], 0)


def test_a_request_waiting_elsewhere_lends_its_slot_and_never_waits_to_come_back():
    """Coming back, it takes a slot if one is free, else it finishes over the cap: waiting could
    deadlock (the requests holding every slot may wait for the database connection it holds)."""
    flask_app = Flask(__name__)
    waiting, done, holding, release = (threading.Event() for _ in range(4))

    @flask_app.get("/slow")
    def slow():
        with slot_given_back():
            waiting.set()
            done.wait(WAIT)
        return "slow"

    @flask_app.get("/fast")
    def fast():
        return "fast"

    @flask_app.get("/hold")
    def hold():
        holding.set()
        release.wait(WAIT)
        return "held"

    limit = InFlightLimit(flask_app.wsgi_app, 1)
    flask_app.wsgi_app = limit
    client = flask_app.test_client()
    answers = {}

    def get(path):
        return threading.Thread(target=lambda: answers.update({path: client.get(path, buffered=True).get_data(
            as_text=True)}))

    slow_request = get("/slow")
    slow_request.start()
    assert waiting.wait(WAIT)
    page = get("/fast")
    page.start()
    page.join(WAIT)
    if page.is_alive():  # it waits for the slot the slow request kept: let both finish, then fail
        done.set()
        slow_request.join(WAIT)
        page.join(WAIT)
    assert answers.get("/fast") == "fast" and not done.is_set()  # served on the slot the slow one lent
    holder = get("/hold")
    holder.start()
    assert holding.wait(WAIT)  # the one slot is in use again
    done.set()
    slow_request.join(WAIT)
    assert answers.get("/slow") == "slow"  # finished over the cap, without waiting for the slot
    assert free_slots(limit) == 0  # and gave back nothing it did not hold: the holder still has it
    release.set()
    holder.join(WAIT)
    assert answers == {"/fast": "fast", "/hold": "held", "/slow": "slow"}
    assert free_slots(limit) == 1


def test_coming_back_to_a_free_slot_takes_it():
    flask_app = Flask(__name__)
    seen = []

    @flask_app.get("/wait")
    def wait():
        with slot_given_back():
            seen.append(free_slots(limit))
        seen.append(free_slots(limit))
        return "done"

    limit = InFlightLimit(flask_app.wsgi_app, 1)
    flask_app.wsgi_app = limit
    assert flask_app.test_client().get("/wait", buffered=True).get_data(as_text=True) == "done"
    assert seen == [1, 0] and free_slots(limit) == 1  # lent, taken again, given back at the end


def test_outside_a_request_or_without_a_cap_nothing_is_lent():
    with slot_given_back():
        pass
    flask_app = Flask(__name__)
    with flask_app.test_request_context("/"), slot_given_back():
        pass


GEVENT_SCRIPT = """
from app.in_flight import InFlightLimit  # built before gevent patches, as with GUNICORN_PRELOAD

def app(environ, start_response):
    gevent.sleep(0.05)
    return [b"ok"]

limit = InFlightLimit(app, 1)
from gevent import monkey; monkey.patch_all()
import gevent

ticks = 0

def ticker():
    global ticks
    while True:
        ticks += 1
        gevent.sleep(0.001)

def request():
    body = limit({}, None)
    gevent.sleep(0.05)
    body.close()

gevent.spawn(ticker)
requests = [gevent.spawn(request) for _ in range(3)]
gevent.joinall(requests, timeout=10)
assert all(r.successful() for r in requests), "a request did not finish"
print(ticks)
"""


def test_under_gevent_a_request_waiting_for_a_slot_yields_to_the_others():
    """gunicorn's gevent worker: a request waiting for a slot must let the holder (and everything
    else of the process) run, even when the app was built before gevent patched `threading`."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("gevent")
    result = subprocess.run([sys.executable, "-c", GEVENT_SCRIPT], check=False, capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 100  # three requests in turn, 0.3 s: the ticker ran throughout
