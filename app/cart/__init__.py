"""The cart blueprint: a visitor's cart lives in the session, a customer's in `cart_items`.

At login (flask_login's `user_logged_in` signal) the visitor's cart is merged into the
account's, so nothing picked before registering or logging in is lost.
"""
from flask import Blueprint, g
from flask_login import user_logged_in

bp = Blueprint("cart", __name__)

from app.cart import routes  # noqa: F401
from app.cart.storage import cart_count, merge_visitor_cart

user_logged_in.connect(merge_visitor_cart)


@bp.app_context_processor
def inject_cart_count() -> dict:
    return {"cart_count": cart_count()}


@bp.teardown_app_request
def forget_cart_count(_exc=None) -> None:
    g.pop("cart_count", None)  # an app context can outlive its request (tests)
    g.pop("cart_stored", None)
