"""Sending over real SMTP (app/mailer.py): delivered through a local server, and bounded in
time when the server accepts the connection and then says nothing."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from app.mailer import send_mail


def test_an_email_goes_through_a_real_smtp_server(app, smtp_server):
    with app.test_request_context():
        send_mail("someone@example.test", "Hello", "password_changed", user={"first_name": "Ada"})
    assert len(smtp_server.messages) == 1


@pytest.fixture
def silent_server():
    """Accepts connections and never sends the SMTP greeting."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []

    def accept():
        try:
            while True:
                accepted.append(listener.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in accepted:
        conn.close()


def test_a_silent_mail_server_gives_up_after_mail_timeout(make_app, silent_server):
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=silent_server, MAIL_SUPPRESS_SEND=False, MAIL_TIMEOUT=1)
    outcome = {}

    def send():
        started = time.monotonic()
        try:
            with app.test_request_context():
                send_mail("someone@example.test", "Hello", "password_changed", user={"first_name": "Ada"})
        except Exception as error:  # noqa: BLE001 - the kind of error is what we look at
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=send, daemon=True)
    worker.start()
    worker.join(30)  # without a timeout smtplib would still be waiting for the greeting
    assert not worker.is_alive(), "send_mail is still waiting for a server that never answers"
    assert isinstance(outcome.get("error"), (TimeoutError, OSError))
