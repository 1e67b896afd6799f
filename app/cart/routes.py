"""HTTP views of the cart: see it, add/change/remove lines, review before placing the order."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, current_app, redirect, render_template, url_for
from flask_login import current_user

from app.access import ANYONE, CUSTOMER, allow
from app.cart import bp
from app.cart.forms import AddToCartForm, QuantityForm
from app.cart.storage import (
    cart_items,
    cart_with_offers,
    offer_and_cart_items,
    save_cart_items,
)
from app.extensions import db
from app.flashes import flash
from app.messages import message_for
from app.orders.forms import PlaceOrderForm
from app.services import cart as cart_service
from app.services.cart import MAX_QUANTITY
from app.services.errors import DomainError, NotFound


def _now() -> datetime:
    return datetime.now(UTC)


def _current_cart() -> cart_service.CartView:
    items, offers = cart_with_offers()
    view = cart_service.describe_cart(db.session, items, now=_now(), offers=offers)
    if len(view.items) != len(items):  # offers deleted meanwhile: forget them
        save_cart_items(view.items)
    return view


@bp.get("/")
@allow(ANYONE)
def view_cart():
    return render_template("cart/view.html", cart=_current_cart(), quantities=range(1, MAX_QUANTITY + 1))


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
    cart = _current_cart()
    if cart.is_empty:
        flash(message_for("cart_empty"), "info")
        return redirect(url_for("cart.view_cart"), 303)
    form = PlaceOrderForm(expected_total_cents=cart.total_cents)
    return render_template("cart/checkout.html", cart=cart, form=form, verified=current_user.is_verified,
                           hold_minutes=current_app.config["ORDER_HOLD_MINUTES"],
                           limit=current_app.config["MAX_TICKETS_PER_EVENT"])
