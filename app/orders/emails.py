"""Emails about orders, sent after the commit. One function per email, so the tickets
area can add the PDF attachments in exactly one place (`attachments=` of send_mail)."""
from __future__ import annotations

from flask import current_app, url_for

from app.mailer import send_mail
from app.models import Order
from app.tickets.documents import order_ticket_attachments


def _order_url(order: Order) -> str:
    return url_for("orders.show_order", code=order.code, _external=True)


def send_order_confirmation(order: Order) -> bool:
    """The 'your order is paid' email. False (and logged) when it could not be sent."""
    try:
        send_mail(order.user.email, f"Your order {order.code} is confirmed", "order_confirmation",
                  attachments=order_ticket_attachments(order),  # tickets (issue 7): one PDF per ticket
                  order=order, user=order.user, order_url=_order_url(order))
        return True
    except Exception:
        current_app.logger.exception("could not send the confirmation email of order %s", order.code)
        return False


def send_order_cancellation(order: Order) -> bool:
    try:
        send_mail(order.user.email, f"Your order {order.code} is cancelled", "order_cancelled",
                  order=order, user=order.user, order_url=_order_url(order))
        return True
    except Exception:
        current_app.logger.exception("could not send the cancellation email of order %s", order.code)
        return False
