"""A session's CSRF token is signed once per process, not once per page.

Flask-WTF keeps a random token in the session and hands pages a signed copy of it (an HMAC with a
timestamp), signed the first time a request asks and kept in `g` for that request only. Every page
with a form, and the layout's log-out button, signed it again: 3.5 % of the rush requests'
samples (bench/README.md). With `WTF_CSRF_TIME_LIMIT = None` a signed token is valid as long as
the session holds its random token, whatever its timestamp, so the first one signed serves every
later page of the session just as well.

The signed token is kept per process (`KEEP` sessions, the oldest dropped first), keyed by the
session's random token, and only once Flask-WTF's own `validate_csrf` accepted it against that
session. Before the view it goes into `g`, where Flask-WTF looks before signing. A session that
is cleared gets a new random token, hence a new signed one. With a time limit set, nothing is
kept: each page's token must carry its own time.
"""
from __future__ import annotations

from flask import Flask, g, session
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

KEEP = 4096


class SignedTokens:
    """Random token → its signed copy, for the last `size` sessions seen."""

    def __init__(self, size: int = KEEP):
        self._size = size
        self._signed: dict[str, str] = {}

    def get(self, random_token: str) -> str | None:
        return self._signed.get(random_token)

    def keep(self, random_token: str, signed: str) -> None:
        if random_token in self._signed:
            return
        if len(self._signed) >= self._size:
            self._signed.pop(next(iter(self._signed)), None)  # the oldest kept
        self._signed[random_token] = signed

    def __len__(self) -> int:
        return len(self._signed)


def install(app: Flask) -> None:
    if app.config.get("WTF_CSRF_TIME_LIMIT") is not None:
        return
    field = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    kept = app.extensions["csrf_tokens"] = SignedTokens()

    @app.before_request
    def reuse_signed_csrf_token():
        random_token = session.get(field)
        if random_token is not None:
            signed = kept.get(random_token)
            if signed is not None:
                setattr(g, field, signed)

    @app.after_request
    def keep_signed_csrf_token(response):
        signed, random_token = g.get(field), session.get(field)
        if signed is not None and random_token is not None and kept.get(random_token) is None:
            try:
                validate_csrf(signed)  # signed from this very random token (a view may have cleared it)
            except ValidationError:
                return response
            kept.keep(random_token, signed)
        return response
