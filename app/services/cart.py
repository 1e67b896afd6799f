"""The cart: offer id -> quantity, kept in the session for visitors and in `cart_items` for customers.

Pure helpers work on plain dicts ({offer_id: quantity}); the `*_user_cart` functions store a
signed-in customer's cart. `describe_cart` loads the offers once and flags lines that can no
longer be bought as they are (unpublished, sales closed, not enough seats).
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from app.db_late_begin import only_write
from app.models import CartItem, Event, Offer
from app.services.errors import Conflict, DomainError, NotFound

MIN_QUANTITY = 1
MAX_QUANTITY = 10

# Statements built once and run with parameters (every purchase runs each of them): building a
# statement and its cache key on every call cost about as much as running it.
_CART_TABLE = CartItem.__table__
_OFFER_WITH_EVENT = sa.select(Offer).options(joinedload(Offer.event)).where(Offer.id == sa.bindparam("offer_id"))
_OFFERS_WITH_EVENTS = (sa.select(Offer).options(joinedload(Offer.event))
                       .where(Offer.id.in_(sa.bindparam("offer_ids", expanding=True))))
# Adding to a signed-in customer's cart needs the offer and the stored cart: one statement, the
# offer's row once per cart line (a LEFT JOIN, so an empty cart still brings the offer).
_OFFER_WITH_USER_CART = (sa.select(Offer, _CART_TABLE.c.offer_id, _CART_TABLE.c.quantity)
                         .options(joinedload(Offer.event))
                         .outerjoin(_CART_TABLE, _CART_TABLE.c.user_id == sa.bindparam("user_id"))
                         .where(Offer.id == sa.bindparam("offer_id")).order_by(_CART_TABLE.c.id))
_USER_CART = (sa.select(_CART_TABLE.c.offer_id, _CART_TABLE.c.quantity)
              .where(_CART_TABLE.c.user_id == sa.bindparam("user_id")).order_by(_CART_TABLE.c.id))
# The review page and placing need the cart's offers too: read with it, not in a second statement.
_USER_CART_WITH_OFFERS = (sa.select(_CART_TABLE.c.quantity, Offer).join(Offer, Offer.id == _CART_TABLE.c.offer_id)
                          .options(joinedload(Offer.event)).where(_CART_TABLE.c.user_id == sa.bindparam("user_id"))
                          .order_by(_CART_TABLE.c.id))
_USER_CART_COUNT = (sa.select(sa.func.coalesce(sa.func.sum(_CART_TABLE.c.quantity), 0))
                    .where(_CART_TABLE.c.user_id == sa.bindparam("user_id")))
_ADD_LINE = sa.insert(_CART_TABLE)
_SET_QUANTITY = (sa.update(_CART_TABLE).where(_CART_TABLE.c.user_id == sa.bindparam("owner"),
                                              _CART_TABLE.c.offer_id == sa.bindparam("offer"))
                 .values(quantity=sa.bindparam("new_quantity")))
_DELETE_LINES = sa.delete(_CART_TABLE).where(_CART_TABLE.c.user_id == sa.bindparam("user_id"),
                                             _CART_TABLE.c.offer_id.in_(sa.bindparam("offer_ids", expanding=True)))


def parse_session_cart(raw: object) -> dict[int, int]:
    """The session's {"12": 2} as {12: 2}; anything malformed is dropped, quantities clamped."""
    items: dict[int, int] = {}
    if not isinstance(raw, Mapping):
        return items
    for key, value in raw.items():
        valid = isinstance(key, str) and key.isdigit() and type(value) is int and value >= MIN_QUANTITY
        if valid:
            items[int(key)] = min(value, MAX_QUANTITY)
    return items


def to_session_cart(items: Mapping[int, int]) -> dict[str, int]:
    return {str(offer_id): quantity for offer_id, quantity in items.items()}


def check_quantity(quantity: object) -> int:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise DomainError("quantity_invalid", field="quantity")
    return quantity


