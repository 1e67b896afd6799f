"""Admin: rotate a user's key after a compromise (their QR codes leaked, a phone was stolen...).

GET shows who and which tickets will get new codes and asks for confirmation; POST rotates
(app/services/tickets.py `rotate_user_key`), then emails the owner the re-issued PDF tickets.
"""
from __future__ import annotations

import smtplib
from datetime import UTC, datetime

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from app.access import ADMIN, allow
from app.admin import bp
from app.extensions import db
from app.flashes import flash
from app.mailer import send_mail
from app.messages import message_for
from app.models import User
from app.services.tickets import rotate_user_key as rotate_key_service
from app.services.tickets import tickets_by_ids, tickets_to_reissue
from app.tickets.documents import ticket_attachments
from app.tickets.forms import RotateKeyForm


@bp.route("/users/<int:user_id>/rotate-key", methods=["GET", "POST"])
@allow(ADMIN)
def rotate_user_key(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    form = RotateKeyForm()
    now = datetime.now(UTC)
    if form.validate_on_submit():
        rotation = rotate_key_service(db.session, user, actor_id=current_user.id, now=now,
                                      ip_address=request.remote_addr)
        notify_tickets_reissued(user, rotation.reissued_ticket_ids, now)
        flash(message_for("user_key_rotated", name=user.full_name, count=len(rotation.reissued_ticket_ids)),
              "success")
        return redirect(back_url(user))
    return render_template("admin/rotate_key.html", user=user, form=form,
                           tickets=tickets_to_reissue(db.session, user.id, now=now), back_url=back_url(user))


def notify_tickets_reissued(user: User, ticket_ids: list[int], now: datetime) -> None:
    """Tell the owner (with the new PDFs attached, when there are any). After the commit."""
    tickets = tickets_by_ids(db.session, ticket_ids)
    my_tickets_url = url_for("tickets.my_tickets", _external=True)
    try:
        send_mail(user.email, "your tickets were re-issued", "tickets_reissued",
                  attachments=ticket_attachments(tickets), user=user, tickets=tickets, when=now,
                  my_tickets_url=my_tickets_url)
    except (OSError, smtplib.SMTPException):
        current_app.logger.exception("could not send the re-issued tickets email")


def back_url(user: User) -> str:
    for endpoint, values in (("admin.user_detail", {"user_id": user.id}), ("admin.users", {}),
                             ("admin.dashboard", {})):
        if endpoint in current_app.view_functions:
            return url_for(endpoint, **values)
    return url_for("admin.rotate_user_key", user_id=user.id)
