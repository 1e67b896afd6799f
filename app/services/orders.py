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
"""
from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached

from app.models import (
    Event,
    Offer,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    Ticket,
    User,
)
from app.services import audit, email_jobs
from app.services.cart import check_quantity, delete_lines, offers_with_events
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
# Paying issues tickets, which need the buyer's user key and name: read with the order, not on
# their own inside the payment (the signed-in user is loaded without its secrets, and a user
# loaded before a commit would read its expired name back, a statement per column).
_ORDER_BY_CODE_FOR_PAYMENT = _ORDER_BY_CODE_FOR_USER.options(
    joinedload(Order.user).load_only(User.user_key, User.first_name, User.last_name))


def get_order_for_user(session: Session, code: str, user_id: int, *, for_payment: bool = False) -> Order:
    """The order with this code if it belongs to the user; NotFound otherwise (no hint either way).
    `for_payment` also reads the user's key and name, which issuing the tickets needs."""
    code = (code or "").strip().upper()
    if not ORDER_CODE_RE.fullmatch(code):
        raise NotFound()
    statement = _ORDER_BY_CODE_FOR_PAYMENT if for_payment else _ORDER_BY_CODE_FOR_USER
    order = session.execute(statement, {"code": code, "user_id": user_id}).unique().scalar()
    if order is None:
        raise NotFound()
    return order


def get_order(session: Session, code: str) -> Order:
    """Any order by code (for administrators)."""
    code = (code or "").strip().upper()
    order = (session.execute(_ORDER_BY_CODE, {"code": code}).unique().scalar()
             if ORDER_CODE_RE.fullmatch(code) else None)
    if order is None:
        raise NotFound()
    return order


def list_orders_for_user(session: Session, user_id: int) -> list[Order]:
    query = _order_query().where(Order.user_id == user_id).order_by(Order.created_at.desc(), Order.id.desc())
    return list(session.scalars(query).unique())


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
def place_order(session: Session, *, user: User, items: Mapping[int, int], expected_total_cents: int | None,
                now: datetime, hold_minutes: int, max_tickets_per_event: int,
                code_factory: Callable[[], str] = new_order_code,
                offers: Mapping[int, Offer] | None = None) -> Order:
    """Turn the cart into a pending order holding its seats for `hold_minutes`, or raise.

    `expected_total_cents` is the total the buyer confirmed on the review page: any change
    (a price, a line) refuses the order rather than charging something else. `offers` are the
    items' offers (with their events) when the caller read them with the cart, just before;
    they are read here otherwise, and again for any second try.
    """
    if not user.is_verified:
        raise Forbidden("email_not_verified")
    if not items:
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
                               code=code_factory(), check_own_holds=not own_holds_checked, offers=offers)
        except IntegrityError:  # an order code collision (unique constraint): draw another code
            session.rollback()
            collisions += 1
            if collisions >= CODE_ATTEMPTS:
                raise
        except _OwnHoldsLapsed:  # free the buyer's own lapsed holds first (seats and ticket count)
            session.rollback()
            expire_stale_orders(session, now=now, user_id=user.id)
            own_holds_checked = True
        except Conflict as error:
            if error.code != "sold_out" or retried_after_expiry:
                raise
            retried_after_expiry = True  # lapsed holds of other buyers may free the seats: once
            if not expire_stale_orders(session, now=now, event_ids=error.params["event_ids"]):
                raise
        offers = None  # a second try reads them again (the rollback expired them)


class _OwnHoldsLapsed(Exception):
    """The buyer has pending orders whose hold ran out: they are expired before placing."""


def _place_once(session: Session, *, offers: Mapping[int, Offer] | None, **kwargs) -> Order:
    try:
        if offers is None:
            offers = offers_with_events(session, kwargs["items"])
        return _place(session, offers=offers, **kwargs)
    except DomainError:
        session.rollback()  # gives back any seat taken so far
        raise


def _place(session: Session, *, user: User, items: Mapping[int, int], expected_total_cents: int | None,
           now: datetime, hold_minutes: int, max_per_event: int, code: str, check_own_holds: bool,
           offers: Mapping[int, Offer]) -> Order:
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

    if _serialise_buyer(session, user.id, now) and check_own_holds:
        raise _OwnHoldsLapsed()
    held = _tickets_held(session, user.id)
    for event_id in sorted(tickets):
        already = held.get(event_id, 0)
        if already + tickets[event_id] > max_per_event:
            raise Conflict("ticket_limit_reached", limit=max_per_event, held=already,
                           left=max(max_per_event - already, 0), event=events[event_id].title)

    order = _insert_order(
        session,
        {"code": code, "user_id": user.id, "status": PENDING, "total_cents": total, "currency": "EUR",
         "created_at": now, "expires_at": now + timedelta(minutes=hold_minutes),
         "idempotency_key": new_idempotency_key()},
        [{"offer_id": offer_id, "event_id": offers[offer_id].event_id, "quantity": quantity,
          "persons": offers[offer_id].persons, "unit_price_cents": offers[offer_id].price_cents}
         for offer_id, quantity in items.items()])
    delete_lines(session, user.id, items)
    for event_id in sorted(seats):  # last (module doc): a sold-out event rolls all of the above back
        if not take_seats(session, event_id, seats[event_id]):
            raise Conflict("sold_out", event=events[event_id].title, event_ids=[event_id])
    mark_seats_moved(session)
    # The caller shows the order it just wrote (to the user who placed it): no need to read them
    # back. The rest (the events whose seats the UPDATE moved) expires as usual.
    commit_keeping_loaded(session, only=[order, *order.lines, user])
    return order


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
    order = Order(id=order_id, paid_at=None, cancelled_at=None, **values)
    order.lines = [OrderLine(id=line_id, order_id=order_id, **line) for line_id, line in zip(line_ids, lines)]
    for written in (order, *order.lines):
        make_transient_to_detached(written)  # persistent with what was written, nothing pending
    session.add(order)
    return order


_USERS, _ORDERS = User.__table__, Order.__table__
_OWN_HOLD_LAPSED = sa.exists().where(_ORDERS.c.user_id == sa.bindparam("user_id"), _ORDERS.c.status == PENDING,
                                     _ORDERS.c.expires_at <= sa.bindparam("now"))
# The lock also tells whether the buyer has a lapsed hold to expire first: no statement of its own.
_LOCK_BUYER = (sa.select(_USERS.c.id, _OWN_HOLD_LAPSED).where(_USERS.c.id == sa.bindparam("user_id"))
               .with_for_update(of=_USERS))
# SQLite has no row locks: a no-op UPDATE takes the database write lock, held to the commit.
_LOCK_BUYER_SQLITE = sa.update(_USERS).where(_USERS.c.id == sa.bindparam("user_id")).values(id=_USERS.c.id)
_OWN_HOLD_LAPSED_SQLITE = sa.select(_OWN_HOLD_LAPSED)
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


def _serialise_buyer(session: Session, user_id: int, now: datetime) -> bool:
    """One placement at a time per account, so the ticket limit cannot be raced (see module doc).
    True when the buyer has a pending order whose hold ran out at `now`."""
    params = {"user_id": user_id, "now": now}
    if session.connection().dialect.name == "sqlite":
        session.execute(_LOCK_BUYER_SQLITE, params)
        return bool(session.scalar(_OWN_HOLD_LAPSED_SQLITE, params))
    return bool(session.execute(_LOCK_BUYER, params).one()[1])


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
