"""The login second step (/auth/2fa): a TOTP code or a recovery code after the password.

`begin_login` (app/auth/login_flow.py) leaves `session["pending_2fa"]` behind; nobody is
logged in until this view accepts a code and calls `complete_login`. The pending state
opens no other page and dies after PENDING_MINUTES.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import redirect, render_template, request, session, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from app.access import ANYONE, allow
from app.auth import bp
from app.auth.login_flow import PENDING_2FA_KEY, complete_login
from app.extensions import db, limiter
from app.flashes import flash
from app.messages import message_for
from app.models import User
from app.services.errors import DomainError
from app.services.two_factor import (
    RECOVERY,
    complete_second_step,
    unused_recovery_codes,
)

PENDING_KEY = PENDING_2FA_KEY
PENDING_MINUTES = 5


class SecondFactorForm(FlaskForm):
    code = StringField("Authentication code", validators=[
        DataRequired("Enter the code from your authenticator app, or a recovery code."),
        Length(max=64, message="That code is too long."),
    ])
    submit = SubmitField("Verify")


def pending_account_key() -> str:
    """Rate-limit key: the account waiting for its second factor (else the client address)."""
    pending = session.get(PENDING_KEY) or {}
    user_id = pending.get("user_id") if isinstance(pending, dict) else None
    return f"2fa-user:{user_id}" if user_id else f"2fa-ip:{get_remote_address()}"


def failed_code(response) -> bool:
    """Only refused codes count towards the limits (a success or an expired step redirects),
    so people logging in behind one shared address are not held up."""
    return response.status_code != 302


def pending_login(now: datetime) -> tuple[User | None, dict | None, str | None]:
    """The user and the pending state, or (None, None, message code) when there is none valid."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or "user_id" not in pending:
        return None, None, None
    try:
        started = datetime.fromisoformat(pending["started_at"])
    except (KeyError, TypeError, ValueError):
        started = None
    if started is not None and started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    if started is None or not (now - timedelta(minutes=PENDING_MINUTES) <= started <= now + timedelta(seconds=5)):
        session.pop(PENDING_KEY, None)
        return None, None, "2fa_login_expired"
    user = db.session.get(User, pending["user_id"])
    if user is None or not user.is_active or not user.has_2fa:
        session.pop(PENDING_KEY, None)
        return None, None, None
    return user, pending, None


@bp.route("/2fa", methods=["GET", "POST"])
@allow(ANYONE)
@limiter.limit("5/minute", key_func=pending_account_key, methods=["POST"], deduct_when=failed_code)
@limiter.limit("5/minute", key_func=get_remote_address, methods=["POST"], deduct_when=failed_code)
def two_factor():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    now = datetime.now(UTC)
    user, pending, problem = pending_login(now)
    if user is None:
        flash(message_for(problem or "login_first"), "warning" if problem else "info")
        return redirect(url_for("auth.login"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        try:
            method = complete_second_step(db.session, user, form.code.data, now=now,
                                          ip_address=request.remote_addr)
        except DomainError as error:
            form.code.errors.append(message_for(error.code))
        else:
            session.pop(PENDING_KEY, None)
            if method == RECOVERY:
                left = len(unused_recovery_codes(db.session, user))
                flash(message_for("2fa_recovery_code_used", left=left), "warning")
            return complete_login(user, remember=bool(pending.get("remember")),
                                  next_url=pending.get("next"), method=method)
    form.code.data = ""  # never echo a code back
    return render_template("auth/two_factor.html", form=form, expires_at=_expires_at(pending))


def _expires_at(pending: dict) -> datetime | None:
    try:
        started = datetime.fromisoformat(pending["started_at"])
    except (KeyError, TypeError, ValueError):
        return None
    return (started if started.tzinfo else started.replace(tzinfo=UTC)) + timedelta(minutes=PENDING_MINUTES)
