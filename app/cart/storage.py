"""Where the current visitor's cart is kept: the session (anonymous) or `cart_items` (signed in)."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, g, has_request_context, session
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.services import cart as cart_service

SESSION_KEY = "cart"


def _signed_in_user_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None


def cart_items() -> dict[int, int]:
    user_id = _signed_in_user_id()
    if user_id is not None:
        items = cart_service.load_user_cart(db.session, user_id)
        # The navbar's count from the same rows, instead of a query of its own. Whatever changes
        # the cart afterwards forgets it (save_cart_items; the order views after placing).
        g.cart_count = sum(items.values())
        g.cart_stored = dict(items)  # what save_cart_items compares with, instead of reading it again
        return items
    return cart_service.parse_session_cart(session.get(SESSION_KEY))


def save_cart_items(items: dict[int, int]) -> None:
    g.pop("cart_count", None)
    stored = g.pop("cart_stored", None)
    user_id = _signed_in_user_id()
    if user_id is not None:
        cart_service.save_user_cart(db.session, user_id, items, now=datetime.now(UTC), stored=stored)
    elif items:
        session[SESSION_KEY] = cart_service.to_session_cart(items)
    else:
        session.pop(SESSION_KEY, None)


def cart_count() -> int:
    """Tickets in the cart, for the navbar (one small query per page for signed-in customers)."""
    if not has_request_context():
        return 0
    if "cart_count" not in g:
        try:
            user_id = _signed_in_user_id()
            if user_id is not None:
                g.cart_count = cart_service.user_cart_count(db.session, user_id)
            else:
                g.cart_count = sum(cart_service.parse_session_cart(session.get(SESSION_KEY)).values())
        except SQLAlchemyError:  # e.g. while rendering an error page: the navbar is not worth a second failure
            db.session.rollback()
            return 0
    return g.cart_count


def merge_visitor_cart(_app, user, **_extra) -> None:
    """Signal receiver (flask_login.user_logged_in): move the session's cart into the account."""
    items = cart_service.parse_session_cart(session.pop(SESSION_KEY, None))
    g.pop("cart_count", None)
    if items:
        cart_service.merge_into_user_cart(db.session, user.id, items,
                                          max_lines=current_app.config["MAX_CART_LINES"],
                                          now=datetime.now(UTC))
