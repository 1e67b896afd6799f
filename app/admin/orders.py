"""Admin: orders — search by code or email, see one, cancel it with a refund (after a confirmation).

The cancellation itself is the shop's `cancel_order` (refund, void the tickets, seats back,
audit, the customer's email queued); an administrator may cancel even after the event started,
but never an order with a ticket already used at the gate.
"""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from app.access import ADMIN, allow
from app.admin import bp
from app.admin.catalogue_forms import ConfirmForm
from app.extensions import db
from app.flashes import flash
from app.messages import message_for
from app.models import OrderStatus, Ticket
from app.orders.emails import deliver_order_cancellation
from app.payments_provider import payment_provider
from app.services import orders as order_service
from app.services.errors import DomainError, NotFound
from app.services.order_search import search_orders_query
from app.templating import format_cents

PAGE_SIZE = 50
STATUSES = [status.value for status in OrderStatus]


def _order(code: str):
    try:
        return order_service.get_order(db.session, code)
    except NotFound:
        abort(404)


@bp.get("/orders/")
@allow(ADMIN)
def orders():
    query = request.args.get("q", "")[:100].strip()
    status = request.args.get("status") or None
    if status not in STATUSES:
        status = None
    page = request.args.get("page", 1, type=int) or 1
    pagination = db.paginate(search_orders_query(query, status=status), page=page, per_page=PAGE_SIZE,
                             error_out=False)
    if query and pagination.total == 1 and page == 1 and pagination.items[0].code == query.upper():
        return redirect(url_for("admin.order_detail", code=pagination.items[0].code))
    return render_template("admin/orders.html", pagination=pagination, query=query, status=status,
                           statuses=STATUSES, page=page, page_size=PAGE_SIZE)


@bp.get("/orders/<code>")
@allow(ADMIN)
def order_detail(code: str):
    order = _order(code)
    tickets = db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id)).all()
    return render_template("admin/order.html", order=order, tickets=tickets)


@bp.route("/orders/<code>/cancel", methods=["GET", "POST"])
@allow(ADMIN)
def order_cancel(code: str):
    order = _order(code)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            order_service.cancel_order(db.session, order, actor_id=current_user.id, now=datetime.now(UTC),
                                       provider=payment_provider(), ip_address=request.remote_addr,
                                       before_start_only=False)
        except DomainError as error:
            db.session.rollback()
            flash(message_for(error.code, **error.params), "danger")
        else:
            sent = not current_app.config["MAIL_QUEUE"] and deliver_order_cancellation(order)
            flash(message_for("admin_order_cancelled_email_sent" if sent else "admin_order_cancelled_email_queued",
                              order=order.code, amount=_money(order.total_cents)), "success")
        return redirect(url_for("admin.order_detail", code=order.code))
    return render_template("admin/order_cancel.html", order=order, form=form)


def _money(cents: int) -> str:
    return format_cents(cents)
