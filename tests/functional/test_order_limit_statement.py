"""The per-account ticket limit is counted from the buyer's own orders, however many the event
has sold and however stale PostgreSQL's statistics are: at an on-sale, a new event "has no
sales" until the next ANALYZE, and a statement that could start from the event's order lines
read all of them for every placement (bench/README.md)."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.extensions import db
from app.models import OrderStatus
from app.services import orders as order_service
from tests.conftest import TEST_DATABASE_URL
from tests.factories import EventFactory, OfferFactory, UserFactory
from tests.sales_data import make_order

on_postgres = pytest.mark.skipif(not TEST_DATABASE_URL, reason="query plans are PostgreSQL's")

# `count` orders of one line each (`status`, offer :offer_id), their buyers taken in turn from :user_ids.
BULK_ORDERS = """
    WITH placed AS (
        INSERT INTO orders (code, user_id, status, total_cents, currency, created_at, expires_at, idempotency_key)
        SELECT :prefix || n, (:user_ids)[1 + n % cardinality(:user_ids)], :status, 5000, 'EUR', now(),
               now() + interval '15 minutes', :prefix || 'key' || n
        FROM generate_series(1, :count) AS n
        RETURNING id)
    INSERT INTO order_lines (order_id, offer_id, event_id, quantity, persons, unit_price_cents)
    SELECT placed.id, offers.id, offers.event_id, 1, 1, 5000 FROM placed, offers WHERE offers.id = :offer_id"""


def bulk_orders(prefix: str, user_ids: list[int], offer_id: int, count: int, status: str) -> None:
    db.session.execute(sa.text(BULK_ORDERS), {"prefix": prefix, "user_ids": user_ids, "offer_id": offer_id,
                                              "count": count, "status": status})


def rows_scanned(statement, params: dict) -> int:
    """Rows every scan of the statement's plan returned, over all its loops (EXPLAIN ANALYZE)."""
    sql = statement.params(**params).compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    plan = db.session.execute(sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()

    def walk(node) -> int:
        own = node["Actual Rows"] * node["Actual Loops"] if "Scan" in node["Node Type"] else 0
        return own + sum(walk(child) for child in node.get("Plans", []))

    return walk((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])


@on_postgres
def test_the_ticket_limit_reads_the_buyers_orders_not_the_events_sales(app):
    with app.app_context():
        earlier, on_sale = OfferFactory(), OfferFactory(event=EventFactory(capacity=1000))
        buyer, others = UserFactory(), [UserFactory() for _ in range(50)]
        db.session.commit()
        other_ids = [user.id for user in others]
        bulk_orders("PAST", other_ids, earlier.id, 20_000, OrderStatus.PAID.value)  # the shop's history
        db.session.execute(sa.text("ANALYZE orders; ANALYZE order_lines"))  # the last statistics before the on-sale
        bulk_orders("RUSH", other_ids, on_sale.id, 400, OrderStatus.PENDING.value)
        make_order(buyer, [(on_sale, 2)], status=OrderStatus.PENDING.value, tickets=False)

        assert order_service._tickets_held(db.session, buyer.id) == {on_sale.event_id: 2}
        assert rows_scanned(order_service._TICKETS_HELD, {"user_id": buyer.id}) <= 10


@on_postgres
def test_placing_for_one_event_counts_from_the_buyers_orders_too(app):
    """PostgreSQL places a one-event cart in one statement (`_PLACE_FOR_ONE_EVENT`), whose count
    must start from the buyer's orders as `_TICKETS_HELD` does. Run here over the limit, so it
    writes nothing: what it scans is the count, the guards on the writes and the event's row."""
    from datetime import UTC, datetime, timedelta

    with app.app_context():
        earlier, on_sale = OfferFactory(), OfferFactory(event=EventFactory(capacity=1000))
        buyer, others = UserFactory(), [UserFactory() for _ in range(50)]
        db.session.commit()
        other_ids = [user.id for user in others]
        bulk_orders("PAST", other_ids, earlier.id, 20_000, OrderStatus.PAID.value)
        db.session.execute(sa.text("ANALYZE orders; ANALYZE order_lines"))
        bulk_orders("RUSH", other_ids, on_sale.id, 400, OrderStatus.PENDING.value)
        make_order(buyer, [(on_sale, 2)], status=OrderStatus.PENDING.value, tickets=False)
        now = datetime.now(UTC)
        params = {"code": "GCH-PLAN01", "user_id": buyer.id, "status": "pending", "total_cents": 5000,
                  "currency": "EUR", "created_at": now, "expires_at": now + timedelta(minutes=15),
                  "idempotency_key": "plan-key", "pending": "pending", "paid": "paid", "event_id": on_sale.event_id,
                  "seats": 1, "tickets": 1, "max_per_event": 2, "offer_ids": [on_sale.id], "quantities": [1],
                  "persons": [1], "unit_prices": [5000]}
        statement = sa.text("EXPLAIN (ANALYZE, FORMAT JSON) " + order_service._PLACE_FOR_ONE_EVENT.element.text)
        plan = db.session.execute(statement, params).scalar_one()
        db.session.rollback()

        def scanned(node) -> int:
            own = node["Actual Rows"] * node["Actual Loops"] if "Scan" in node["Node Type"] else 0
            return own + sum(scanned(child) for child in node.get("Plans", []))

        assert scanned((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]) <= 10
        assert db.session.execute(order_service._PLACE_FOR_ONE_EVENT, params).one()[:3] == (2, None, 0)
        db.session.rollback()
