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
from sqlalchemy.orm import Session

from app.db_late_begin import only_write
from app.models import CartItem, Event, Offer
from app.models.event import EventFacts
from app.services.errors import Conflict, DomainError, NotFound

MIN_QUANTITY = 1
MAX_QUANTITY = 10

# Statements built once and run with parameters (every purchase runs each of them): building a
# statement and its cache key on every call cost about as much as running it. The offers come as
# rows (`OfferForSale`), not ORM objects: the cart only reads them, and building an Offer and its
# Event through the identity map cost about as much again as the statement (bench/README.md).
_CART_TABLE = CartItem.__table__
_OFFERS, _EVENTS = Offer.__table__, Event.__table__
_OFFER_COLUMNS = (_OFFERS.c.id, _OFFERS.c.event_id, _OFFERS.c.kind, _OFFERS.c.name, _OFFERS.c.persons,
                  _OFFERS.c.price_cents, _OFFERS.c.published, _EVENTS.c.title, _EVENTS.c.slug, _EVENTS.c.venue,
                  _EVENTS.c.starts_at, _EVENTS.c.capacity, _EVENTS.c.seats_taken,
                  _EVENTS.c.published.label("event_published"))
_OFFERS_AND_EVENTS = _OFFERS.join(_EVENTS, _EVENTS.c.id == _OFFERS.c.event_id)
_OFFER_WITH_EVENT = (sa.select(*_OFFER_COLUMNS).select_from(_OFFERS_AND_EVENTS)
                     .where(_OFFERS.c.id == sa.bindparam("offer_id")))
_OFFERS_WITH_EVENTS = (sa.select(*_OFFER_COLUMNS).select_from(_OFFERS_AND_EVENTS)
                       .where(_OFFERS.c.id.in_(sa.bindparam("offer_ids", expanding=True))))
# Adding to a signed-in customer's cart needs the offer and the stored cart: one statement, the
# offer's row once per cart line (a LEFT JOIN, so an empty cart still brings the offer).
_OFFER_WITH_USER_CART = (sa.select(*_OFFER_COLUMNS, _CART_TABLE.c.offer_id.label("cart_offer_id"),
                                   _CART_TABLE.c.quantity.label("cart_quantity"))
                         .select_from(_OFFERS_AND_EVENTS.outerjoin(
                             _CART_TABLE, _CART_TABLE.c.user_id == sa.bindparam("user_id")))
                         .where(_OFFERS.c.id == sa.bindparam("offer_id")).order_by(_CART_TABLE.c.id))
_USER_CART = (sa.select(_CART_TABLE.c.offer_id, _CART_TABLE.c.quantity)
              .where(_CART_TABLE.c.user_id == sa.bindparam("user_id")).order_by(_CART_TABLE.c.id))
# The review page and placing need the cart's offers too: read with it, not in a second statement.
_USER_CART_WITH_OFFERS = (sa.select(_CART_TABLE.c.quantity.label("cart_quantity"), *_OFFER_COLUMNS)
                          .select_from(_CART_TABLE.join(_OFFERS, _OFFERS.c.id == _CART_TABLE.c.offer_id)
                                       .join(_EVENTS, _EVENTS.c.id == _OFFERS.c.event_id))
                          .where(_CART_TABLE.c.user_id == sa.bindparam("user_id")).order_by(_CART_TABLE.c.id))
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


@dataclass(frozen=True)
class EventForSale(EventFacts):
    """What the cart and placing read of an offer's event (`Event`'s names)."""
    id: int
    title: str
    slug: str
    venue: str
    starts_at: datetime
    capacity: int
    seats_taken: int
    published: bool


@dataclass(frozen=True)
class OfferForSale:
    """What the cart and placing read of an offer (`Offer`'s names), with its event."""
    id: int
    event_id: int
    kind: str
    name: str
    persons: int
    price_cents: int
    published: bool
    event: EventForSale


def _offer_from(row) -> OfferForSale:
    return OfferForSale(
        id=row.id, event_id=row.event_id, kind=row.kind, name=row.name, persons=row.persons,
        price_cents=row.price_cents, published=row.published,
        event=EventForSale(id=row.event_id, title=row.title, slug=row.slug, venue=row.venue, starts_at=row.starts_at,
                           capacity=row.capacity, seats_taken=row.seats_taken, published=row.event_published))


def offer_for_cart(session: Session, offer_id: int, *, quantity: int, now: datetime) -> OfferForSale:
    """The offer a visitor wants to add, refused when it is not on sale or cannot seat them."""
    row = session.execute(_OFFER_WITH_EVENT, {"offer_id": offer_id}).first()
    return _addable(None if row is None else _offer_from(row), quantity, now)


def offer_for_user_cart(session: Session, offer_id: int, user_id: int, *, quantity: int,
                        now: datetime) -> tuple[OfferForSale, dict[int, int]]:
    """`offer_for_cart` for a signed-in customer, with their stored cart (`load_user_cart`) read
    in the same statement."""
    rows = session.execute(_OFFER_WITH_USER_CART, {"offer_id": offer_id, "user_id": user_id}).all()
    offer = _addable(_offer_from(rows[0]) if rows else None, quantity, now)
    return offer, {row.cart_offer_id: row.cart_quantity for row in rows if row.cart_offer_id is not None}


def _addable(offer: OfferForSale | None, quantity: int, now: datetime) -> OfferForSale:
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
def offers_with_events(session: Session, offer_ids) -> dict[int, OfferForSale]:
    """The offers with these ids (and their events), in one statement; missing ids are left out."""
    return {row.id: _offer_from(row) for row in session.execute(_OFFERS_WITH_EVENTS, {"offer_ids": list(offer_ids)})}


def load_user_cart(session: Session, user_id: int) -> dict[int, int]:
    return {row.offer_id: row.quantity for row in session.execute(_USER_CART, {"user_id": user_id})}


def load_user_cart_with_offers(session: Session, user_id: int) -> tuple[dict[int, int], dict[int, OfferForSale]]:
    """The cart and its offers (with their events) in one statement. A deleted offer's lines went
    with it (ON DELETE CASCADE), so every line has its offer."""
    items: dict[int, int] = {}
    offers: dict[int, OfferForSale] = {}
    for row in session.execute(_USER_CART_WITH_OFFERS, {"user_id": user_id}):
        items[row.id] = row.cart_quantity
        offers[row.id] = _offer_from(row)
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
    offer: OfferForSale
    quantity: int
    problem: str | None = None  # offer_unavailable | event_started | sold_out | not_enough_seats
    seats_left: int = 0

    @property
    def event(self) -> EventForSale:
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
                  offers: Mapping[int, OfferForSale] | None = None) -> CartView:
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
