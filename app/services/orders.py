"""Placing, expiring and cancelling orders (pretix's `_perform_order`, shaped for Guichet).

Seats move only through conditional UPDATEs on `events.seats_taken`, taken for each event
in ascending id order, so concurrent buyers can neither oversell nor deadlock:

    UPDATE events SET seats_taken = seats_taken + :n WHERE id = :id AND seats_taken + :n <= capacity

The per-account limit (tickets per event) is counted while the buyer is serialised: on
PostgreSQL by a row lock on the user (SELECT … FOR UPDATE, taken before any event row); on
SQLite by the database write lock, which a no-op UPDATE of the user takes and which is held
until commit, so the count that follows sees every order committed before.

The event rows come last, just before the commit: every buyer of an event waits for its row,
so it is held for one statement and the commit, not for the order's inserts as well.

On PostgreSQL a cart of one event (every order of an on-sale) is written by one statement after
the buyer's lock: the count, the order and its lines, the cart's lines taken out, and last the
seat UPDATE, in data-modifying CTEs (`_PLACE_FOR_ONE_EVENT`). Four round trips fewer; the same
rows, order and locks as the statements one by one, which SQLite and carts of several events use.
"""
from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached

from app.models import (
    Event,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    Ticket,
    User,
)
from app.models.base import UTCDateTime
from app.models.user import PersonName
from app.services import audit, email_jobs
from app.services.cart import (
    OfferForSale,
    check_quantity,
    delete_lines,
    offers_with_events,
)
from app.services.catalogue import mark_seats_moved
from app.services.codes import ORDER_CODE_RE, new_order_code
from app.services.errors import Conflict, DomainError, Forbidden, NotFound
from app.services.stats import STATS_UNAFFECTED
from app.services.transactions import commit_keeping_loaded

PENDING, PAID = OrderStatus.PENDING.value, OrderStatus.PAID.value
HOLDING_STATUSES = (PENDING, PAID)  # orders whose seats are taken and whose tickets count
CODE_ATTEMPTS = 3
EXPIRY_BATCH = 200


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(24)


# --------------------------------------------------------------------------- reading
def _order_query():
    """An order with its lines (offer, event) and payments in one statement: the order page is
    read twice in every purchase, and each statement costs more than the few rows it adds."""
    return sa.select(Order).options(
        joinedload(Order.lines).joinedload(OrderLine.offer),
        joinedload(Order.lines).joinedload(OrderLine.event),
        joinedload(Order.payments),
    )


# Built once, run with parameters: building the statement and its cache key each time cost
# half of its CPU (bench/README.md, "Statements built once").
_ORDER_BY_CODE = _order_query().where(Order.code == sa.bindparam("code"))
_ORDER_BY_CODE_FOR_USER = _ORDER_BY_CODE.where(Order.user_id == sa.bindparam("user_id"))


def _order_code(code: str | None) -> str:
    """The code as a customer may type it (spaces around, lower case), tidied; NotFound when it
    cannot be an order code, without a query."""
    code = (code or "").strip().upper()
    if not ORDER_CODE_RE.fullmatch(code):
        raise NotFound()
    return code


def rows_of_users_order(session: Session, statement: sa.Executable, code: str, user_id: int) -> list[sa.Row]:
    """The rows `statement` reads (with its `code` and `user_id` parameters) for the order with this
    code if it belongs to the user; NotFound otherwise (no hint either way). For the reads that take
    an order as rows rather than as an `Order` (the order page's, the payment's)."""
    rows = session.execute(statement, {"code": _order_code(code), "user_id": user_id}).all()
    if not rows:
        raise NotFound()
    return rows


def get_order_for_user(session: Session, code: str, user_id: int) -> Order:
    """The order with this code if it belongs to the user; NotFound otherwise (no hint either way)."""
    order = session.execute(_ORDER_BY_CODE_FOR_USER, {"code": _order_code(code), "user_id": user_id}).unique().scalar()
    if order is None:
        raise NotFound()
    return order


def get_order(session: Session, code: str) -> Order:
    """Any order by code (for administrators)."""
    order = session.execute(_ORDER_BY_CODE, {"code": _order_code(code)}).unique().scalar()
    if order is None:
        raise NotFound()
    return order


