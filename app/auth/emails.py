"""The account emails, sent after the service has committed. Links start from PUBLIC_BASE_URL
(never from the request's Host header, which a client controls)."""
from __future__ import annotations

import smtplib

from flask import current_app, url_for

from app.mailer import send_mail
from app.models import User
from app.services.verification import make_verification_token


def public_url(endpoint: str, **values) -> str:
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    if base:
        return base + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def _deliver(to: str, subject: str, template: str, **context) -> bool:
    """True when handed to the mail server; a mail outage is logged, never a 500."""
    try:
        send_mail(to, subject, template, **context)
    except (smtplib.SMTPException, OSError):
        current_app.logger.exception("could not send the %s email", template)
        return False
    return True


def send_verification_email(user: User) -> bool:
    token = make_verification_token(current_app.config["SECRET_KEY"], user)
    hours = int(current_app.config["EMAIL_VERIFICATION_HOURS"])
    return _deliver(user.email, "Confirm your email address", "verify_email", user=user,
                    link=public_url("auth.verify_email", token=token), hours=hours)


def send_password_reset_email(user: User, token: str, code: str) -> bool:
    minutes = int(current_app.config["PASSWORD_RESET_MINUTES"])
    return _deliver(user.email, "Reset your password", "password_reset", user=user,
                    link=public_url("auth.reset_with_token", token=token), code=code, minutes=minutes)


def send_password_changed_email(user: User, *, by_reset: bool) -> bool:
    return _deliver(user.email, "Your password was changed", "password_changed", user=user, by_reset=by_reset,
                    reset_link=public_url("auth.reset_request"))


def send_email_changed_email(user: User, previous_email: str) -> bool:
    return _deliver(previous_email, "Your email address was changed", "email_changed", user=user,
                    previous_email=previous_email, reset_link=public_url("auth.reset_request"))
