"""Flash messages travel in a signed cookie of their own (app/flashes.py), not in the session: a form
that redirects with a message no longer writes the visitor's session, nor does the page that shows it."""
from __future__ import annotations

import json

import pytest
from flask import Flask, render_template_string
from flask import flash as flask_flash
from itsdangerous import Signer
from itsdangerous.encoding import base64_encode

from app import flashes
from app.messages import message_for
from tests.shop import add_to_cart, customer, login, make_event, offer_of

SHOW = "{% for category, message in get_flashed_messages(with_categories=true) %}[{{ category }}:{{ message }}]{% endfor %}"


def signed(secret_key, payload) -> str:
    """A cookie value as app/flashes.py makes them, with any key and any (JSON) payload."""
    body = payload if isinstance(payload, bytes) else base64_encode(json.dumps(payload).encode())
    return Signer(secret_key, salt="guichet.flash").sign(body).decode()


def text(response) -> str:
    return response.get_data(as_text=True)


def flash_cookie(client):
    return client.get_cookie(flashes.COOKIE)


@pytest.fixture
def session_saves(app):
    """How many times a request's session was written (Flask-Session saves only a modified one)."""
    interface, saves = app.session_interface, []
    original = interface.save_session

    def counting(app_, session, response):
        saves.append(bool(session.modified))
        return original(app_, session, response)

    interface.save_session = counting
    yield saves
    interface.save_session = original


# --------------------------------------------------------------------------- through the app's own pages
def test_a_message_after_a_redirect_is_shown_once_and_its_cookie_cleared(client):
    response = client.post("/auth/logout")
    assert response.status_code in (302, 303)
    cookie = flash_cookie(client)
    assert cookie is not None and message_for("logged_out") not in cookie.value  # signed, not shown in clear
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(flashes.COOKIE + "="))
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert message_for("logged_out") in text(client.get(response.headers["Location"]))
    assert flash_cookie(client) is None
    assert message_for("logged_out") not in text(client.get("/"))  # shown once


def test_adding_to_the_cart_with_its_message_writes_no_session(client, auth, session_saves):
    """A signed-in buyer's add-to-cart: the message reaches the next page without a session write."""
    event = make_event()
    login(auth, client, customer())
    first = add_to_cart(client, offer_of(event, "solo"), 1)
    client.get(first.headers["Location"])  # its page puts a CSRF token in the session, once
    session_saves.clear()
    response = add_to_cart(client, offer_of(event, "duo"), 1)
    page = text(client.get(response.headers["Location"]))
    assert "Added 1 ×" in page
    assert session_saves and not any(session_saves), session_saves


def test_a_waiting_message_is_shown_instead_of_the_shared_cached_page(app, client):
    make_event()
    app.test_client(use_cookies=False).get("/events/")  # the page every first visit gets is cached
    client.post("/auth/logout")
    assert message_for("logged_out") in text(client.get("/events/"))
    assert message_for("logged_out") not in text(client.get("/events/"))


@pytest.mark.app_config(SESSION_COOKIE_SECURE=True)
def test_the_cookie_is_secure_when_the_session_cookie_is(app):
    response = app.test_client().post("/auth/logout", base_url="https://localhost")
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(flashes.COOKIE + "="))
    assert "Secure" in header


def test_a_forged_or_malformed_cookie_shows_nothing_and_breaks_nothing(app, client):
    forged = signed("not-our-secret", [["danger", "Your account is closed"]])
    client.set_cookie(flashes.COOKIE, forged)
    page = client.get("/")
    assert page.status_code == 200 and "Your account is closed" not in text(page)
    for shape in ({"a": 1}, [["only-one"]], [[1, 2]], "text", [["info", 5]], b"not base64 !", b"bm90IGpzb24"):
        client.set_cookie(flashes.COOKIE, signed(app.secret_key, shape))
        response = client.get("/")
        assert response.status_code == 200 and 'role="alert"' not in text(response), shape
    client.set_cookie(flashes.COOKIE, "%%%garbage")
    assert client.get("/").status_code == 200


# --------------------------------------------------------------------------- the module's rules, on a bare app
@pytest.fixture
def bare():
    app = Flask(__name__)
    app.secret_key = "test-secret"
    flashes.install(app)

    @app.post("/flash/<word>")
    def flash_and_redirect(word):
        flashes.flash(word, "info")
        return "", 303, {"Location": "/show"}

    @app.get("/show")
    def show():
        return render_template_string(SHOW)

    @app.post("/flash-and-show/<word>")
    def flash_and_show(word):
        flashes.flash(word, "danger")
        page = render_template_string(SHOW)
        flashes.flash("later", "info")  # after the page showed its messages: waits for the next
        return page

    @app.get("/json")
    def json_view():
        return {"ok": True}

    @app.post("/flask-flash")
    def flask_own_flash():
        flask_flash("from an extension", "warning")
        return "", 303, {"Location": "/show"}

    return app


def test_messages_wait_through_pages_that_do_not_show_them(bare):
    client = bare.test_client()
    client.post("/flash/one")
    client.post("/flash/two")
    assert client.get("/json").status_code == 200
    assert text(client.get("/show")) == "[info:one][info:two]"
    assert text(client.get("/show")) == ""


def test_a_page_shows_what_was_flashed_before_it_and_keeps_the_rest_for_the_next(bare):
    client = bare.test_client()
    client.post("/flash/before")
    assert text(client.post("/flash-and-show/now")) == "[info:before][danger:now]"
    assert text(client.get("/show")) == "[info:later]"
    assert flash_cookie(client) is None


def test_only_the_newest_messages_are_kept(bare):
    client = bare.test_client()
    for number in range(12):
        client.post(f"/flash/m{number}")
    shown = text(client.get("/show"))
    assert shown.startswith("[info:m4]") and shown.endswith("[info:m11]") and shown.count("[info:") == 8


def test_messages_flashed_by_flasks_own_flash_are_shown_too(bare):
    from flask_session import Session

    bare.config.update(SESSION_TYPE="cachelib")
    from cachelib import SimpleCache

    bare.config["SESSION_CACHELIB"] = SimpleCache()
    Session(bare)
    client = bare.test_client()
    client.post("/flask-flash")
    assert text(client.get("/show")) == "[warning:from an extension]"
    assert text(client.get("/show")) == ""


def test_a_message_cannot_be_planted_by_the_visitor(bare):
    client = bare.test_client()
    planted = signed("guess", [["info", "<b>free tickets</b>"]])
    client.set_cookie(flashes.COOKIE, planted)
    assert text(client.get("/show")) == ""


def test_the_app_flashes_through_the_cookie_not_the_session():
    """Flask's own `flash` would still be shown, but written to the session: the app uses ours."""
    import ast
    from pathlib import Path

    app_dir = Path(flashes.__file__).parent
    found = []
    for path in app_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "flask":
                found += [f"{path.relative_to(app_dir.parent)}:{node.lineno}" for alias in node.names
                          if alias.name in ("flash", "get_flashed_messages")]
    assert not found, "import flash from app.flashes:\n" + "\n".join(found)
