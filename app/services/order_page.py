"""The order page's read: a customer's order with its lines, their event and offer, and its payments,
as plain rows rather than ORM objects.

Every purchase shows this page twice (after placing, after paying), and it only displays the
order: building five mapped objects per row, with the identity map and the row processors of
four joined loads, cost about twice the statement's own work (bench/README.md). The attributes
keep the model's names, so `orders/show.html` renders these and `Order` objects alike (the
payment's error pages pass the `Order` it was working on).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Event, Offer, Order, OrderLine, Payment
from app.models.order import OrderFacts, OrderLineFacts
from app.services.orders import rows_of_users_order


@dataclass(frozen=True, slots=True)
class EventShown:
    title: str
    venue: str
    starts_at: datetime


@dataclass(frozen=True, slots=True)
class OfferShown:
    name: str


@dataclass(frozen=True)
class OrderLineShown(OrderLineFacts):
    id: int
    quantity: int
    persons: int
    unit_price_cents: int
    offer: OfferShown
    event: EventShown


@dataclass(frozen=True, slots=True)
class PaymentShown:
    kind: str
    amount_cents: int
    succeeded: bool
    error_code: str | None
    card_brand: str | None
    card_last4: str | None
    created_at: datetime


@dataclass(frozen=True)
class OrderShown(OrderFacts):
    id: int
    code: str
    user_id: int
    status: str
    total_cents: int
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None
    lines: list[OrderLineShown]
    payments: list[PaymentShown]


_O, _L, _OF, _E, _P = (model.__table__ for model in (Order, OrderLine, Offer, Event, Payment))
# One statement, built once: the order LEFT JOIN its lines (with offer and event) LEFT JOIN its
# payments, so a row per (line, payment) pair; an order has one line and one payment or two.
_ORDER_PAGE = (
    sa.select(_O.c.id, _O.c.code, _O.c.user_id, _O.c.status, _O.c.total_cents, _O.c.created_at, _O.c.expires_at,
              _O.c.paid_at, _O.c.cancelled_at,
              _L.c.id.label("line_id"), _L.c.quantity, _L.c.persons, _L.c.unit_price_cents,
              _OF.c.name.label("offer_name"), _E.c.title, _E.c.venue, _E.c.starts_at,
              _P.c.id.label("payment_id"), _P.c.kind, _P.c.amount_cents, _P.c.succeeded, _P.c.error_code,
              _P.c.card_brand, _P.c.card_last4, _P.c.created_at.label("payment_created_at"))
    .select_from(_O.outerjoin(_L, _L.c.order_id == _O.c.id)
                 .outerjoin(_OF, _OF.c.id == _L.c.offer_id)
                 .outerjoin(_E, _E.c.id == _L.c.event_id)
                 .outerjoin(_P, _P.c.order_id == _O.c.id))
    .where(_O.c.code == sa.bindparam("code"), _O.c.user_id == sa.bindparam("user_id"))
    .order_by(_L.c.id, _P.c.created_at, _P.c.id)
)


def order_shown_to_user(session: Session, code: str, user_id: int) -> OrderShown:
    """The order with this code if it belongs to the user; NotFound otherwise (no hint either way),
    as `orders.get_order_for_user`. Lines in the order they were written, payments oldest first."""
    rows = rows_of_users_order(session, _ORDER_PAGE, code, user_id)
    lines: dict[int, OrderLineShown] = {}
    payments: dict[int, PaymentShown] = {}
    for row in rows:
        if row.line_id is not None and row.line_id not in lines:
            lines[row.line_id] = OrderLineShown(
                id=row.line_id, quantity=row.quantity, persons=row.persons, unit_price_cents=row.unit_price_cents,
                offer=OfferShown(name=row.offer_name),
                event=EventShown(title=row.title, venue=row.venue, starts_at=row.starts_at))
        if row.payment_id is not None and row.payment_id not in payments:
            payments[row.payment_id] = PaymentShown(
                kind=row.kind, amount_cents=row.amount_cents, succeeded=row.succeeded, error_code=row.error_code,
                card_brand=row.card_brand, card_last4=row.card_last4, created_at=row.payment_created_at)
    first = rows[0]
    return OrderShown(id=first.id, code=first.code, user_id=first.user_id, status=first.status,
                      total_cents=first.total_cents, created_at=first.created_at, expires_at=first.expires_at,
                      paid_at=first.paid_at, cancelled_at=first.cancelled_at,
                      lines=list(lines.values()), payments=list(payments.values()))
