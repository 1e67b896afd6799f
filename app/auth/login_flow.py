"""The steps of logging in shared by every way in (password, 2FA, invitation activation).

    begin_login(user, remember=..., next_url=...)     after a correct password
    complete_login(user, remember=..., next_url=..., method="totp")   after the last factor
    safe_next(url)                                     same-site relative path or None

`complete_login` rotates the server-side session id (no fixation; the session data, e.g. the
cart, is kept), logs the user in with Flask-Login (which sends `user_logged_in`), opens a
`user_sessions` row whose public id the session keeps, and audits `login_succeeded`.
"""
from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Response, current_app, redirect, request, session, url_for
from flask_login import login_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.extensions import db
from app.models import User
from app.services import user_sessions

SESSION_KEY = "user_session"          # UserSession.public_id of the logged-in session
ROLE_KEY = "user_session_role"        # role at login: a change rotates the session id
PENDING_2FA_KEY = "pending_2fa"
REMEMBER_COOKIE = "guichet_remember"  # our own: it names a revocable user_sessions row
_REMEMBER_SALT = "guichet-remember-me"
_AUTH_KEYS = ("_user_id", "_fresh", "_id", "_remember", SESSION_KEY, ROLE_KEY)


def utcnow() -> datetime:
    return datetime.now(UTC)


def safe_next(url: str | None) -> str | None:
    """A same-site relative path ('/events/x?y=1'), or None for anything that could leave the site."""
    if not url or not isinstance(url, str) or len(url) > 2000:
        return None
    if any(ord(char) < 32 or ord(char) == 127 for char in url) or "\\" in url:
        return None
    if not url.startswith("/") or url.startswith("//"):
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None
    return url


def default_landing() -> str:
    return url_for("main.home")


def begin_login(user: User, *, remember: bool, next_url: str | None) -> Response:
    """After a correct password for an active account: ask for the second factor, or log in."""
    next_url = safe_next(next_url)
    if user.has_2fa:
        session[PENDING_2FA_KEY] = {"user_id": user.id, "remember": bool(remember), "next": next_url,
                                    "started_at": utcnow().isoformat()}
        return redirect(url_for("auth.two_factor"))
    return complete_login(user, remember=remember, next_url=next_url)


def complete_login(user: User, *, remember: bool, next_url: str | None, method: str = "password") -> Response:
    session.pop(PENDING_2FA_KEY, None)
    row = user_sessions.open_session(
        db.session, user, user_agent=request.user_agent.string, ip_address=request.remote_addr or "",
        now=utcnow(), method=method,
    )
    login_user(user, remember=False)  # "remember me" is our own revocable cookie, below
    session[SESSION_KEY] = row.public_id
    session[ROLE_KEY] = user.role
    session.permanent = bool(remember)
    rotate_session_id()
    response = redirect(safe_next(next_url) or default_landing())
    if remember:
        set_remember_cookie(response, row.public_id)
    else:
        forget_remember_cookie(response)
    return response


def rotate_session_id() -> None:
    """New session id, same data (Flask-Session 0.8 `regenerate`); the old id stops working."""
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if regenerate is not None and session:
        regenerate(session)


def forget_login_state() -> None:
    """Drop the login keys from the session (revoked/disabled session), keeping e.g. the cart."""
    for key in _AUTH_KEYS:
        session.pop(key, None)


# --------------------------------------------------------------------------- remember me
def _remember_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_REMEMBER_SALT)


def remember_seconds() -> int:
    return int(current_app.config["REMEMBER_COOKIE_DURATION"].total_seconds())


def set_remember_cookie(response: Response, public_id: str) -> None:
    cfg = current_app.config
    response.set_cookie(REMEMBER_COOKIE, _remember_serializer().dumps(public_id), max_age=remember_seconds(),
                        httponly=True, secure=bool(cfg.get("REMEMBER_COOKIE_SECURE")),
                        samesite=cfg.get("REMEMBER_COOKIE_SAMESITE", "Lax"), path="/")


def forget_remember_cookie(response: Response) -> None:
    if REMEMBER_COOKIE in request.cookies:
        response.delete_cookie(REMEMBER_COOKIE, path="/")


def read_remember_cookie() -> str | None:
    token = request.cookies.get(REMEMBER_COOKIE)
    if not token:
        return None
    try:
        public_id = _remember_serializer().loads(token, max_age=remember_seconds())
    except BadSignature:
        return None
    return public_id if isinstance(public_id, str) else None