_ORDERS_OF_USER = (_order_query().where(Order.user_id == sa.bindparam("user_id"))
                   .order_by(Order.created_at.desc(), Order.id.desc()))


def list_orders_for_user(session: Session, user_id: int) -> list[Order]:
    """The user's orders, newest first, each with its lines and payments (the "My orders" page)."""
    return list(session.scalars(_ORDERS_OF_USER, {"user_id": user_id}).unique())


_ORDER_BY_KEY_FOR_USER = _order_query().where(Order.user_id == sa.bindparam("user_id"),
                                              Order.idempotency_key == sa.bindparam("key"))
_KEY_TAKEN = sa.select(sa.exists().where(Order.idempotency_key == sa.bindparam("key")))


def _placed_with_key(session: Session, user_id: int, key: str) -> Order | None:
    """The buyer's order placed with this checkout key, if any. A declined payment renews an
    order's key (app/services/checkout.py): after that, the key finds nothing."""
    return session.execute(_ORDER_BY_KEY_FOR_USER, {"user_id": user_id, "key": key}).unique().scalar()


def _key_taken(session: Session, key: str) -> bool:
    return bool(session.scalar(_KEY_TAKEN, {"key": key}))


# --------------------------------------------------------------------------- seats
_EVENTS = Event.__table__
_TAKE_SEATS = (sa.update(_EVENTS)
               .where(_EVENTS.c.id == sa.bindparam("event_id"),
                      _EVENTS.c.seats_taken + sa.bindparam("seats") <= _EVENTS.c.capacity)
               .values(seats_taken=_EVENTS.c.seats_taken + sa.bindparam("seats")))


def take_seats(session: Session, event_id: int, seats: int) -> bool:
    """Atomically take seats if they are free; False when the event cannot hold them."""
    return session.execute(_TAKE_SEATS, {"event_id": event_id, "seats": seats}).rowcount == 1


def release_seats(session: Session, seats_by_event: Mapping[int, int]) -> None:
    """Give seats back, one event at a time in id order (the same order `place_order` locks them)."""
    table = Event.__table__
    for event_id in sorted(seats_by_event):
        seats = seats_by_event[event_id]
        if seats > 0:
            session.execute(
                sa.update(table).where(table.c.id == event_id, table.c.seats_taken >= seats)
                .values(seats_taken=table.c.seats_taken - seats)
            )
    mark_seats_moved(session)


def _seats_of_orders(session: Session, order_ids: Iterable[int]) -> dict[int, int]:
    rows = session.execute(
        sa.select(OrderLine.event_id, sa.func.sum(OrderLine.quantity * OrderLine.persons))
        .where(OrderLine.order_id.in_(list(order_ids))).group_by(OrderLine.event_id)
    ).all()
    return {event_id: int(seats) for event_id, seats in rows}


# --------------------------------------------------------------------------- placing
@dataclass(frozen=True, slots=True)
class Buyer(PersonName):
    """What issuing the tickets needs of the buyer: the key half of every ticket's double key,
    and the name printed on them (the signed-in user is loaded without its secrets)."""
    user_key: bytes
    first_name: str
    last_name: str


@dataclass(frozen=True)
class Placement:
    """The order a placement wrote and its buyer, read with the buyer's lock, so that paying it
    at once reads nothing back; or, with `buyer` None, the order an earlier submit of the same
    review placed (as loaded then: its payment reads it as it is now)."""
    order: Order
    buyer: Buyer | None


def place_order(session: Session, *, user: User, items: Mapping[int, int], expected_total_cents: int | None,
                now: datetime, hold_minutes: int, max_tickets_per_event: int,
                code_factory: Callable[[], str] = new_order_code,
                offers: Mapping[int, OfferForSale] | None = None, checkout_key: str | None = None) -> Order:
    """Turn the cart into a pending order holding its seats for `hold_minutes`, or raise
    (`place_for_payment` says how)."""
    return place_for_payment(session, user=user, items=items, expected_total_cents=expected_total_cents, now=now,
                             hold_minutes=hold_minutes, max_tickets_per_event=max_tickets_per_event,
                             code_factory=code_factory, offers=offers, checkout_key=checkout_key).order


