"""The order page's read (app/services/order_page.py): the same order as the ORM reads, as rows."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Order
from app.services import checkout, orders
from app.services.errors import NotFound
from app.services.order_page import order_shown_to_user
from app.services.payments import MockProvider
from tests.checkers import sql_statements
from tests.shop import customer, make_event, offer_of
from tests.unit.test_orders import pay, place


def as_shown(order) -> dict:
    """What the order page uses of an order, whichever way it was read."""
    return {
        "order": (order.id, order.code, order.user_id, order.status, order.total_cents, order.created_at,
                  order.expires_at, order.paid_at, order.cancelled_at),
        "facts": (order.is_pending, order.is_paid, order.is_cancelled, order.seats, order.tickets_count,
                  order.hold_has_expired(datetime.now(UTC))),
        "lines": sorted((line.id, line.quantity, line.persons, line.unit_price_cents, line.seats, line.total_cents,
                         line.offer.name, line.event.title, line.event.venue, line.event.starts_at)
                        for line in order.lines),
        "payments": [(p.kind, p.amount_cents, p.succeeded, p.error_code, p.card_brand, p.card_last4, p.created_at)
                     for p in order.payments],
    }


def orm_order(code: str, user_id: int) -> Order:
    db.session.expunge_all()
    return orders.get_order_for_user(db.session, code, user_id)


def test_a_pending_order_reads_as_the_orm_reads_it(app):
    first, second = make_event(title="Judo"), make_event(title="Fencing", venue="Grand Palais")
    user = customer()
    order = place(user, {offer_of(first, "duo"): 1, offer_of(first, "solo"): 2, offer_of(second, "family"): 1})
    code = order.code
    shown = order_shown_to_user(db.session, code, user.id)
    assert as_shown(shown) == as_shown(orm_order(code, user.id))
    assert shown.is_pending and shown.payments == [] and shown.seats == 2 + 2 + 4 and shown.tickets_count == 4
    assert [line.id for line in shown.lines] == sorted(line.id for line in shown.lines)  # as written


def test_payments_come_oldest_first_once_each_whatever_the_number_of_lines(app):
    event = make_event()
    user = customer()
    order = place(user, {offer_of(event, "duo"): 1, offer_of(event, "solo"): 2})
    provider = MockProvider()
    with pytest.raises(checkout.PaymentDeclined):  # recorded as a failed payment
        pay(order, provider, number="4000000000000002")
    pay(db.session.get(Order, order.id), provider)
    orders.cancel_order(db.session, db.session.get(Order, order.id), actor_id=user.id, now=datetime.now(UTC),
                        provider=provider)
    code = order.code
    shown = order_shown_to_user(db.session, code, user.id)
    assert [(p.kind, p.succeeded) for p in shown.payments] == [("charge", False), ("charge", True), ("refund", True)]
    assert shown.payments[0].error_code == "card_declined" and len(shown.lines) == 2
    assert as_shown(shown) == as_shown(orm_order(code, user.id))


def test_one_statement_and_no_orm_object(app):
    event = make_event()
    user = customer()
    order = place(user, {offer_of(event, "duo"): 1})
    pay(order, MockProvider())
    code, user_id = order.code, user.id
    db.session.expunge_all()
    with sql_statements(db.engine) as seen:
        shown = order_shown_to_user(db.session, code, user_id)
    assert len(seen) == 1 and shown.is_paid
    assert len(db.session.identity_map) == 0


@pytest.mark.parametrize("code", ["", "nope", "GCH-ZZZZZZ", "'; DROP TABLE orders; --", "gch-" + "A" * 300])
def test_unknown_or_malformed_codes_are_not_found(app, code):
    customer()
    with pytest.raises(NotFound):
        order_shown_to_user(db.session, code, 1)


def test_another_customers_order_is_not_found(app):
    event = make_event()
    owner, other = customer(), customer()
    code = place(owner, {offer_of(event, "solo"): 1}).code
    with pytest.raises(NotFound):
        order_shown_to_user(db.session, code, other.id)
    assert order_shown_to_user(db.session, code.lower(), owner.id).code == code  # as the ORM read: case-blind
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1
