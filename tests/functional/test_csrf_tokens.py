"""A session's signed CSRF token is signed once per process and serves its later pages
(app/csrf_tokens.py); each session has its own, a cleared session a new one, and a time limit
turns the keeping off."""
from __future__ import annotations

import flask_wtf.csrf
import pytest
from flask import Response, g, session

from app.csrf_tokens import SignedTokens
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.functional.test_auth_login import csrf_token_from, post_login


@pytest.fixture
def signings(monkeypatch):
    """How many times Flask-WTF signed a session's token."""
    count = {"n": 0}

    class Counting(flask_wtf.csrf.URLSafeTimedSerializer):
        def dumps(self, *args, **kwargs):
            count["n"] += 1
            return super().dumps(*args, **kwargs)

    monkeypatch.setattr(flask_wtf.csrf, "URLSafeTimedSerializer", Counting)
    return count


@pytest.fixture
def csrf_app(app, make_app):  # `app`: the test database, and a context for the factories
    return make_app(WTF_CSRF_ENABLED=True)


def _token(client, path: str) -> str:
    return csrf_token_from(client.get(path).get_data(as_text=True))


def test_a_sessions_token_is_signed_once_and_serves_its_later_pages(csrf_app, signings):
    from app.extensions import db

    user = UserFactory()
    db.session.commit()
    client = csrf_app.test_client()
    first = _token(client, "/auth/login")
    assert signings["n"] == 1
    assert _token(client, "/auth/login") == first and signings["n"] == 1
    assert post_login(client, user.email, DEFAULT_PASSWORD, csrf_token=first).status_code == 302
    assert _token(client, "/account/") == first  # the log-out button, after the login's new session id
    assert signings["n"] == 1
    assert client.post("/auth/logout", data={"csrf_token": first}).status_code == 302  # and it is accepted


def test_each_session_gets_its_own_token_and_a_cleared_session_a_new_one(csrf_app):
    from app.extensions import db

    user = UserFactory()
    db.session.commit()
    one, other = csrf_app.test_client(), csrf_app.test_client()
    token, others = _token(one, "/auth/login"), _token(other, "/auth/login")
    assert token != others
    assert post_login(one, user.email, DEFAULT_PASSWORD, csrf_token=others).status_code == 400  # not its own
    assert post_login(one, user.email, DEFAULT_PASSWORD, csrf_token=token).status_code == 302
    assert one.post("/auth/logout", data={"csrf_token": token}).status_code == 302  # clears the session
    after = _token(one, "/auth/login")
    assert after != token
    assert post_login(one, user.email, DEFAULT_PASSWORD, csrf_token=token).status_code == 400
    assert post_login(one, user.email, DEFAULT_PASSWORD, csrf_token=after).status_code == 302


def test_a_time_limit_keeps_nothing(make_app, signings):
    limited = make_app(WTF_CSRF_ENABLED=True, WTF_CSRF_TIME_LIMIT=3600)
    client = limited.test_client()
    _token(client, "/auth/login")
    _token(client, "/auth/login")
    assert "csrf_tokens" not in limited.extensions and signings["n"] == 2


def test_a_token_that_does_not_validate_for_the_session_is_not_kept(csrf_app):
    kept = csrf_app.extensions["csrf_tokens"]
    with csrf_app.test_request_context("/"):
        session["csrf_token"] = "a" * 40
        g.csrf_token = "not.signed.for-it"
        csrf_app.process_response(Response())
    assert len(kept) == 0 and kept.get("a" * 40) is None


def test_the_oldest_sessions_token_goes_first():
    kept = SignedTokens(size=2)
    for random_token in "abc":
        kept.keep(random_token, f"signed-{random_token}")
    kept.keep("b", "other")  # a kept token is not replaced
    assert (kept.get("a"), kept.get("b"), kept.get("c"), len(kept)) == (None, "signed-b", "signed-c", 2)
