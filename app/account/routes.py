"""HTTP views of "My account": overview and sessions, profile, password."""
from __future__ import annotations

from flask import abort, redirect, render_template, request, session, url_for
from flask_login import current_user

from app.access import SIGNED_IN, allow
from app.account import bp
from app.account.forms import PasswordForm, ProfileForm, SessionsForm
from app.auth.emails import (
    send_email_changed_email,
    send_password_changed_email,
    send_verification_email,
)
from app.auth.hashing import hasher
from app.auth.login_flow import SESSION_KEY, rotate_session_id, utcnow
from app.auth.routes import attach_errors
from app.extensions import db
from app.flashes import flash
from app.messages import message_for
from app.services import accounts, user_sessions
from app.services.accounts import InvalidFields
from app.services.errors import NotFound


def me():
    return current_user._get_current_object()


@bp.get("/")
@allow(SIGNED_IN)
def index():
    sessions = user_sessions.active_sessions(db.session, current_user.id)
    return render_template("account/index.html", sessions=sessions, current_public_id=session.get(SESSION_KEY),
                           form=SessionsForm())


@bp.route("/profile", methods=["GET", "POST"])
@allow(SIGNED_IN)
def profile():
    form = ProfileForm(obj=me() if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            previous_email = accounts.update_profile(
                db.session, me(), username=form.username.data, first_name=form.first_name.data,
                last_name=form.last_name.data, email=form.email.data, current_password=form.current_password.data,
                hasher=hasher, now=utcnow())
        except InvalidFields as error:
            attach_errors(form, error.errors)
        else:
            if previous_email:
                send_email_changed_email(me(), previous_email)
                send_verification_email(me())
                flash(message_for("profile_saved_confirm_email", email=current_user.email), "success")
            else:
                flash(message_for("profile_saved"), "success")
            return redirect(url_for("account.index"))
    return render_template("account/profile.html", form=form)


@bp.route("/password", methods=["GET", "POST"])
@allow(SIGNED_IN)
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            revoked = accounts.change_password(
                db.session, me(), current_password=form.current_password.data, new_password=form.password.data,
                hasher=hasher, keep_session=session.get(SESSION_KEY), now=utcnow(), ip_address=request.remote_addr)
        except InvalidFields as error:
            attach_errors(form, error.errors)
        else:
            rotate_session_id()
            send_password_changed_email(me(), by_reset=False)
            flash(message_for("password_changed_sessions_revoked" if revoked else "password_changed",
                              count=revoked), "success")
            return redirect(url_for("account.index"))
    return render_template("account/password.html", form=form)


@bp.post("/sessions/<int:session_id>/revoke")
@allow(SIGNED_IN)
def revoke_session(session_id: int):
    form = SessionsForm()
    if form.validate_on_submit():
        try:
            user_sessions.revoke_session(db.session, me(), session_id, now=utcnow(), ip_address=request.remote_addr)
        except NotFound:
            abort(404)  # someone else's session, or no such session: ids are not confirmed
        flash(message_for("session_revoked"), "success")
    return redirect(url_for("account.index", _anchor="sessions"))


@bp.post("/sessions/revoke-others")
@allow(SIGNED_IN)
def revoke_other_sessions():
    form = SessionsForm()
    if form.validate_on_submit():
        count = user_sessions.revoke_other_sessions(db.session, me(), keep_public_id=session.get(SESSION_KEY),
                                                    now=utcnow(), ip_address=request.remote_addr)
        flash(message_for("other_sessions_revoked" if count else "no_other_sessions", count=count), "success")
    return redirect(url_for("account.index", _anchor="sessions"))