def add_to_items(items: Mapping[int, int], offer_id: int, quantity: int, *, max_lines: int) -> tuple[dict[int, int], bool]:
    """Add `quantity` to a line (capped at MAX_QUANTITY). Returns the new items and whether it was capped."""
    check_quantity(quantity)
    new_items = dict(items)
    if offer_id not in new_items and len(new_items) >= max_lines:
        raise Conflict("cart_full", max=max_lines)
    wanted = new_items.get(offer_id, 0) + quantity
    new_items[offer_id] = min(wanted, MAX_QUANTITY)
    return new_items, wanted > MAX_QUANTITY


def merge_items(base: Mapping[int, int], extra: Mapping[int, int], *, max_lines: int) -> dict[int, int]:
    """A visitor's cart merged into the account's: quantities add up (capped); extra lines past the cap are dropped."""
    merged = dict(base)
    for offer_id, quantity in extra.items():
        if offer_id in merged:
            merged[offer_id] = min(merged[offer_id] + quantity, MAX_QUANTITY)
        elif len(merged) < max_lines:
            merged[offer_id] = min(quantity, MAX_QUANTITY)
    return merged


def offer_for_cart(session: Session, offer_id: int, *, quantity: int, now: datetime) -> Offer:
    """The offer a visitor wants to add, refused when it is not on sale or cannot seat them."""
    return _addable(session.scalar(_OFFER_WITH_EVENT, {"offer_id": offer_id}), quantity, now)


def offer_for_user_cart(session: Session, offer_id: int, user_id: int, *, quantity: int,
                        now: datetime) -> tuple[Offer, dict[int, int]]:
    """`offer_for_cart` for a signed-in customer, with their stored cart (`load_user_cart`) read
    in the same statement."""
    rows = session.execute(_OFFER_WITH_USER_CART, {"offer_id": offer_id, "user_id": user_id}).all()
    offer = _addable(rows[0][0] if rows else None, quantity, now)
    return offer, {line_offer: line_quantity for _, line_offer, line_quantity in rows if line_offer is not None}


def _addable(offer: Offer | None, quantity: int, now: datetime) -> Offer:
    if offer is None or not offer.event.published:
        raise NotFound()
    if not offer.published:
        raise Conflict("offer_unavailable", name=offer.name)
    if offer.event.starts_at <= now:
        raise Conflict("event_started", event=offer.event.title)
    if offer.persons * check_quantity(quantity) > offer.event.seats_left:
        raise Conflict("sold_out", event=offer.event.title)
    return offer


# --------------------------------------------------------------------------- signed-in customers
def offers_with_events(session: Session, offer_ids) -> dict[int, Offer]:
    """The offers with these ids (and their events), in one statement; missing ids are left out."""
    return {offer.id: offer for offer in session.scalars(_OFFERS_WITH_EVENTS, {"offer_ids": list(offer_ids)})}


def load_user_cart(session: Session, user_id: int) -> dict[int, int]:
    return {row.offer_id: row.quantity for row in session.execute(_USER_CART, {"user_id": user_id})}


def load_user_cart_with_offers(session: Session, user_id: int) -> tuple[dict[int, int], dict[int, Offer]]:
    """The cart and its offers (with their events) in one statement. A deleted offer's lines went
    with it (ON DELETE CASCADE), so every line has its offer."""
    items: dict[int, int] = {}
    offers: dict[int, Offer] = {}
    for quantity, offer in session.execute(_USER_CART_WITH_OFFERS, {"user_id": user_id}):
        items[offer.id] = quantity
        offers[offer.id] = offer
    return items, offers


def user_cart_count(session: Session, user_id: int) -> int:
    return session.scalar(_USER_CART_COUNT, {"user_id": user_id}) or 0


def delete_lines(session: Session, user_id: int, offer_ids) -> None:
    """Take these offers' lines out of the user's cart (no commit)."""
    session.execute(_DELETE_LINES, {"user_id": user_id, "offer_ids": list(offer_ids)})


