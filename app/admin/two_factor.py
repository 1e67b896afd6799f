"""Admin: remove a user's 2FA (lost phone and no recovery code left) after checking who they are.

GET shows the account and asks how the identity was checked; POST does it, audited with
that note, and emails the user.
"""
from __future__ import annotations

import smtplib
from datetime import UTC, datetime

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.access import ADMIN, allow
from app.admin import bp
from app.extensions import db
from app.flashes import flash
from app.mailer import send_mail
from app.messages import message_for
from app.models import User
from app.services.errors import DomainError, NotFound
from app.services.two_factor import admin_reset_two_factor


class ResetTwoFactorForm(FlaskForm):
    identity_check = TextAreaField(
        "How did you check this person's identity?",
        validators=[DataRequired("Say how you checked their identity."),
                    Length(min=10, max=500, message="Between 10 and 500 characters, please.")])
    submit = SubmitField("Reset two-factor authentication")


@bp.route("/users/<int:user_id>/reset-2fa", methods=["GET", "POST"])
@allow(ADMIN)
def reset_two_factor(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    form = ResetTwoFactorForm()
    if user.has_2fa and form.validate_on_submit():
        now = datetime.now(UTC)
        try:
            admin_reset_two_factor(db.session, current_user, user.id, identity_check=form.identity_check.data,
                                   now=now, ip_address=request.remote_addr)
        except NotFound:
            abort(404)
        except DomainError as error:
            (form.identity_check.errors if error.field else form.form_errors).append(message_for(error.code))
        else:
            _notify(user, now)
            flash(message_for("2fa_reset_done", email=user.email), "success")
            return redirect(_back_url(user))
    return render_template("admin/two_factor_reset.html", user=user, form=form, back_url=_back_url(user))


def _back_url(user: User) -> str:
    for endpoint, values in (("admin.user_detail", {"user_id": user.id}), ("admin.users", {}),
                             ("admin.dashboard", {})):
        if endpoint in current_app.view_functions:
            return url_for(endpoint, **values)
    return url_for("admin.reset_two_factor", user_id=user.id)


def _notify(user: User, now: datetime) -> None:
    try:
        send_mail(user.email, "two-factor authentication was reset", "two_factor_reset_by_admin",
                  user=user, when=now, account_url=url_for("account.two_factor", _external=True))
    except (OSError, smtplib.SMTPException):
        current_app.logger.exception("could not send the 2FA reset notice")