def place_for_payment(session: Session, *, user: User, items: Mapping[int, int], expected_total_cents: int | None,
                      now: datetime, hold_minutes: int, max_tickets_per_event: int,
                      code_factory: Callable[[], str] = new_order_code,
                      offers: Mapping[int, OfferForSale] | None = None,
                      checkout_key: str | None = None) -> Placement:
    """`place_order`, with the buyer's key and name when it wrote the order (`Placement`).

    Turn the cart into a pending order holding its seats for `hold_minutes`, or raise.

    `expected_total_cents` is the total the buyer confirmed on the review page: any change
    (a price, a line) refuses the order rather than charging something else. `offers` are the
    items' offers (with their events) when the caller read them with the cart, just before;
    they are read here otherwise, and again for any second try.

    `checkout_key` (see `new_idempotency_key`) makes placing idempotent: it becomes the order's
    first payment key, which is unique, so the same review form submitted twice, at once or one
    after the other, hands back the order the first submit placed instead of placing another.
    """
    if not user.is_verified:
        raise Forbidden("email_not_verified")
    user_id = user.id  # read once: a rollback below expires the user, and reading it then is a query
    if not items:
        placed = checkout_key and _placed_with_key(session, user_id, checkout_key)
        if placed:
            return Placement(placed, None)  # the first submit emptied the cart
        raise DomainError("cart_empty")
    for quantity in items.values():
        check_quantity(quantity)
    retried_after_expiry = False
    own_holds_checked = False
    collisions = 0
    while True:
        try:
            return _place_once(session, user=user, items=items, expected_total_cents=expected_total_cents,
                               now=now, hold_minutes=hold_minutes, max_per_event=max_tickets_per_event,
                               code=code_factory(), check_own_holds=not own_holds_checked, offers=offers,
                               key=checkout_key or new_idempotency_key())
        except IntegrityError:  # a unique constraint: the checkout key's order, or an order code collision
            session.rollback()
            if checkout_key:
                placed = _placed_with_key(session, user_id, checkout_key)
                if placed:
                    return Placement(placed, None)  # a concurrent submit of the same review form placed it
                if _key_taken(session, checkout_key):
                    raise Conflict("checkout_expired")  # not this buyer's key: never theirs to reuse
            collisions += 1
            if collisions >= CODE_ATTEMPTS:
                raise
        except _OwnHoldsLapsed:  # free the buyer's own lapsed holds first (seats and ticket count)
            session.rollback()
            expire_stale_orders(session, now=now, user_id=user_id)
            own_holds_checked = True
        except Conflict as error:
            placed = checkout_key and _placed_with_key(session, user_id, checkout_key)
            if placed:
                return Placement(placed, None)  # a submit of the same review form placed it: its seats count
            if error.code != "sold_out" or retried_after_expiry:
                raise
            retried_after_expiry = True  # lapsed holds of other buyers may free the seats: once
            if not expire_stale_orders(session, now=now, event_ids=error.params["event_ids"]):
                raise
        offers = None  # a second try reads them again (the rollback expired them)


class _OwnHoldsLapsed(Exception):
    """The buyer has pending orders whose hold ran out: they are expired before placing."""


def _place_once(session: Session, *, offers: Mapping[int, OfferForSale] | None, **kwargs) -> Placement:
    try:
        if offers is None:
            offers = offers_with_events(session, kwargs["items"])
        return _place(session, offers=offers, **kwargs)
    except DomainError:
        session.rollback()  # gives back any seat taken so far
        raise


