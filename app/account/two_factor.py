"""Two-factor authentication on "My account": enrol, see the status, new recovery codes, disable.

Two short-lived values live in the server-side session, never in the database in clear:
the secret being enrolled (until a valid code confirms it) and the recovery codes just
made (shown once, downloadable for a few minutes, then gone).
"""
from __future__ import annotations

import smtplib
from datetime import UTC, datetime, timedelta

from flask import (
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from app.access import SIGNED_IN, allow
from app.account import bp
from app.extensions import db, limiter
from app.flashes import flash
from app.mailer import send_mail
from app.messages import message_for
from app.services import two_factor as service
from app.services.errors import DomainError
from app.services.rendering import qr_png_data_uri
from app.services.totp import new_secret, provisioning_uri

ENROLMENT_KEY = "2fa_enrolment"
FRESH_CODES_KEY = "2fa_fresh_codes"
ENROLMENT_MINUTES = 15
FRESH_CODES_MINUTES = 10

CODE_REQUIRED = DataRequired("Enter the 6-digit code from your authenticator app.")


class ConfirmEnrolmentForm(FlaskForm):
    code = StringField("Code from your app", validators=[CODE_REQUIRED, Length(max=32, message="That code is too long.")])
    submit = SubmitField("Turn on two-factor authentication")


class PasswordAndCodeForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired("Enter your password.")])
    code = StringField("Code from your app (or a recovery code)",
                       validators=[DataRequired("Enter a code from your app, or a recovery code."),
                                   Length(max=64, message="That code is too long.")])


class DisableForm(PasswordAndCodeForm):
    submit = SubmitField("Turn off two-factor authentication")


class RegenerateForm(PasswordAndCodeForm):
    submit = SubmitField("Make new recovery codes")


def _now() -> datetime:
    return datetime.now(UTC)


def _user_key() -> str:
    return f"2fa-account:{current_user.get_id()}"


def _state(key: str, minutes: int) -> dict | None:
    """A session entry of the current user made less than `minutes` ago, else None (and forgotten)."""
    state = session.get(key)
    if not isinstance(state, dict):
        return None
    try:
        made = datetime.fromisoformat(state["created_at"])
    except (KeyError, TypeError, ValueError):
        made = None
    if made is None or state.get("user_id") != current_user.id or _now() - made > timedelta(minutes=minutes):
        session.pop(key, None)
        return None
    return state


def _keep_fresh_codes(codes: list[str]) -> None:
    session[FRESH_CODES_KEY] = {"user_id": current_user.id, "codes": codes,
                                "created_at": _now().isoformat(), "shown": False}


def _notify(subject: str, template: str) -> None:
    """Security notices go out after the commit; a mail failure must not undo or hide the change."""
    try:
        send_mail(current_user.email, subject, template, user=current_user, when=_now(),
                  ip_address=request.remote_addr, account_url=url_for("account.two_factor", _external=True))
    except (OSError, smtplib.SMTPException):
        current_app.logger.exception("could not send the %s notice", template)


@bp.get("/2fa")
@allow(SIGNED_IN)
def two_factor():
    remaining = len(service.unused_recovery_codes(db.session, current_user)) if current_user.has_2fa else 0
    return render_template("account/two_factor.html", remaining=remaining,
                           disable_form=DisableForm(prefix="disable"),
                           regenerate_form=RegenerateForm(prefix="regenerate"))


@bp.route("/2fa/setup", methods=["GET", "POST"])
@allow(SIGNED_IN)
@limiter.limit("10/minute", key_func=_user_key, methods=["POST"])
def two_factor_setup():
    if current_user.has_2fa:
        flash(message_for("2fa_already_enabled"), "info")
        return redirect(url_for("account.two_factor"))
    form = ConfirmEnrolmentForm()
    enrolment = _state(ENROLMENT_KEY, ENROLMENT_MINUTES)
    if enrolment is None:
        if request.method == "POST":
            flash(message_for("2fa_setup_expired"), "warning")
        enrolment = {"user_id": current_user.id, "secret": new_secret(), "created_at": _now().isoformat()}
        session[ENROLMENT_KEY] = enrolment
    elif form.validate_on_submit():
        try:
            codes = service.enable_two_factor(db.session, current_user, enrolment["secret"], form.code.data,
                                              now=_now(), ip_address=request.remote_addr)
        except DomainError as error:
            form.code.errors.append(message_for(error.code))
        else:
            session.pop(ENROLMENT_KEY, None)
            _keep_fresh_codes(codes)
            _notify("two-factor authentication is on", "two_factor_enabled")
            flash(message_for("2fa_enabled"), "success")
            return redirect(url_for("account.two_factor_recovery_codes"))
    form.code.data = ""
    uri = provisioning_uri(enrolment["secret"], current_user.email)
    return render_template("account/two_factor_setup.html", form=form, secret=enrolment["secret"], uri=uri,
                           qr_png=qr_png_data_uri(uri))


