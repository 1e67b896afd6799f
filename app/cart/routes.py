"""HTTP views of the cart: see it, add/change/remove lines, review it, then place the order and pay it."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from app.access import ANYONE, CUSTOMER, allow
from app.cart import bp
from app.cart.forms import AddToCartForm, QuantityForm
from app.cart.storage import (
    cart_items,
    cart_with_offers,
    current_cart,
    forget_ordered_items,
    offer_and_cart_items,
    save_cart_items,
)
from app.extensions import db
from app.flashes import flash
from app.messages import message_for
from app.orders.blank_form import blank_checkout_form
from app.orders.forms import CheckoutPaymentForm, PlaceOrderForm
from app.orders.paying import announce_payment, card_of, payment_rate_limit
from app.payments_provider import payment_provider
from app.services import cart as cart_service
from app.services import checkout as checkout_service
from app.services.cart import MAX_QUANTITY
from app.services.errors import DomainError, NotFound
from app.services.orders import new_idempotency_key
from app.services.payments import TEST_CARDS


def _now() -> datetime:
    return datetime.now(UTC)


@bp.get("/")
@allow(ANYONE)
def view_cart():
    return render_template("cart/view.html", cart=current_cart(), quantities=range(1, MAX_QUANTITY + 1))


@bp.post("/add")
@allow(ANYONE)
def add_item():
    form = AddToCartForm()
    if not form.validate_on_submit():
        flash(message_for("quantity_invalid"), "danger")
        return redirect(url_for("cart.view_cart"), 303)
    try:
        offer, items = offer_and_cart_items(form.offer_id.data, quantity=form.quantity.data, now=_now())
        items, capped = cart_service.add_to_items(items, offer.id, form.quantity.data,
                                                  max_lines=current_app.config["MAX_CART_LINES"])
    except NotFound:
        abort(404)
    except DomainError as error:
        flash(message_for(error.code, **error.params), "danger")
        return redirect(url_for("cart.view_cart"), 303)
    # Read before the commit expires them (the user too: reading it after would query it again).
    name, title, slug = offer.name, offer.event.title, offer.event.slug
    staff = current_user.is_authenticated and current_user.role != CUSTOMER
    save_cart_items(items)
    if capped:
        flash(message_for("cart_quantity_capped", max=MAX_QUANTITY, name=name, title=title), "warning")
    elif not form.buy_now.data:  # the checkout review lists the line: no message needed there
        flash(message_for("cart_added", quantity=form.quantity.data, name=name, title=title), "success")
    if not form.buy_now.data:
        return redirect(url_for("offers.show_event", slug=slug), 303)
    if staff:
        return redirect(url_for("cart.view_cart"), 303)  # staff and admins cannot check out: it says why
    return redirect(url_for("cart.checkout"), 303)  # a visitor logs in first, then lands there


@bp.post("/<int:offer_id>/quantity")
@allow(ANYONE)
def update_item(offer_id: int):
    form = QuantityForm()
    items = cart_items()
    if offer_id not in items:
        abort(404)
    if not form.validate_on_submit():
        flash(message_for("quantity_invalid"), "danger")
        return redirect(url_for("cart.view_cart"), 303)
    items[offer_id] = form.quantity.data
    save_cart_items(items)
    flash(message_for("cart_updated"), "success")
    return redirect(url_for("cart.view_cart"), 303)


@bp.post("/<int:offer_id>/remove")
@allow(ANYONE)
def remove_item(offer_id: int):
    items = cart_items()
    if items.pop(offer_id, None) is None:
        abort(404)
    save_cart_items(items)
    flash(message_for("cart_line_removed"), "success")
    return redirect(url_for("cart.view_cart"), 303)


@bp.get("/checkout")
@allow(CUSTOMER)
def checkout():
    """Review before placing the order: the total shown here is posted back and checked."""
    cart = current_cart()
    if cart.is_empty:
        flash(message_for("cart_empty"), "info")
        return redirect(url_for("cart.view_cart"), 303)
    return _render_review(cart)


def _render_review(cart: cart_service.CartView, payment_form: CheckoutPaymentForm | None = None, status: int = 200):
    """The review page. Its two forms post back the total shown: the card form (place the order
    and pay it, with a checkout key drawn for this page) and "pay later" (place it only). The card
    form comes filled in from its kept rendering unless it is shown again with what was typed."""
    verified = current_user.is_verified
    blank_form = None
    if payment_form is None and verified and not cart.has_problems:
        blank_form = blank_checkout_form(cart.total_cents, current_user.full_name, new_idempotency_key())
    return render_template("cart/checkout.html", cart=cart, form=PlaceOrderForm(expected_total_cents=cart.total_cents),
                           payment_form=payment_form, blank_payment_form=blank_form, verified=verified,
                           test_cards=TEST_CARDS, hold_minutes=current_app.config["ORDER_HOLD_MINUTES"],
                           limit=current_app.config["MAX_TICKETS_PER_EVENT"]), status


@bp.post("/checkout")
@allow(CUSTOMER)
@payment_rate_limit
def place_and_pay():
    """The review page's card form: place the order and pay it. A card refused before the charge
    (a typo, a past expiry) shows the review again, nothing placed; a refused charge leaves the
    order placed and pending, and its page takes the payment again."""
    form = CheckoutPaymentForm()
    if not form.validate_on_submit():
        form.forget_card()
        flash(message_for("checkout_expired"), "danger")
        return redirect(url_for("cart.checkout"), 303)
    now = _now()
    card = card_of(form, now.date())
    if card is None:
        cart = current_cart()
        if cart.is_empty:  # paid meanwhile, from another tab say
            flash(message_for("cart_empty"), "info")
            return redirect(url_for("cart.view_cart"), 303)
        return _render_review(cart, form, 422)
    items, offers = cart_with_offers()
    buyer = current_user._get_current_object()
    buyer_id = buyer.id  # read now: the payment's commit expires the user, and reading it then is a query
    try:
        outcome = checkout_service.place_and_pay(
            db.session, user=buyer, items=items, offers=offers,
            expected_total_cents=form.expected_total_cents.data, checkout_key=form.checkout_key.data, card=card,
            provider=payment_provider(), now=now, hold_minutes=current_app.config["ORDER_HOLD_MINUTES"],
            max_tickets_per_event=current_app.config["MAX_TICKETS_PER_EVENT"], ip_address=request.remote_addr)
    except DomainError as error:
        code = error.params.get("order")
        if code is None:  # nothing placed
            flash(message_for(error.code, **error.params), "danger")
            return redirect(url_for("cart.view_cart" if error.code == "cart_empty" else "cart.checkout"), 303)
        forget_ordered_items(items, buyer_id)
        flash(message_for("checkout_not_paid", order=code, reason=message_for(error.code, **error.params)),
              "danger")
        return redirect(url_for("orders.show_order", code=code), 303)
    forget_ordered_items(items, buyer_id)
    announce_payment(outcome)
    return redirect(url_for("orders.show_order", code=outcome.order.code), 303)