def _place(session: Session, *, user: User, items: Mapping[int, int], expected_total_cents: int | None,
           now: datetime, hold_minutes: int, max_per_event: int, code: str, check_own_holds: bool,
           offers: Mapping[int, OfferForSale], key: str) -> Placement:
    seats: dict[int, int] = {}
    tickets: dict[int, int] = {}
    for offer_id, quantity in items.items():
        offer = offers.get(offer_id)
        if offer is None:
            raise Conflict("offer_gone")
        if not offer.published or not offer.event.published:
            raise Conflict("offer_unavailable", name=offer.name)
        if offer.event.starts_at <= now:
            raise Conflict("event_started", event=offer.event.title)
        seats[offer.event_id] = seats.get(offer.event_id, 0) + quantity * offer.persons
        tickets[offer.event_id] = tickets.get(offer.event_id, 0) + quantity
    total = sum(offers[offer_id].price_cents * quantity for offer_id, quantity in items.items())
    if expected_total_cents != total:
        raise Conflict("price_changed", total_cents=total)
    events = {offer.event_id: offer.event for offer in offers.values()}

    lapsed, buyer = _serialise_buyer(session, user.id, now)
    if lapsed and check_own_holds:
        raise _OwnHoldsLapsed()
    values = {"code": code, "user_id": user.id, "status": PENDING, "total_cents": total, "currency": "EUR",
              "created_at": now, "expires_at": now + timedelta(minutes=hold_minutes),
              "idempotency_key": key}
    lines = [{"offer_id": offer_id, "event_id": offers[offer_id].event_id, "quantity": quantity,
              "persons": offers[offer_id].persons, "unit_price_cents": offers[offer_id].price_cents}
             for offer_id, quantity in items.items()]
    if len(seats) == 1 and session.connection().dialect.name == "postgresql":
        (event_id, event_seats), = seats.items()
        order = _write_order_for_one_event(session, values, lines, event_id=event_id, seats=event_seats,
                                           tickets=tickets[event_id], max_per_event=max_per_event,
                                           title=events[event_id].title)
    else:
        order = _write_order_one_by_one(session, values, lines, seats, tickets, events, max_per_event)
    mark_seats_moved(session)
    # The caller shows the order it just wrote (to the user who placed it): no need to read them
    # back. The rest (the events whose seats the UPDATE moved) expires as usual.
    commit_keeping_loaded(session, only=[order, *order.lines, user])
    return Placement(order, buyer)


def _write_order_one_by_one(session: Session, values: dict, lines: list[dict], seats: dict[int, int],
                            tickets: dict[int, int], events: dict[int, Event], max_per_event: int) -> Order:
    """Any database, any number of events: the limit counted, the order and its lines written, the
    cart emptied of them, then the seats taken one event at a time (module doc)."""
    held = _tickets_held(session, values["user_id"])
    for event_id in sorted(tickets):
        _check_limit(held.get(event_id, 0), tickets[event_id], max_per_event, events[event_id].title)
    order = _insert_order(session, values, lines)
    delete_lines(session, values["user_id"], [line["offer_id"] for line in lines])
    for event_id in sorted(seats):  # last (module doc): a sold-out event rolls all of the above back
        if not take_seats(session, event_id, seats[event_id]):
            raise Conflict("sold_out", event=events[event_id].title, event_ids=[event_id])
    return order


def _check_limit(held: int, wanted: int, max_per_event: int, title: str) -> None:
    if held + wanted > max_per_event:
        raise Conflict("ticket_limit_reached", limit=max_per_event, held=held, left=max(max_per_event - held, 0),
                       event=title)


