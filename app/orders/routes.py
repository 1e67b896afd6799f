"""HTTP views of the orders blueprint: place, list, show, pay, cancel."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from app.access import CUSTOMER, allow
from app.cart.storage import cart_with_offers, forget_ordered_items
from app.extensions import db
from app.flashes import flash
from app.messages import message_for
from app.orders import bp
from app.orders.blank_form import blank_payment_form
from app.orders.emails import deliver_order_cancellation
from app.orders.forms import CancelOrderForm, PaymentForm, PlaceOrderForm
from app.orders.paying import announce_payment, card_of, payment_rate_limit
from app.payments_provider import payment_provider
from app.services import checkout, orders
from app.services.errors import DomainError, NotFound
from app.services.order_page import order_shown_to_user
from app.services.payments import TEST_CARDS
from app.templating import format_cents


def _now() -> datetime:
    return datetime.now(UTC)


def _load_order(code: str, *, read=orders.get_order_for_user):
    """The customer's own order (404 for anyone else's), with a lapsed hold expired on the spot;
    `read` is how (the `Order` by default)."""
    try:
        order = read(db.session, code, current_user.id)
        now = _now()
        if order.hold_has_expired(now):
            orders.expire_stale_orders(db.session, now=now, order_id=order.id)
            order = read(db.session, code, current_user.id)
        return order
    except NotFound:
        abort(404)


def _render_order(order, payment_form=None, status=200, payment_error=None):
    """The order page; each form is built only when the page shows it (the payment form while
    the order is pending, the cancel form once it is paid). A payment form with nothing typed
    yet comes filled in from its kept rendering (app/orders/blank_form.py)."""
    now = _now()
    blank_form = None
    if payment_form is None and order.is_pending:
        blank_form = blank_payment_form(order.code, order.total_cents, current_user.full_name)
    can_cancel = order.is_paid and all(line.event.starts_at > now for line in order.lines)
    return render_template("orders/show.html", order=order, form=payment_form, blank_payment_form=blank_form,
                           cancel_form=CancelOrderForm() if can_cancel else None, can_cancel=can_cancel,
                           payment_error=payment_error, test_cards=TEST_CARDS), status


@bp.get("/")
@allow(CUSTOMER)
def list_orders():
    """The customer's orders, a lapsed hold expired on the spot (as `_load_order` does): checked on
    the rows read, so the list alone is one read, without taking row locks."""
    now = _now()
    mine = orders.list_orders_for_user(db.session, current_user.id)
    if any(order.hold_has_expired(now) for order in mine):
        orders.expire_stale_orders(db.session, now=now, user_id=current_user.id)
        mine = orders.list_orders_for_user(db.session, current_user.id)
    return render_template("orders/list.html", orders=mine)


@bp.post("/")
@allow(CUSTOMER)
def place_order():
    form = PlaceOrderForm()
    if not form.validate_on_submit():
        flash(message_for("price_changed"), "danger")
        return redirect(url_for("cart.checkout"), 303)
    items, offers = cart_with_offers()
    try:
        order = orders.place_order(
            db.session, user=current_user._get_current_object(), items=items, offers=offers,
            expected_total_cents=form.expected_total_cents.data, now=_now(),
            hold_minutes=current_app.config["ORDER_HOLD_MINUTES"],
            max_tickets_per_event=current_app.config["MAX_TICKETS_PER_EVENT"])
        forget_ordered_items(items, current_user.id)  # the order took the cart's lines
    except DomainError as error:
        flash(message_for(error.code, **error.params), "danger")
        return redirect(url_for("cart.view_cart" if error.code == "cart_empty" else "cart.checkout"), 303)
    flash(message_for("order_placed", order=order.code, minutes=current_app.config["ORDER_HOLD_MINUTES"]),
          "success")
    return redirect(url_for("orders.show_order", code=order.code), 303)


def _order_shown(code: str):
    """The order as its page shows it: plain rows (app/services/order_page.py)."""
    return _load_order(code, read=order_shown_to_user)


@bp.get("/<code>")
@allow(CUSTOMER)
def show_order(code: str):
    return _render_order(_order_shown(code))


@bp.post("/<code>/pay")
@allow(CUSTOMER)
@payment_rate_limit
def pay_order(code: str):
    # The payment reads the order as rows (app/services/checkout.py); a page that shows the form
    # again reads what the order page shows, after what this request recorded.
    order = _load_order(code, read=checkout.payable_order_of_user)
    form = PaymentForm()
    if not form.validate_on_submit():
        form.forget_card()
        return _render_order(_order_shown(code), form, 400, payment_error=message_for("payment_form_expired"))
    now = _now()
    card = card_of(form, now.date())
    if card is None:
        return _render_order(_order_shown(code), form, 422)
    try:
        outcome = checkout.pay_order(db.session, order, card, provider=payment_provider(), now=now,
                                     ip_address=request.remote_addr)
    except checkout.PaymentDeclined as error:
        return _render_order(_order_shown(code), form, 402, payment_error=message_for(error.code))
    except DomainError as error:
        flash(message_for(error.code, **error.params), "danger")
        return redirect(url_for("orders.show_order", code=code), 303)
    announce_payment(outcome)
    return redirect(url_for("orders.show_order", code=code), 303)


@bp.post("/<code>/cancel")
@allow(CUSTOMER)
def cancel_order(code: str):
    order = _load_order(code)
    if not CancelOrderForm().validate_on_submit():
        abort(400)
    try:
        orders.cancel_order(db.session, order, actor_id=current_user.id, now=_now(), provider=payment_provider(),
                            ip_address=request.remote_addr)
    except DomainError as error:
        flash(message_for(error.code, **error.params), "danger")
        return redirect(url_for("orders.show_order", code=code), 303)
    sent = not current_app.config["MAIL_QUEUE"] and deliver_order_cancellation(order)
    flash(message_for("order_cancelled_email_sent" if sent else "order_cancelled_email_queued", order=order.code,
                      amount=format_cents(order.total_cents)), "success")
    return redirect(url_for("orders.show_order", code=code), 303)
