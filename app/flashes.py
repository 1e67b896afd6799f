"""Flash messages in a signed cookie of their own, not in the server-side session.

Flask keeps flashed messages in the session, so every form that redirects with a message wrote
the visitor's session twice: once to add the message, once on the next page to remove it. With
Redis behind the sessions that was 6 session writes in a purchase (add to cart, place the order,
pay: 7, 8 and 7 Redis commands in bench/roundtrips.py, now 5, 6 and 5), about 0.2 ms of the app's
CPU each. A message only has to live from one response to the next request, in the visitor's own
browser, so it travels in a cookie: signed with the app's secret (nobody can make the site show
words of theirs), HttpOnly and SameSite=Lax, Secure when the session cookie is, and gone once
shown. The messages are the site's own sentences from app/messages.py; what they name (an event,
the visitor's own email address) is what the page then shows them.

`flash` and `get_flashed_messages` keep Flask's behaviour: a message flashed before a page shows
its messages is shown by that page; one flashed after waits for the next; unshown messages wait.
Messages an extension flashes with Flask's own `flash` (into the session) are shown too.
"""
from __future__ import annotations

import json

from flask import Flask, Response, current_app, g, request, session
from itsdangerous import BadSignature, URLSafeSerializer

COOKIE = "guichet_flash"
_SALT = "guichet.flash"
_KEEP = 8  # the newest messages kept waiting: a cookie must stay well under browsers' 4 KB


def flash(message: str, category: str = "message") -> None:
    """Show `message` on the next page that shows messages (this one, if it has not yet)."""
    _state()["out"].append((category, str(message)))


def get_flashed_messages(with_categories: bool = False, category_filter=()) -> list:
    """The messages waiting for this page, once per request (as Flask's function)."""
    state = _state()
    shown = state["shown"]
    if shown is None:
        shown = state["shown"] = _incoming() + _from_flask() + state["out"]
        state["out"] = []
    if category_filter:
        shown = [pair for pair in shown if pair[0] in category_filter]
    return list(shown) if with_categories else [message for _, message in shown]


def messages_waiting() -> bool:
    """Whether a message waits to be shown on this request's page."""
    state = g.get("_flashes")
    if state is not None and (state["out"] or state["shown"]):
        return True
    return (COOKIE in request.cookies and bool(_incoming())) or "_flashes" in session


def _from_flask() -> list[tuple[str, str]]:
    """Messages flashed with Flask's own `flash` (an extension's), which keeps them in the session."""
    return [tuple(pair) for pair in session.pop("_flashes")] if "_flashes" in session else []


def install(app: Flask) -> None:
    app.jinja_env.globals["get_flashed_messages"] = get_flashed_messages
    app.after_request(_send_waiting_messages)
    # `g` normally dies with the request; when an app context outlives it (tests that push one),
    # the next request must start with its own messages.
    app.teardown_request(lambda _error=None: g.pop("_flashes", None))


def _state() -> dict:
    state = g.get("_flashes")
    if state is None:
        state = g._flashes = {"out": [], "shown": None, "incoming": None}
    return state


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt=_SALT, serializer=json)


def _incoming() -> list[tuple[str, str]]:
    """The messages the visitor's cookie carries; none if it is missing, forged or malformed."""
    state = _state()
    if state["incoming"] is None:
        state["incoming"] = _read_cookie(request.cookies.get(COOKIE))
    return state["incoming"]


def _read_cookie(value: str | None) -> list[tuple[str, str]]:
    if not value:
        return []
    try:
        pairs = _serializer().loads(value)
    except BadSignature:
        return []
    if not isinstance(pairs, list):
        return []
    return [(pair[0], pair[1]) for pair in pairs
            if isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)]


def _send_waiting_messages(response: Response) -> Response:
    """Set the cookie to the messages still waiting, or clear it once they have been shown."""
    state = g.get("_flashes")
    if state is None or (state["shown"] is None and not state["out"]):
        return response  # nothing flashed or shown here: whatever waited still waits, cookie unchanged
    waiting = state["out"] if state["shown"] is not None else _incoming() + state["out"]
    app, had_cookie = current_app._get_current_object(), COOKIE in request.cookies
    interface = app.session_interface  # the session cookie's path, domain and Secure flag
    where = {"path": interface.get_cookie_path(app), "domain": interface.get_cookie_domain(app),
             "secure": interface.get_cookie_secure(app), "httponly": True, "samesite": "Lax"}
    if waiting:
        response.set_cookie(COOKIE, _serializer().dumps([list(pair) for pair in waiting[-_KEEP:]]), **where)
    elif had_cookie:
        response.delete_cookie(COOKIE, **where)
    return response