# PostgreSQL, a cart of one event (an on-sale's every order): what `_write_order_one_by_one` does,
# in one statement after the buyer's lock, so the count sees every order committed before it.
# The buyer's tickets are counted over all their orders, then for the event (MATERIALIZED: see
# _TICKETS_HELD). The order is written only within the limit; the seat UPDATE comes last, its
# WHERE reading the other CTEs so that they have run before it locks the event's row (module doc);
# it takes the seats only if the order was written. A refusal (limit, sold out) leaves something
# to roll back only in the second case, as before. Its result's columns are named (`columns`), so
# SQLAlchemy maps them once and keeps the map with the compiled statement; for a bare `text` it
# reads the cursor's description and maps it again on every run.
_PLACE_FOR_ONE_EVENT = sa.text("""
WITH held_by_event AS MATERIALIZED (
    SELECT l.event_id, sum(l.quantity) AS tickets
    FROM order_lines l JOIN orders o ON o.id = l.order_id
    WHERE o.user_id = :user_id AND o.status IN (:pending, :paid)
    GROUP BY l.event_id
), held AS (
    SELECT coalesce((SELECT tickets FROM held_by_event WHERE event_id = :event_id), 0) AS tickets
), new_order AS (
    INSERT INTO orders (code, user_id, status, total_cents, currency, created_at, expires_at, idempotency_key)
    SELECT :code, :user_id, :status, :total_cents, :currency, :created_at, :expires_at, :idempotency_key
    FROM held WHERE held.tickets + :tickets <= :max_per_event
    RETURNING id
), new_lines AS (
    INSERT INTO order_lines (order_id, offer_id, event_id, quantity, persons, unit_price_cents)
    SELECT new_order.id, l.offer_id, :event_id, l.quantity, l.persons, l.unit_price_cents
    FROM new_order CROSS JOIN unnest(CAST(:offer_ids AS integer[]), CAST(:quantities AS integer[]),
                                     CAST(:persons AS integer[]), CAST(:unit_prices AS integer[]))
         AS l(offer_id, quantity, persons, unit_price_cents)
    RETURNING id, offer_id
), emptied AS (
    DELETE FROM cart_items
    WHERE user_id = :user_id AND offer_id = ANY(CAST(:offer_ids AS integer[])) AND EXISTS (SELECT FROM new_order)
    RETURNING id
), taken AS (
    UPDATE events SET seats_taken = seats_taken + :seats
    WHERE id = :event_id AND seats_taken + :seats <= capacity
      AND (SELECT count(*) FROM new_lines) > 0 AND (SELECT count(*) FROM emptied) >= 0
    RETURNING id
)
SELECT (SELECT tickets FROM held), (SELECT id FROM new_order), (SELECT count(*) FROM taken),
       (SELECT array_agg(id) FROM new_lines), (SELECT array_agg(offer_id) FROM new_lines)
""").bindparams(sa.bindparam("created_at", type_=UTCDateTime()), sa.bindparam("expires_at", type_=UTCDateTime())
               ).columns(*map(sa.column, ("held", "order_id", "taken", "line_ids", "line_offers")))


def _write_order_for_one_event(session: Session, values: dict, lines: list[dict], *, event_id: int, seats: int,
                               tickets: int, max_per_event: int, title: str) -> Order:
    """PostgreSQL: `_PLACE_FOR_ONE_EVENT`; the order written, as `_insert_order` hands it back."""
    held, order_id, taken, line_ids, line_offers = session.execute(_PLACE_FOR_ONE_EVENT, {
        **values, "pending": PENDING, "paid": PAID, "event_id": event_id, "seats": seats, "tickets": tickets,
        "max_per_event": max_per_event, "offer_ids": [line["offer_id"] for line in lines],
        "quantities": [line["quantity"] for line in lines], "persons": [line["persons"] for line in lines],
        "unit_prices": [line["unit_price_cents"] for line in lines]}).one()
    _check_limit(int(held), tickets, max_per_event, title)
    if not taken:
        raise Conflict("sold_out", event=title, event_ids=[event_id])
    line_id_of = dict(zip(line_offers, line_ids, strict=True))
    return _order_as_written(session, order_id, values, [line_id_of[line["offer_id"]] for line in lines], lines)


# A pending order and its lines sell nothing yet: their INSERTs leave the statistics as they are.
_INSERT_ORDER = sa.insert(Order.__table__).returning(Order.__table__.c.id).execution_options(**STATS_UNAFFECTED)
_INSERT_LINES = (sa.insert(OrderLine.__table__)
                 .returning(OrderLine.__table__.c.id, sort_by_parameter_order=True)
                 .execution_options(**STATS_UNAFFECTED))


def _insert_order(session: Session, values: dict, lines: list[dict]) -> Order:
    """Write the order and its lines with two INSERTs, and hand back ORM objects for them as if
    just read: no unit of work to flush, and nothing to read back for the page that shows them."""
    order_id = session.execute(_INSERT_ORDER, values).scalar_one()
    line_ids = session.execute(_INSERT_LINES, [line | {"order_id": order_id} for line in lines]).scalars().all()
    return _order_as_written(session, order_id, values, line_ids, lines)


