"""HTTP views of the auth blueprint: register, verify, log in/out, password reset."""
from __future__ import annotations

from flask import (
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user, logout_user

from app.access import ANYONE, SIGNED_IN, allow
from app.auth import bp
from app.auth.emails import (
    send_password_changed_email,
    send_password_reset_email,
    send_verification_email,
)
from app.auth.forms import (
    LoginForm,
    RegisterForm,
    ResendVerificationForm,
    ResetForm,
    ResetRequestForm,
)
from app.auth.hashing import hasher
from app.auth.login_flow import (
    SESSION_KEY,
    begin_login,
    default_landing,
    forget_remember_cookie,
    rotate_session_id,
    safe_next,
    utcnow,
)
from app.extensions import db, limiter
from app.flashes import flash
from app.messages import message_for
from app.services import accounts, password_resets, user_sessions, verification
from app.services.accounts import InvalidFields
from app.services.errors import DomainError


def attach_errors(form, errors: dict[str, list[str]]) -> None:
    """Service codes -> messages under their fields (one message per broken rule)."""
    for name, codes in errors.items():
        field = getattr(form, name)
        field.errors = [*field.errors, *(message_for(code) for code in codes)]


def failed_attempt(response) -> bool:
    """Only failed logins count towards the limits (a success redirects)."""
    return response.status_code != 302


def submitted_email_key() -> str:
    return "account:" + (request.form.get("email") or "").strip().lower()[:254]


def code_pepper() -> str:
    return current_app.config.get("CODE_PEPPER") or current_app.config["SECRET_KEY"]


# --------------------------------------------------------------------------- login / logout
@bp.route("/login", methods=["GET", "POST"])
@allow(ANYONE)
@limiter.limit("5/minute", key_func=get_remote_address, methods=["POST"], deduct_when=failed_attempt)
@limiter.limit("5/minute", key_func=submitted_email_key, methods=["POST"], deduct_when=failed_attempt)
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or default_landing())
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    errors = []
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(db.session, email=form.email.data, password=form.password.data,
                                         hasher=hasher, now=utcnow(), ip_address=request.remote_addr)
        except DomainError as error:
            errors.append(message_for(error.code))
        else:
            return begin_login(user, remember=bool(form.remember.data), next_url=form.next.data)
    return render_template("auth/login.html", form=form, errors=errors)


@bp.post("/logout")
@allow(ANYONE)
def logout():
    public_id = session.get(SESSION_KEY)
    if public_id:
        user_sessions.end_session(db.session, public_id, now=utcnow(), ip_address=request.remote_addr)
    logout_user()
    session.clear()
    flash(message_for("logged_out"), "info")
    rotate_session_id()
    response = redirect(url_for("main.home"))
    forget_remember_cookie(response)
    return response


# --------------------------------------------------------------------------- registration
@bp.route("/register", methods=["GET", "POST"])
@allow(ANYONE)
@limiter.limit("20/hour", methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("account.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = accounts.register_user(
                db.session, username=form.username.data, email=form.email.data, first_name=form.first_name.data,
                last_name=form.last_name.data, password=form.password.data, hasher=hasher, now=utcnow())
        except InvalidFields as error:
            attach_errors(form, error.errors)
        else:
            sent = send_verification_email(user)
            flash(message_for("registered_email_sent" if sent else "registered_email_not_sent",
                              first_name=user.first_name, email=user.email), "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/register.html", form=form)


@bp.get("/verify/<token>")
@allow(ANYONE)
def verify_email(token: str):
    hours = int(current_app.config["EMAIL_VERIFICATION_HOURS"])
    try:
        verification.confirm_email(db.session, token=token, secret_key=current_app.config["SECRET_KEY"],
                                   max_age_seconds=hours * 3600, now=utcnow(), ip_address=request.remote_addr)
    except DomainError as error:
        return render_template("auth/verify_failed.html", message=message_for(error.code)), 400
    flash(message_for("email_confirmed"), "success")
    return redirect(url_for("account.index") if current_user.is_authenticated else url_for("auth.login"))


def resend_key() -> str:
    return f"resend:{current_user.get_id()}" if current_user.is_authenticated else get_remote_address()


@bp.route("/verify/resend", methods=["GET", "POST"])
@allow(SIGNED_IN)
@limiter.limit("5/hour", key_func=resend_key, methods=["POST"])
def resend_verification():
    if current_user.is_verified:
        flash(message_for("email_already_confirmed"), "info")
        return redirect(url_for("account.index"))
    form = ResendVerificationForm()
    if form.validate_on_submit():
        if send_verification_email(current_user):
            flash(message_for("verification_resent", email=current_user.email), "success")
        else:
            flash(message_for("verification_not_sent"), "danger")
        return redirect(url_for("account.index"))
    return render_template("auth/resend.html", form=form)


# --------------------------------------------------------------------------- password reset
@bp.route("/reset", methods=["GET", "POST"])
@allow(ANYONE)
@limiter.limit("3/hour", key_func=submitted_email_key, methods=["POST"])
@limiter.limit("10/hour", key_func=get_remote_address, methods=["POST"])
def reset_request():
    form = ResetRequestForm()
    if form.validate_on_submit():
        issued = password_resets.request_reset(
            db.session, email=form.email.data, now=utcnow(), pepper=code_pepper(),
            minutes=int(current_app.config["PASSWORD_RESET_MINUTES"]), ip_address=request.remote_addr)
        if issued is not None:
            send_password_reset_email(issued.user, issued.token, issued.code)
        # The same page whether or not an account uses this address.
        return render_template("auth/reset_sent.html", email=form.email.data.strip())
    return render_template("auth/reset_request.html", form=form)


def second_factor_checker():
    try:
        from app.services.two_factor import verify_second_factor
    except ImportError:
        return None
    return verify_second_factor


@bp.route("/reset/<token>", methods=["GET", "POST"])
@allow(ANYONE)
@limiter.limit("5/minute", key_func=get_remote_address, methods=["POST"])
def reset_with_token(token: str):
    try:
        user = password_resets.find_reset(db.session, token, now=utcnow(), pepper=code_pepper()).user
    except DomainError as error:
        return render_template("auth/reset_invalid.html", message=message_for(error.code)), 400
    form = ResetForm()
    if form.validate_on_submit():
        if user.has_2fa and not (form.second_factor.data or "").strip():
            form.second_factor.errors.append(message_for("second_factor_missing"))
        else:
            try:
                user = password_resets.complete_reset(
                    db.session, token=token, code=form.code.data, new_password=form.password.data, hasher=hasher,
                    now=utcnow(), pepper=code_pepper(), second_factor=form.second_factor.data,
                    verify_second_factor=second_factor_checker(), ip_address=request.remote_addr)
            except InvalidFields as error:
                attach_errors(form, error.errors)
            except DomainError as error:
                if not error.field:
                    return render_template("auth/reset_invalid.html", message=message_for(error.code)), 400
                getattr(form, error.field).errors.append(message_for(error.code, **error.params))
            else:
                return finish_reset(user)
    form.code.data = form.second_factor.data = ""  # codes are not echoed back
    return render_template("auth/reset_form.html", form=form, needs_second_factor=user.has_2fa)


def finish_reset(user):
    """Every session was revoked, this browser's too: log it out and say so."""
    send_password_changed_email(user, by_reset=True)
    if current_user.is_authenticated and current_user.id == user.id:
        logout_user()
        session.clear()
    flash(message_for("password_reset_done"), "success")
    rotate_session_id()
    response = redirect(url_for("auth.login"))
    forget_remember_cookie(response)
    return response
