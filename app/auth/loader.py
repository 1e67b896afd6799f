"""Flask-Login's loaders: a request is logged in only while its `user_sessions` row is valid.

The server-side session holds the row's public id; each request checks (through the short
cache of app/auth/cache.py) that the row exists, is not revoked, belongs to the user, and that
the user is active. Anything else makes the request anonymous and drops the login keys.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app, g, session

from app import prefetch
from app.auth import cache as auth_cache
from app.auth.login_flow import (
    ROLE_KEY,
    SESSION_KEY,
    forget_login_state,
    forget_remember_cookie,
    read_remember_cookie,
    rotate_session_id,
    utcnow,
)
from app.extensions import db, login_manager
from app.messages import message_for
from app.models import User, UserSession

# last_seen_at is written at most this often per session (it is a list on the account page).
TOUCH_EVERY = timedelta(minutes=5)


def register_user_loader(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = message_for("login_to_continue")
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # the user_sessions table does this job
    auth_cache.listen_for_writes()

    @app.teardown_request
    def forget_request_user(_exc=None):
        # `g` normally dies with the request; when an app context outlives it (tests that
        # push one), the next request must still load its own user.
        g.pop("_login_user", None)

    @login_manager.user_loader
    def load_user(user_id: str):
        public_id = session.get(SESSION_KEY)
        user = None
        if public_id and str(user_id).isdigit():
            prefetch.fetch(int(user_id), auth_cache.session_cache_key(public_id), auth_cache.user_cache_key(int(user_id)))
            user = session_user(public_id)
        if user is None or user.id != int(user_id):
            forget_login_state()
            return None
        if session.get(ROLE_KEY) != user.role:  # privilege change: new session id
            session[ROLE_KEY] = user.role
            rotate_session_id()
        return user

    @login_manager.request_loader
    def load_user_from_remember_cookie(_request):
        public_id = read_remember_cookie()
        if public_id is None:
            return None
        user = session_user(public_id)
        if user is None:
            g.forget_remember_cookie = True
            return None
        session["_user_id"] = user.get_id()
        session["_fresh"] = False
        session[SESSION_KEY] = public_id
        session[ROLE_KEY] = user.role
        session.permanent = True
        rotate_session_id()  # never write a login into a session id the browser was handed
        return user

    @app.after_request
    def after_login_checks(response):
        if g.pop("forget_remember_cookie", False):
            forget_remember_cookie(response)
        touch = g.pop("touch_session", None)
        if touch is not None:
            write_last_seen(*touch)
        return response


def session_user(public_id: str) -> User | None:
    """The active user of a valid (existing, unrevoked) session row, or None."""
    state = auth_cache.session_state(public_id)
    if state is None or state["revoked"]:
        return None
    user = auth_cache.cached_user(state["user_id"])
    if user is None or not user.is_active:
        return None
    now = utcnow()
    if now - datetime.fromisoformat(state["last_seen"]) >= TOUCH_EVERY:
        g.touch_session = (public_id, now)
    return user


def write_last_seen(public_id: str, now: datetime) -> None:
    """On its own connection, after the view: never commits the view's unfinished work."""
    try:
        with db.engine.begin() as connection:
            connection.execute(
                sa.update(UserSession.__table__).where(UserSession.__table__.c.public_id == public_id)
                .values(last_seen_at=now)
            )
        auth_cache.invalidate_session_cache(public_id)  # re-read, never re-write a stale state
    except sa.exc.SQLAlchemyError:
        current_app.logger.warning("could not record a session's last activity", exc_info=True)
