"""Sales per Paris day when orders are grouped by the hour (PostgreSQL) and folded into days.

Runs on both backends: SQLite computes the Paris day itself, PostgreSQL groups by UTC hour;
the figures must be the same, around midnight and across the clock change of 29 March 2026
(02:00 CET became 03:00 CEST, at 01:00 UTC).
"""
from __future__ import annotations

from datetime import date

import pytest

from app.extensions import db
from app.services.stats import StatsFilters, dashboard_stats
from tests.factories import EventFactory, OfferFactory, UserFactory
from tests.sales_data import make_order, utc


@pytest.fixture
def spring(app):
    event, other = EventFactory(title="Relay"), EventFactory(title="Marathon")
    solo, duo = OfferFactory(event=event, persons=1, price_cents=1000), OfferFactory(event=event, persons=2,
                                                                                      price_cents=1500)
    elsewhere = OfferFactory(event=other, persons=1, price_cents=700)
    user = UserFactory()
    make_order(user, [(solo, 1)], paid_at=utc("2026-03-28T22:59:59"))  # 23:59:59 on the 28th (CET)
    make_order(user, [(solo, 1), (duo, 1)], paid_at=utc("2026-03-28T23:00:00"))  # 00:00 on the 29th: two lines
    make_order(user, [(duo, 2)], paid_at=utc("2026-03-29T00:59:00"))  # 01:59 CET, just before the change
    make_order(user, [(solo, 3)], paid_at=utc("2026-03-29T01:00:00"))  # 03:00 CEST, just after
    make_order(user, [(solo, 1), (elsewhere, 1)], paid_at=utc("2026-03-29T21:59:00"))  # 23:59 CEST on the 29th
    make_order(user, [(duo, 1)], paid_at=utc("2026-03-29T22:00:00"))  # 00:00 on the 30th
    return event


def per_day(filters: StatsFilters) -> dict[str, tuple[int, int]]:
    return {d["day"]: (d["orders"], d["revenue_cents"]) for d in dashboard_stats(db.session, filters)["days"]}


def test_orders_fall_on_their_paris_day_across_the_clock_change(spring):
    assert per_day(StatsFilters()) == {
        "2026-03-28": (1, 1000),
        "2026-03-29": (4, 2500 + 3000 + 3000 + 1700),
        "2026-03-30": (1, 1500),
    }


def test_with_an_event_each_order_counts_once_per_day(spring):
    assert per_day(StatsFilters(event_id=spring.id)) == {
        "2026-03-28": (1, 1000),
        "2026-03-29": (4, 2500 + 3000 + 3000 + 1000),  # the Marathon line is not this event's
        "2026-03-30": (1, 1500),
    }


def test_a_date_range_keeps_whole_paris_days(spring):
    assert per_day(StatsFilters(date_from=date(2026, 3, 29), date_to=date(2026, 3, 29))) == {
        "2026-03-29": (4, 10200)}
    assert per_day(StatsFilters(event_id=spring.id, date_from=date(2026, 3, 30))) == {"2026-03-30": (1, 1500)}