def save_user_cart(session: Session, user_id: int, items: Mapping[int, int], *, now: datetime,
                   stored: Mapping[int, int] | None = None) -> None:
    """Make the stored cart equal to `items` (one transaction; untouched lines keep their order).

    `stored` is the cart as the caller read it in this transaction (`load_user_cart`), which
    spares reading it again: only the lines that differ are written.
    """
    if stored is None:
        stored = load_user_cart(session, user_id)
    gone = [offer_id for offer_id in stored if offer_id not in items]
    added = [{"user_id": user_id, "offer_id": offer_id, "quantity": quantity, "added_at": now}
             for offer_id, quantity in items.items() if offer_id not in stored]
    changed = [{"owner": user_id, "offer": offer_id, "new_quantity": quantity}
               for offer_id, quantity in items.items() if offer_id in stored and stored[offer_id] != quantity]
    # Adding one offer or changing one quantity is a single statement: alone, it needs no BEGIN.
    single = bool(gone) + len(added) + len(changed) == 1
    with only_write(session) if single else contextlib.nullcontext():
        if gone:
            delete_lines(session, user_id, gone)
        if added:
            session.execute(_ADD_LINE, added)
        for values in changed:
            session.execute(_SET_QUANTITY, values)
    session.commit()


def merge_into_user_cart(session: Session, user_id: int, items: Mapping[int, int], *, max_lines: int,
                         now: datetime) -> dict[int, int]:
    """At login: the visitor's lines join the account's cart (offers deleted meanwhile are skipped)."""
    known = set(session.scalars(sa.select(Offer.id).where(Offer.id.in_(list(items))))) if items else set()
    stored = load_user_cart(session, user_id)
    merged = merge_items(stored, {k: v for k, v in items.items() if k in known}, max_lines=max_lines)
    save_user_cart(session, user_id, merged, now=now, stored=stored)
    return merged


# --------------------------------------------------------------------------- what the cart page shows
@dataclass
class CartLine:
    offer: Offer
    quantity: int
    problem: str | None = None  # offer_unavailable | event_started | sold_out | not_enough_seats
    seats_left: int = 0

    @property
    def event(self) -> Event:
        return self.offer.event

    @property
    def seats(self) -> int:
        return self.quantity * self.offer.persons

    @property
    def subtotal_cents(self) -> int:
        return self.quantity * self.offer.price_cents


@dataclass
class CartView:
    lines: list[CartLine] = field(default_factory=list)

    @property
    def total_cents(self) -> int:
        return sum(line.subtotal_cents for line in self.lines)

    @property
    def tickets(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def has_problems(self) -> bool:
        return any(line.problem for line in self.lines)

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def items(self) -> dict[int, int]:
        return {line.offer.id: line.quantity for line in self.lines}


def describe_cart(session: Session, items: Mapping[int, int], *, now: datetime,
                  offers: Mapping[int, Offer] | None = None) -> CartView:
    """One query for all the offers (none when `offers` were read with the cart); lines whose
    offer was deleted disappear."""
    if not items:
        return CartView()
    if offers is None:
        offers = offers_with_events(session, items)
    view = CartView([CartLine(offers[offer_id], quantity) for offer_id, quantity in items.items()
                     if offer_id in offers])
    seats_wanted: dict[int, int] = {}
    for line in view.lines:
        seats_wanted[line.event.id] = seats_wanted.get(line.event.id, 0) + line.seats
    for line in view.lines:
        line.seats_left = line.event.seats_left
        if not (line.offer.published and line.event.published):
            line.problem = "offer_unavailable"
        elif line.event.starts_at <= now:
            line.problem = "event_started"
        elif line.seats_left < line.offer.persons:
            line.problem = "sold_out"
        elif seats_wanted[line.event.id] > line.seats_left:
            line.problem = "not_enough_seats"
    return view
