"""Known sales data for the statistics, dashboard and export tests (issue 8).

Orders are written straight into the tables (as the shop would leave them), so the expected
figures below can be checked by hand. Payment times sit on purpose around Paris midnight and
across the 29 March 2026 daylight-saving change.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import Event, Offer, Order, OrderLine, OrderStatus, Ticket, User
from app.services.codes import new_order_code
from app.services.tickets import issue_tickets
from tests.factories import EventFactory, OfferFactory, UserFactory


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_order(user: User, lines: list[tuple[Offer, int]], *, status: str = OrderStatus.PAID.value,
               paid_at: datetime | None = None, created_at: datetime | None = None, tickets: bool = True) -> Order:
    """An order in `status`; a paid (or cancelled) one gets its tickets; seats are taken as the shop does."""
    created = created_at or (paid_at - timedelta(minutes=5) if paid_at else datetime.now(UTC))
    order = Order(code=new_order_code(), user=user, status=status, total_cents=0, created_at=created,
                  expires_at=created + timedelta(minutes=15), paid_at=paid_at,
                  idempotency_key=secrets.token_urlsafe(24))
    for offer, quantity in lines:
        order.lines.append(OrderLine(offer=offer, event_id=offer.event_id, quantity=quantity, persons=offer.persons,
                                     unit_price_cents=offer.price_cents))
        if status in (OrderStatus.PAID.value, OrderStatus.PENDING.value):
            offer.event.seats_taken += quantity * offer.persons
    order.total_cents = sum(line.total_cents for line in order.lines)
    if status == OrderStatus.CANCELLED.value:
        order.cancelled_at = (paid_at or created) + timedelta(hours=1)
    db.session.add(order)
    db.session.flush()
    if tickets and paid_at is not None:
        issue_tickets(db.session, order, now=paid_at)
        if status == OrderStatus.CANCELLED.value:
            db.session.execute(sa.update(Ticket).where(Ticket.order_id == order.id)
                               .values(voided_at=order.cancelled_at))
    db.session.commit()
    return order


@dataclass
class SalesData:
    athletics: Event
    swimming: Event
    a_solo: Offer
    a_duo: Offer
    b_solo: Offer
    b_family: Offer
    customer: User
    orders: dict[str, Order]


def load_sales_data() -> SalesData:
    """Two events, four offers, four paid orders, one cancelled, one pending, three check-ins."""
    athletics = EventFactory(title="Athletics Final", slug="athletics-final", capacity=100,
                             starts_at=utc("2026-12-20T20:00:00"))
    swimming = EventFactory(title="Swimming Heats", slug="swimming-heats", capacity=40,
                            starts_at=utc("2026-12-21T09:00:00"))
    a_solo = OfferFactory(event=athletics, kind="solo", name="Solo", persons=1, price_cents=5000)
    a_duo = OfferFactory(event=athletics, kind="duo", name="Duo", persons=2, price_cents=9000)
    b_solo = OfferFactory(event=swimming, kind="solo", name="Solo", persons=1, price_cents=3000)
    b_family = OfferFactory(event=swimming, kind="family", name="Family", persons=4, price_cents=10000)
    customer = UserFactory(first_name="Camille", last_name="Martin", email="camille@example.test")
    other = UserFactory(first_name="Jo", last_name="Durand", email="jo@example.test")
    orders = {
        # Paris 11:00 on 10 March (CET, UTC+1)
        "o1": make_order(customer, [(a_solo, 2), (a_duo, 1)], paid_at=utc("2026-03-10T10:00:00")),
        # 23:30 UTC is already 00:30 on 11 March in Paris
        "o2": make_order(other, [(b_family, 1)], paid_at=utc("2026-03-10T23:30:00")),
        "o3": make_order(customer, [(a_solo, 1), (b_solo, 3)], paid_at=utc("2026-03-11T12:00:00")),
        # cancelled after payment: counts nowhere, its tickets are void
        "o4": make_order(other, [(a_duo, 2)], status=OrderStatus.CANCELLED.value, paid_at=utc("2026-03-11T09:00:00")),
        # pending: not a sale yet
        "o5": make_order(other, [(b_solo, 1)], status=OrderStatus.PENDING.value, created_at=utc("2026-03-12T08:00:00")),
        # after the switch to summer time (UTC+2): 22:30 UTC is 00:30 on 30 March in Paris
        "o6": make_order(customer, [(a_duo, 1)], paid_at=utc("2026-03-29T22:30:00")),
    }
    # one valid ticket of each of these offers goes through the gate
    for offer, when in ((a_solo, "2026-12-20T19:00:00"), (a_duo, "2026-12-20T19:05:00"),
                        (b_family, "2026-12-21T08:30:00")):
        ticket = db.session.scalars(sa.select(Ticket).where(Ticket.offer_id == offer.id, Ticket.voided_at.is_(None))
                                    .order_by(Ticket.id)).first()
        ticket.checked_in_at = utc(when)
    db.session.commit()
    return SalesData(athletics, swimming, a_solo, a_duo, b_solo, b_family, customer, orders)


# The figures of `load_sales_data`, worked out by hand.
EXPECTED_OFFERS = [  # (event, offer, tickets, revenue in cents)
    ("Athletics Final", "Solo", 3, 15000),
    ("Athletics Final", "Duo", 2, 18000),
    ("Swimming Heats", "Solo", 3, 9000),
    ("Swimming Heats", "Family", 1, 10000),
]
EXPECTED_SALE_DAYS = {  # Paris day: (orders, revenue in cents); other days in between are zero
    "2026-03-10": (1, 19000),
    "2026-03-11": (2, 24000),
    "2026-03-30": (1, 9000),
}
EXPECTED_EVENTS = [  # (event, seats sold, capacity, fill rate %, tickets sold, checked in, persons admitted)
    ("Athletics Final", 7, 100, 7.0, 5, 2, 3),
    ("Swimming Heats", 7, 40, 17.5, 4, 1, 4),
]
EXPECTED_TOTALS = {"orders": 4, "tickets": 9, "revenue_cents": 52000, "seats": 14, "checked_in": 3}
