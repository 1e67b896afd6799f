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

import functools
import json

from flask import Flask, Response, current_app, g, request, session
from itsdangerous import BadData, Signer
from itsdangerous.encoding import base64_decode, base64_encode

COOKIE = "guichet_flash"
_SALT = "guichet.flash"
_KEEP = 8  # the newest messages kept waiting: a cookie must stay well under browsers' 4 KB


class _Messages:
    """This request's messages: flashed here and not shown yet (`out`), shown by its page (`shown`,
    None until a page asks), and what the cookie brought (`incoming`, None until read)."""

    __slots__ = ("incoming", "out", "shown")

    def __init__(self):
        self.out: list[tuple[str, str]] = []
        self.shown: list[tuple[str, str]] | None = None
        self.incoming: list[tuple[str, str]] | None = None


def flash(message: str, category: str = "message") -> None:
    """Show `message` on the next page that shows messages (this one, if it has not yet)."""
    _messages().out.append((category, str(message)))


def get_flashed_messages(with_categories: bool = False, category_filter=()) -> list:
    """The messages waiting for this page, once per request (as Flask's function)."""
    messages = _messages()
    shown = messages.shown
    if shown is None:
        shown = messages.shown = _incoming(messages) + _from_flask() + messages.out
        messages.out = []
    if category_filter:
        shown = [pair for pair in shown if pair[0] in category_filter]
    return list(shown) if with_categories else [message for _, message in shown]


def messages_waiting() -> bool:
    """Whether a message waits to be shown on this request's page."""
    messages = _messages()
    return bool(messages.out or messages.shown or _incoming(messages)) or "_flashes" in session


def install(app: Flask) -> None:
    app.jinja_env.globals["get_flashed_messages"] = get_flashed_messages
    app.after_request(_send_waiting_messages)
    # `g` normally dies with the request; when an app context outlives it (tests that push one),
    # the next request must start with its own messages.
    app.teardown_request(lambda _error=None: g.pop("_flashes", None))


def _messages() -> _Messages:
    messages = g.get("_flashes")
    if messages is None:
        messages = g._flashes = _Messages()
    return messages


def _from_flask() -> list[tuple[str, str]]:
    """Messages flashed with Flask's own `flash` (an extension's), which keeps them in the session."""
    return [tuple(pair) for pair in session.pop("_flashes")] if "_flashes" in session else []


@functools.lru_cache(maxsize=4)
def _signer(secret_key: str | bytes) -> Signer:
    return Signer(secret_key, salt=_SALT)


def _incoming(messages: _Messages) -> list[tuple[str, str]]:
    """The messages the visitor's cookie carries; none if it is missing, forged or malformed."""
    if messages.incoming is None:
        value = request.cookies.get(COOKIE)
        messages.incoming = _decode(value) if value else []
    return messages.incoming


def _encode(pairs: list[tuple[str, str]]) -> str:
    """JSON in URL-safe base64, signed (no compression: a few short sentences)."""
    payload = base64_encode(json.dumps(pairs, separators=(",", ":"), ensure_ascii=False).encode())
    return _signer(current_app.secret_key).sign(payload).decode("ascii")


def _decode(value: str) -> list[tuple[str, str]]:
    try:
        pairs = json.loads(base64_decode(_signer(current_app.secret_key).unsign(value)))
    except (BadData, ValueError):  # forged, or not the base64 JSON we write
        return []
    if not isinstance(pairs, list):
        return []
    return [(pair[0], pair[1]) for pair in pairs
            if isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)]


def _send_waiting_messages(response: Response) -> Response:
    """Set the cookie to the messages still waiting, or clear it once they have been shown."""
    messages = g.get("_flashes")
    if messages is None or (messages.shown is None and not messages.out):
        return response  # nothing flashed or shown here: whatever waited still waits, cookie unchanged
    waiting = messages.out if messages.shown is not None else _incoming(messages) + messages.out
    had_cookie = COOKIE in request.cookies
    if not waiting and not had_cookie:
        return response  # a page showed nothing and nothing waits: most pages
    app = current_app._get_current_object()
    interface = app.session_interface  # the session cookie's path, domain and Secure flag
    where = {"path": interface.get_cookie_path(app), "domain": interface.get_cookie_domain(app),
             "secure": interface.get_cookie_secure(app), "httponly": True, "samesite": "Lax"}
    if waiting:
        response.set_cookie(COOKIE, _encode(waiting[-_KEEP:]), **where)
    else:
        response.delete_cookie(COOKIE, **where)
    return response