@bp.get("/2fa/recovery-codes")
@allow(SIGNED_IN)
def two_factor_recovery_codes():
    """Shows the codes just made, once: reloading the page does not show them again."""
    fresh = _state(FRESH_CODES_KEY, FRESH_CODES_MINUTES)
    codes = None
    if fresh is not None and not fresh.get("shown"):
        codes = fresh["codes"]
        session[FRESH_CODES_KEY] = {**fresh, "shown": True}
    return render_template("account/two_factor_recovery_codes.html", codes=codes,
                           can_download=fresh is not None, minutes=FRESH_CODES_MINUTES)


@bp.get("/2fa/recovery-codes.txt")
@allow(SIGNED_IN)
def two_factor_recovery_codes_download():
    fresh = _state(FRESH_CODES_KEY, FRESH_CODES_MINUTES)
    if fresh is None:
        flash(message_for("2fa_recovery_codes_unavailable"), "warning")
        return redirect(url_for("account.two_factor"))
    body = render_template("account/two_factor_recovery_codes.txt", codes=fresh["codes"], user=current_user,
                           made_at=datetime.fromisoformat(fresh["created_at"]))
    return Response(body, mimetype="text/plain", headers={
        "Content-Disposition": 'attachment; filename="guichet-recovery-codes.txt"', "Cache-Control": "no-store"})


@bp.post("/2fa/recovery-codes/done")
@allow(SIGNED_IN)
def two_factor_recovery_codes_done():
    session.pop(FRESH_CODES_KEY, None)
    return redirect(url_for("account.two_factor"))


@bp.post("/2fa/recovery-codes/new")
@allow(SIGNED_IN)
@limiter.limit("5/minute", key_func=_user_key)
def two_factor_regenerate():
    form = RegenerateForm(prefix="regenerate")
    if form.validate_on_submit():
        try:
            codes = service.regenerate_recovery_codes(db.session, current_user, form.password.data,
                                                      form.code.data, now=_now(), ip_address=request.remote_addr)
        except DomainError as error:
            form.form_errors.append(message_for(error.code))
        else:
            _keep_fresh_codes(codes)
            _notify("new recovery codes", "two_factor_codes_regenerated")
            flash(message_for("2fa_recovery_codes_renewed"), "success")
            return redirect(url_for("account.two_factor_recovery_codes"))
    return _management_page(regenerate_form=form)


@bp.post("/2fa/disable")
@allow(SIGNED_IN)
@limiter.limit("5/minute", key_func=_user_key)
def two_factor_disable():
    form = DisableForm(prefix="disable")
    if form.validate_on_submit():
        try:
            service.disable_two_factor(db.session, current_user, form.password.data, form.code.data,
                                       now=_now(), ip_address=request.remote_addr)
        except DomainError as error:
            form.form_errors.append(message_for(error.code))
        else:
            session.pop(FRESH_CODES_KEY, None)
            _notify("two-factor authentication is off", "two_factor_disabled")
            flash(message_for("2fa_disabled"), "success")
            return redirect(url_for("account.two_factor"))
    return _management_page(disable_form=form)


def _management_page(**forms):
    """Re-render the 2FA page with the submitted form's errors (the typed code is not kept)."""
    for form in forms.values():
        form.code.data = ""
    forms.setdefault("disable_form", DisableForm(prefix="disable", formdata=None))
    forms.setdefault("regenerate_form", RegenerateForm(prefix="regenerate", formdata=None))
    remaining = len(service.unused_recovery_codes(db.session, current_user)) if current_user.has_2fa else 0
    return render_template("account/two_factor.html", remaining=remaining, **forms), 200