def _order_as_written(session: Session, order_id: int, values: dict, line_ids: list[int], lines: list[dict]) -> Order:
    """ORM objects for an order and its lines just written, attached as if just read."""
    order = Order(id=order_id, paid_at=None, cancelled_at=None, **values)
    order.lines = [OrderLine(id=line_id, order_id=order_id, **line) for line_id, line in zip(line_ids, lines)]
    for written in (order, *order.lines):
        make_transient_to_detached(written)  # persistent with what was written, nothing pending
    session.add(order)
    return order


_USERS, _ORDERS = User.__table__, Order.__table__
_OWN_HOLD_LAPSED = sa.exists().where(_ORDERS.c.user_id == sa.bindparam("user_id"), _ORDERS.c.status == PENDING,
                                     _ORDERS.c.expires_at <= sa.bindparam("now"))
# The locked row also gives the buyer's key and name (`Buyer`), and whether the buyer has a lapsed
# hold to expire first: no statement of their own.
_BUYER = (sa.select(_USERS.c.user_key, _USERS.c.first_name, _USERS.c.last_name, _OWN_HOLD_LAPSED.label("lapsed"))
          .where(_USERS.c.id == sa.bindparam("user_id")))
_LOCK_BUYER = _BUYER.with_for_update(of=_USERS)
# SQLite has no row locks: a no-op UPDATE takes the database write lock, held to the commit.
_LOCK_BUYER_SQLITE = sa.update(_USERS).where(_USERS.c.id == sa.bindparam("user_id")).values(id=_USERS.c.id)
# Every event the buyer holds tickets for, not only the cart's: with a condition on the event,
# PostgreSQL may read the event's order lines first, and at an on-sale its statistics are stale
# (a new event "has no lines"), so each placement read all the sales so far (bench/README.md).
# A buyer's own orders are few, and this way they are all it can start from.
_TICKETS_HELD = (
    sa.select(OrderLine.event_id, sa.func.sum(OrderLine.quantity))
    .join(Order, Order.id == OrderLine.order_id)
    .where(Order.user_id == sa.bindparam("user_id"), Order.status.in_(HOLDING_STATUSES))
    .group_by(OrderLine.event_id)
)


def _serialise_buyer(session: Session, user_id: int, now: datetime) -> tuple[bool, Buyer]:
    """One placement at a time per account, so the ticket limit cannot be raced (see module doc).
    Whether the buyer has a pending order whose hold ran out at `now`, and the buyer."""
    params = {"user_id": user_id, "now": now}
    if session.connection().dialect.name == "sqlite":
        session.execute(_LOCK_BUYER_SQLITE, params)
        row = session.execute(_BUYER, params).one()
    else:
        row = session.execute(_LOCK_BUYER, params).one()
    return bool(row.lapsed), Buyer(user_key=row.user_key, first_name=row.first_name, last_name=row.last_name)


def _tickets_held(session: Session, user_id: int) -> dict[int, int]:
    """Tickets the buyer holds (pending or paid orders), per event."""
    rows = session.execute(_TICKETS_HELD, {"user_id": user_id})
    return {event_id: int(count) for event_id, count in rows}


# --------------------------------------------------------------------------- expiry
@functools.cache
def _expiry_statements(by_user: bool, by_order: bool, by_events: bool, batch_size: int):
    """The two statements of `expire_stale_orders` for one combination of filters, built once."""
    table = Order.__table__
    conditions = [table.c.status == PENDING, table.c.expires_at <= sa.bindparam("cutoff")]
    if by_user:
        conditions.append(table.c.user_id == sa.bindparam("owner_id"))
    if by_order:
        conditions.append(table.c.id == sa.bindparam("only_order_id"))
    if by_events:
        conditions.append(table.c.id.in_(sa.select(OrderLine.order_id).where(
            OrderLine.event_id.in_(sa.bindparam("of_event_ids", expanding=True)))))
    find = (sa.select(table.c.id).where(*conditions).order_by(table.c.id).limit(batch_size)
            .with_for_update(skip_locked=True))
    expire = (sa.update(table).where(table.c.id.in_(sa.bindparam("candidate_ids", expanding=True)), *conditions)
              .values(status=OrderStatus.EXPIRED.value).returning(table.c.id))
    return find, expire


