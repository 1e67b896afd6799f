"""Flask-Login's user loader."""
from __future__ import annotations

from flask import Flask, g

from app.extensions import db, login_manager
from app.models import User


def register_user_loader(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # the user_sessions table does this job

    @app.teardown_request
    def forget_request_user(_exc=None):
        # `g` normally dies with the request; when an app context outlives it (tests that
        # push one), the next request must still load its own user.
        g.pop("_login_user", None)

    @login_manager.user_loader
    def load_user(user_id: str):
        if not user_id.isdigit():
            return None
        user = db.session.get(User, int(user_id))
        return user if user is not None and user.is_active else None
