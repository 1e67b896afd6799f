"""The cap on requests in flight (REQUESTS_IN_FLIGHT, app/in_flight.py) as gunicorn.conf.py puts
it around a worker's app, and the waits during which a request lends its slot (bcrypt's queue,
the SMTP server)."""
from __future__ import annotations

import os
import runpy
import threading
from pathlib import Path
from types import SimpleNamespace

import flask_mail
from werkzeug.test import Client

from app.extensions import bcrypt
from app.in_flight import InFlightLimit
from config import Config, ProductionConfig
from tests.factories import DEFAULT_PASSWORD, UserFactory

WAIT = 5
GUNICORN_CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def served_by_gunicorn(app):
    """The WSGI callable a gunicorn worker runs for `app`, after the config's post_worker_init
    (the object freeze left out: it would last for the rest of the test run)."""
    hooks = runpy.run_path(str(GUNICORN_CONF))
    hooks["freeze_loaded_objects"] = lambda: None
    worker = SimpleNamespace(wsgi=app)
    hooks["post_worker_init"](worker)
    return worker.wsgi


def test_the_cap_follows_the_pool_by_default(make_app):
    if "REQUESTS_IN_FLIGHT" not in os.environ:
        assert Config.REQUESTS_IN_FLIGHT == Config.DATABASE_POOL_SIZE > 0
        assert ProductionConfig.REQUESTS_IN_FLIGHT == ProductionConfig.DATABASE_POOL_SIZE
    app = make_app(REQUESTS_IN_FLIGHT=3)
    served = served_by_gunicorn(app)
    assert isinstance(served, InFlightLimit) and served.limit == 3 and served.wsgi_app is app
    assert not isinstance(app.wsgi_app, InFlightLimit)  # the app itself (and its test client) has none
    uncapped = make_app(REQUESTS_IN_FLIGHT=0)
    assert served_by_gunicorn(uncapped) is uncapped


def test_a_capped_worker_serves_pages_and_frees_each_slot(make_app):
    browser = Client(served_by_gunicorn(make_app(REQUESTS_IN_FLIGHT=1)))
    for _ in range(3):  # one slot: each request must have given it back for the next to run
        assert browser.get("/events/", buffered=True).status_code == 200


def run_while_blocked(capped, blocked_request, gate: threading.Event, entered: threading.Event) -> dict:
    """Start `blocked_request` (it stops at `gate`), then ask the one-slot worker for a page."""
    answers: dict = {}
    slow = threading.Thread(target=lambda: answers.update(slow=blocked_request()))
    slow.start()
    assert entered.wait(WAIT), "the request never reached its wait"
    page = threading.Thread(target=lambda: answers.update(page=Client(capped).get(
        "/events/", buffered=True).status_code))
    page.start()
    page.join(WAIT)
    answers["page_served_during_the_wait"] = not page.is_alive()
    gate.set()
    slow.join(WAIT)
    page.join(WAIT)
    return answers


def test_a_sign_in_queued_for_bcrypt_lends_its_slot_to_other_visitors(app, make_app, monkeypatch):
    capped = served_by_gunicorn(make_app(REQUESTS_IN_FLIGHT=1, PASSWORD_HASHING_NICE=10))  # bcrypt: own thread
    email = UserFactory().email  # read here: the threads have no app context of the tests
    gate, entered = threading.Event(), threading.Event()
    real_check = bcrypt.check_password_hash

    def slow_check(password_hash, password):
        entered.set()
        gate.wait(WAIT)
        return real_check(password_hash, password)

    monkeypatch.setattr(bcrypt, "check_password_hash", slow_check)
    answers = run_while_blocked(capped, lambda: Client(capped).post(
        "/auth/login", data={"email": email, "password": DEFAULT_PASSWORD}, buffered=True).status_code,
        gate, entered)
    assert answers["page_served_during_the_wait"] and answers["page"] == 200
    assert answers["slow"] == 302  # and the sign-in then completed, on a slot taken back


def test_an_email_waiting_on_the_smtp_server_lends_its_slot(app, make_app, monkeypatch):
    capped = served_by_gunicorn(make_app(REQUESTS_IN_FLIGHT=1))
    email = UserFactory().email  # read here: the threads have no app context of the tests
    gate, entered = threading.Event(), threading.Event()

    def slow_send(connection, message, envelope_from=None):
        entered.set()
        gate.wait(WAIT)

    monkeypatch.setattr(flask_mail.Connection, "send", slow_send)
    answers = run_while_blocked(capped, lambda: Client(capped).post(
        "/auth/reset", data={"email": email}, buffered=True).status_code, gate, entered)
    assert answers["page_served_during_the_wait"] and answers["page"] == 200
    assert answers["slow"] == 200


def test_bcrypt_in_the_request_itself_keeps_the_slot(app, make_app, monkeypatch):
    """With PASSWORD_HASHING_NICE=0 bcrypt runs on the request's own thread, using this process's
    CPU: nothing is lent, and the page waits for the sign-in."""
    capped = served_by_gunicorn(make_app(REQUESTS_IN_FLIGHT=1, PASSWORD_HASHING_NICE=0))
    email = UserFactory().email  # read here: the threads have no app context of the tests
    gate, entered = threading.Event(), threading.Event()
    real_check = bcrypt.check_password_hash

    def slow_check(password_hash, password):
        entered.set()
        gate.wait(1)
        return real_check(password_hash, password)

    monkeypatch.setattr(bcrypt, "check_password_hash", slow_check)
    answers: dict = {}
    slow = threading.Thread(target=lambda: answers.update(slow=Client(capped).post(
        "/auth/login", data={"email": email, "password": DEFAULT_PASSWORD}, buffered=True).status_code))
    slow.start()
    assert entered.wait(WAIT)
    page = threading.Thread(target=lambda: answers.update(page=Client(capped).get(
        "/events/", buffered=True).status_code))
    page.start()
    page.join(0.3)
    assert page.is_alive()  # waiting for the one slot
    gate.set()
    slow.join(WAIT)
    page.join(WAIT)
    assert answers == {"slow": 302, "page": 200}