def expire_stale_orders(session: Session, *, now: datetime, user_id: int | None = None, order_id: int | None = None,
                        event_ids: Iterable[int] | None = None, batch_size: int = EXPIRY_BATCH) -> int:
    """Expire pending orders whose hold has run out and give their seats back. Idempotent.

    Each order changes state with `UPDATE … WHERE status = 'pending'`, so of two workers
    expiring the same order only one releases its seats. Returns how many orders expired.
    """
    find, expire = _expiry_statements(user_id is not None, order_id is not None, event_ids is not None, batch_size)
    params = {"cutoff": now, "owner_id": user_id, "only_order_id": order_id,
              "of_event_ids": list(event_ids) if event_ids is not None else None}
    total = 0
    while True:
        candidates = session.scalars(find, params).all()
        if not candidates:
            return total
        expired = session.scalars(expire, params | {"candidate_ids": candidates}).all()
        if expired:
            release_seats(session, _seats_of_orders(session, expired))
        session.commit()
        total += len(expired)
        if len(candidates) < batch_size:
            return total


# --------------------------------------------------------------------------- cancelling
def cancel_order(session: Session, order: Order, *, actor_id: int | None, now: datetime, provider,
                 ip_address: str | None = None, before_start_only: bool = True) -> Order:
    """Cancel a paid order: refund it, void its tickets, give its seats back and queue the
    customer's email (which says who cancelled). Customers may only do it before the event
    starts (`before_start_only`); administrators may pass False.

    The refund is asked first, outside any row lock, with a key per order: a repeated or
    concurrent cancel is refunded once, and only one of them changes the order.
    """
    if not order.is_paid:
        raise Conflict("order_not_cancellable")
    if before_start_only and any(line.event.starts_at <= now for line in order.lines):
        raise Conflict("order_event_started")
    used = session.scalar(sa.select(sa.func.count()).select_from(Ticket)
                          .where(Ticket.order_id == order.id, Ticket.checked_in_at.is_not(None)))
    if used:
        raise Conflict("order_ticket_used")
    charge = next((p for p in reversed(order.payments) if p.kind == "charge" and p.succeeded), None)
    order_id, user_id, code, amount = order.id, order.user_id, order.code, order.total_cents
    refund = None
    if charge is not None and charge.transaction_id and amount > 0:
        brand, last4, transaction_id = charge.card_brand, charge.card_last4, charge.transaction_id
        session.commit()  # no transaction stays open while the provider answers
        refund = provider.refund(transaction_id=transaction_id, amount_cents=amount,
                                 idempotency_key=f"refund:{code}")
        if not refund.ok:
            raise Conflict("refund_failed")

    changed = session.execute(
        sa.update(Order.__table__).where(Order.__table__.c.id == order_id, Order.__table__.c.status == PAID)
        .values(status=OrderStatus.CANCELLED.value, cancelled_at=now)
    ).rowcount
    if changed != 1:
        session.rollback()
        raise Conflict("order_not_cancellable")
    session.execute(sa.update(Ticket).where(Ticket.order_id == order_id, Ticket.voided_at.is_(None))
                    .values(voided_at=now).execution_options(synchronize_session=False))
    release_seats(session, _seats_of_orders(session, [order_id]))
    if refund is not None:  # recorded by whichever cancel changed the order, replayed or not
        session.add(Payment(order_id=order_id, kind="refund", amount_cents=amount, succeeded=True,
                            card_brand=brand, card_last4=last4, transaction_id=refund.refund_id, created_at=now))
        audit.record(session, "order_refunded", actor_id=actor_id, subject_user_id=user_id, ip_address=ip_address,
                     order=code, amount_cents=amount)
    by_owner = actor_id == user_id
    audit.record(session, "order_cancelled", actor_id=actor_id, subject_user_id=user_id, ip_address=ip_address,
                 order=code, by_owner=by_owner)
    # In the same transaction, as the confirmation: only the cancel that changed the order gets here.
    kind = email_jobs.ORDER_CANCELLED if by_owner else email_jobs.ORDER_CANCELLED_BY_ORGANISER
    email_jobs.enqueue_new(session, kind, order_id, now)
    session.commit()
    session.refresh(order)
    return order
