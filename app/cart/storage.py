"""Where the current visitor's cart is kept: the session (anonymous) or `cart_items` (signed in).

A signed-in customer's navbar count is also kept in the shared cache (read with the user's
other entries, app/prefetch.py), so a page that does not show the cart needs no query for it.
Whatever changes the cart here writes the new count after its commit. A change made elsewhere
(an offer deleted by an administrator takes its cart lines with it), or two changes from two tabs
whose writes cross, show when the entry lapses (USER_CACHE_SECONDS), or at once on the cart page,
which counts the rows it reads. The count is only the navbar's: the cart itself is always read.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from flask import current_app, g, has_request_context, session
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from app import prefetch
from app.extensions import cache, db
from app.services import cart as cart_service

SESSION_KEY = "cart"


@prefetch.per_user_key
def cart_count_key(user_id: int) -> str:
    return f"cart:count:{user_id}"


def _signed_in_user_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None


def _remember_count(user_id: int, count: int) -> None:
    g.cart_count = count
    try:
        cache.set(cart_count_key(user_id), count, timeout=int(current_app.config["USER_CACHE_SECONDS"]))
    except Exception:  # the count is read from the database next time
        current_app.logger.warning("could not cache a cart count", exc_info=True)


def cart_items() -> dict[int, int]:
    user_id = _signed_in_user_id()
    if user_id is not None:
        return _note_stored(cart_service.load_user_cart(db.session, user_id))
    return cart_service.parse_session_cart(session.get(SESSION_KEY))


def offer_and_cart_items(offer_id: int, *, quantity: int, now: datetime) -> tuple[cart_service.OfferForSale, dict[int, int]]:
    """The offer the visitor adds (refused as `offer_for_cart` refuses it) and their cart: for a
    signed-in customer both in one statement."""
    user_id = _signed_in_user_id()
    if user_id is not None:
        offer, items = cart_service.offer_for_user_cart(db.session, offer_id, user_id, quantity=quantity, now=now)
        return offer, _note_stored(items)
    offer = cart_service.offer_for_cart(db.session, offer_id, quantity=quantity, now=now)
    return offer, cart_items()


def cart_with_offers() -> tuple[dict[int, int], Mapping[int, cart_service.OfferForSale] | None]:
    """The cart and, for a signed-in customer, its offers read in the same statement (None for a
    visitor: the caller reads them)."""
    user_id = _signed_in_user_id()
    if user_id is not None:
        items, offers = cart_service.load_user_cart_with_offers(db.session, user_id)
        return _note_stored(items), offers
    return cart_items(), None


def _note_stored(items: dict[int, int]) -> dict[int, int]:
    # The navbar's count from the same rows, instead of a read of its own.
    g.cart_count = sum(items.values())
    g.cart_stored = dict(items)  # what save_cart_items compares with, instead of reading it again
    return items


def save_cart_items(items: dict[int, int]) -> None:
    g.pop("cart_count", None)
    stored = g.pop("cart_stored", None)
    user_id = _signed_in_user_id()
    if user_id is not None:
        cart_service.save_user_cart(db.session, user_id, items, now=datetime.now(UTC), stored=stored)
        _remember_count(user_id, sum(items.values()))
    elif items:
        session[SESSION_KEY] = cart_service.to_session_cart(items)
    else:
        session.pop(SESSION_KEY, None)


def forget_ordered_items(ordered: Mapping[int, int], user_id: int) -> None:
    """After an order took these lines out of the buyer's cart (and committed): the count of what is
    left. The caller names the buyer: after a payment's commit, asking `current_user` would read the
    user again."""
    stored = g.pop("cart_stored", None)
    if stored is None:
        g.pop("cart_count", None)
        return
    _remember_count(user_id, sum(quantity for offer_id, quantity in stored.items() if offer_id not in ordered))


def current_cart() -> cart_service.CartView:
    """The visitor's cart as its pages show it (lines, offers, problems, total)."""
    items, offers = cart_with_offers()
    view = cart_service.describe_cart(db.session, items, now=datetime.now(UTC), offers=offers)
    if len(view.items) != len(items):  # offers deleted meanwhile: forget them
        save_cart_items(view.items)
    return view


def cart_count() -> int:
    """Tickets in the cart, for the navbar (from the shared cache; one small query when it is not there)."""
    if not has_request_context():
        return 0
    if "cart_count" not in g:
        try:
            user_id = _signed_in_user_id()
            if user_id is None:
                g.cart_count = sum(cart_service.parse_session_cart(session.get(SESSION_KEY)).values())
            else:
                count = prefetch.get(cart_count_key(user_id))
                if count is None:
                    _remember_count(user_id, cart_service.user_cart_count(db.session, user_id))
                else:
                    g.cart_count = count
        except SQLAlchemyError:  # e.g. while rendering an error page: the navbar is not worth a second failure
            db.session.rollback()
            return 0
    return g.cart_count


def merge_visitor_cart(_app, user, **_extra) -> None:
    """Signal receiver (flask_login.user_logged_in): move the session's cart into the account."""
    items = cart_service.parse_session_cart(session.pop(SESSION_KEY, None))
    g.pop("cart_count", None)
    if items:
        merged = cart_service.merge_into_user_cart(db.session, user.id, items,
                                                   max_lines=current_app.config["MAX_CART_LINES"],
                                                   now=datetime.now(UTC))
        _remember_count(user.id, sum(merged.values()))
