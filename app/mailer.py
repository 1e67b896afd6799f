"""Send multipart (text + HTML) emails with Flask-Mail, or write them to the outbox folder.

Called by views after the service has committed, never inside a transaction.
"""
from __future__ import annotations

import secrets
import smtplib
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app, render_template
from flask_mail import Connection, Message

from app.in_flight import slot_given_back


def send_mail(to: str, subject: str, template: str, attachments=(), **context) -> Message:
    """Render templates/email/<template>.txt and .html and deliver the message.

    `attachments` is an iterable of (filename, content_type, bytes).
    """
    message = Message(subject=f"Guichet — {subject}", recipients=[to])
    message.body = render_template(f"email/{template}.txt", **context)
    message.html = render_template(f"email/{template}.html", **context)
    for filename, content_type, data in attachments:
        message.attach(filename, content_type, data)
    outbox = current_app.config.get("MAIL_OUTBOX_DIR")
    if not current_app.config.get("MAIL_SERVER") and outbox:
        write_to_outbox(message, Path(outbox))
    else:
        with slot_given_back(), TimedConnection(current_app.extensions["mail"]) as connection:
            connection.send(message)  # the SMTP server's answers, up to MAIL_TIMEOUT: no slot held
    current_app.logger.info("email %r sent to user address (template %s)", subject, template)
    return message


def write_to_outbox(message: Message, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = folder / f"{stamp}-{secrets.token_hex(4)}.eml"
    path.write_bytes(message.as_bytes())
    return path


class TimedConnection(Connection):
    """Flask-Mail's SMTP connection with a timeout (MAIL_TIMEOUT seconds). Flask-Mail opens
    smtplib without one, and a mail server that accepts the connection and then says nothing
    would hold the email worker (or, with MAIL_QUEUE off, a customer's payment) forever."""

    def configure_host(self) -> smtplib.SMTP:
        timeout = float(current_app.config["MAIL_TIMEOUT"])
        smtp_class = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = smtp_class(self.mail.server, self.mail.port, timeout=timeout)
        host.set_debuglevel(int(self.mail.debug))
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host
