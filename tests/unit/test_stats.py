"""Dashboard statistics: exact figures from known data, filters, Paris days, cache and invalidation."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from cachelib import SimpleCache

from app.extensions import db
from app.models import Event, Order, OrderStatus, Ticket
from app.services import stats
from app.services.stats import StatsFilters, dashboard_stats
from tests.factories import EventFactory, OfferFactory, UserFactory
from tests.sales_data import (
    EXPECTED_EVENTS,
    EXPECTED_OFFERS,
    EXPECTED_SALE_DAYS,
    EXPECTED_TOTALS,
    load_sales_data,
    make_order,
    utc,
)


@pytest.fixture
def sales(app):
    return load_sales_data()


def offer_rows(data):
    return [(o["event"], o["offer"], o["tickets"], o["revenue_cents"]) for o in data["offers"]]


def event_rows(data):
    return [(e["event"], e["seats_sold"], e["capacity"], e["fill_rate"], e["tickets_sold"], e["checked_in"],
             e["persons_checked_in"]) for e in data["events"]]


def test_per_offer_per_day_per_event_and_totals_are_exact(sales):
    data = dashboard_stats(db.session, StatsFilters())

    assert offer_rows(data) == EXPECTED_OFFERS
    assert data["offers"][0]["label"] == "Athletics Final — Solo"
    assert event_rows(data) == EXPECTED_EVENTS
    assert data["totals"] == EXPECTED_TOTALS

    days = {d["day"]: (d["orders"], d["revenue_cents"]) for d in data["days"]}
    assert data["days"][0]["day"] == "2026-03-10" and data["days"][-1]["day"] == "2026-03-30"
    assert len(data["days"]) == 21  # every day in between, at zero when nothing sold
    for day, figures in days.items():
        assert figures == EXPECTED_SALE_DAYS.get(day, (0, 0)), day


def test_paris_midnight_and_daylight_saving_decide_the_day(app):
    offer = OfferFactory(price_cents=1000)
    user = UserFactory()
    make_order(user, [(offer, 1)], paid_at=utc("2026-03-10T22:59:59"))  # 23:59:59 in Paris (winter)
    make_order(user, [(offer, 2)], paid_at=utc("2026-03-10T23:00:00"))  # 00:00 on the 11th
    make_order(user, [(offer, 3)], paid_at=utc("2026-07-14T21:59:00"))  # 23:59 in Paris (summer)
    make_order(user, [(offer, 4)], paid_at=utc("2026-07-14T22:00:00"))  # 00:00 on the 15th

    days = {d["day"]: d["revenue_cents"] for d in dashboard_stats(db.session, StatsFilters())["days"] if d["orders"]}

    assert days == {"2026-03-10": 1000, "2026-03-11": 2000, "2026-07-14": 3000, "2026-07-15": 4000}


def test_event_filter_keeps_only_that_event(sales):
    data = dashboard_stats(db.session, StatsFilters(event_id=sales.swimming.id))

    assert offer_rows(data) == [row for row in EXPECTED_OFFERS if row[0] == "Swimming Heats"]
    assert event_rows(data) == [row for row in EXPECTED_EVENTS if row[0] == "Swimming Heats"]
    assert {d["day"]: (d["orders"], d["revenue_cents"]) for d in data["days"]} == {"2026-03-11": (2, 19000)}
    assert data["totals"] == {"orders": 2, "tickets": 4, "revenue_cents": 19000, "seats": 7, "checked_in": 1}


def test_date_range_counts_paris_days_inclusive(sales):
    data = dashboard_stats(db.session, StatsFilters(date_from=date(2026, 3, 11), date_to=date(2026, 3, 11)))

    assert offer_rows(data) == [("Athletics Final", "Solo", 1, 5000), ("Athletics Final", "Duo", 0, 0),
                                ("Swimming Heats", "Solo", 3, 9000), ("Swimming Heats", "Family", 1, 10000)]
    assert [(d["day"], d["orders"]) for d in data["days"]] == [("2026-03-11", 2)]
    # fill rate = seats sold in the period; no check-in happened in March
    assert [(e["seats_sold"], e["fill_rate"], e["checked_in"]) for e in data["events"]] == [(1, 1.0, 0), (7, 17.5, 0)]


def test_date_range_applies_to_check_ins(sales):
    data = dashboard_stats(db.session, StatsFilters(date_from=date(2026, 12, 21)))

    assert [(e["event"], e["checked_in"], e["persons_checked_in"]) for e in data["events"]] == [
        ("Athletics Final", 0, 0), ("Swimming Heats", 1, 4)]
    assert data["totals"]["tickets"] == 0


def test_no_sales_at_all(app):
    event = EventFactory(title="Quiet", capacity=0)
    data = dashboard_stats(db.session, StatsFilters())

    assert data["offers"] == [] and data["days"] == []
    assert data["events"][0]["event_id"] == event.id and data["events"][0]["fill_rate"] == 0.0
    assert data["totals"] == {"orders": 0, "tickets": 0, "revenue_cents": 0, "seats": 0, "checked_in": 0}


def test_fill_rate_rounds_to_one_decimal():
    assert stats.fill_rate(1, 3) == 33.3
    assert stats.fill_rate(2, 3) == 66.7
    assert stats.fill_rate(5, 0) == 0.0


def count_statements(filters: StatsFilters) -> list[str]:
    statements = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        dashboard_stats(db.session, filters)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    return statements


@pytest.mark.parametrize("filters", [StatsFilters(), StatsFilters(event_id=1, date_from=date(2026, 3, 1))])
def test_the_queries_aggregate_in_sql(sales, filters):
    """A fixed, small number of statements, whatever the number of orders: nothing is loaded per order."""
    before = count_statements(filters)
    for _ in range(5):
        make_order(sales.customer, [(sales.a_solo, 1), (sales.b_solo, 1)], paid_at=utc("2026-03-20T10:00:00"))
    after = count_statements(filters)
    assert len(before) == len(after) <= 7
    assert all("GROUP BY" in sql for sql in after if "order_lines" in sql or "tickets" in sql)


# --------------------------------------------------------------------------- cache
def test_a_lost_version_key_never_brings_back_old_results():
    cache = SimpleCache()
    old = stats.stats_version(cache)
    cache.delete(stats.VERSION_KEY)
    assert stats.stats_version(cache) != old


# --------------------------------------------------------------------------- what invalidates
@pytest.fixture
def commits(app):
    """Records each commit that the invalidation hook reports as changing the statistics."""
    seen = []
    stats.install_stats_invalidation(db.session, lambda: seen.append(True))
    yield seen
    from app.admin.dashboard import bump_stats_cache

    stats.install_stats_invalidation(db.session, bump_stats_cache)


def test_a_change_committed_outside_the_session_runs_its_callbacks_at_once():
    """The scanner API's check-in statement commits on a pooled connection of its own."""
    from sqlalchemy.orm import sessionmaker

    calls = []
    target, other = sessionmaker(), sessionmaker()
    stats.install_stats_invalidation(target, lambda: calls.append("now"), lambda: calls.append("soon"))
    stats.stats_changed_outside(target, soon=True)
    stats.stats_changed_outside(target)
    stats.stats_changed_outside(other)  # no callbacks installed for it: nothing happens
    assert calls == ["soon", "now"]


def test_a_paid_order_a_cancellation_and_a_check_in_are_noticed(sales, commits):
    order = make_order(sales.customer, [(sales.a_solo, 1)], paid_at=utc("2026-03-12T10:00:00"))
    assert len(commits) == 1

    db.session.execute(sa.update(Order).where(Order.id == order.id).values(status=OrderStatus.CANCELLED.value))
    db.session.commit()
    assert len(commits) == 2

    ticket = db.session.scalars(sa.select(Ticket).where(Ticket.checked_in_at.is_(None))).first()
    ticket.checked_in_at = utc("2026-12-20T19:30:00")
    db.session.commit()
    assert len(commits) == 3


def test_a_conditional_check_in_update_is_noticed(sales, commits):
    ticket_id = db.session.scalar(sa.select(Ticket.id).where(Ticket.checked_in_at.is_(None)))
    db.session.execute(sa.update(Ticket).where(Ticket.id == ticket_id, Ticket.checked_in_at.is_(None))
                       .values(checked_in_at=utc("2026-12-20T19:30:00")))
    db.session.commit()
    assert commits == [True]


def test_holding_seats_and_pending_orders_are_not_sales(sales, commits):
    db.session.execute(sa.update(Event).where(Event.id == sales.athletics.id).values(seats_taken=Event.seats_taken + 1))
    db.session.commit()
    make_order(sales.customer, [(sales.a_solo, 1)], status=OrderStatus.PENDING.value)
    assert commits == []


def test_placing_an_order_is_not_a_sale_and_paying_it_is(app, commits):
    """Placing writes the order and its lines with plain INSERTs marked STATS_UNAFFECTED."""
    from app.services import checkout, orders
    from app.services.payments import CardDetails, MockProvider
    from tests.shop import customer, make_event, offer_of

    solo, buyer = offer_of(make_event(), "solo"), customer()
    commits.clear()  # creating the event was a change
    now = datetime.now(UTC)
    order = orders.place_order(db.session, user=buyer, items={solo.id: 2}, expected_total_cents=2 * solo.price_cents,
                               now=now, hold_minutes=15, max_tickets_per_event=10)
    assert commits == []
    card = CardDetails(number="4242424242424242", exp_month=12, exp_year=now.year + 2, cvv="123", holder="Ada")
    payable = checkout.payable_order_of_user(db.session, order.code, buyer.id)
    assert checkout.pay_order(db.session, payable, card, provider=MockProvider(), now=now).paid_now
    assert commits == [True]


@pytest.fixture
def when(app):
    """Records each reported commit as "now" or "soon" (the delayed, shared replacement)."""
    seen = []
    stats.install_stats_invalidation(db.session, lambda: seen.append("now"), lambda: seen.append("soon"))
    yield seen
    from app.admin.dashboard import bump_stats_cache, bump_stats_cache_soon

    stats.install_stats_invalidation(db.session, bump_stats_cache, bump_stats_cache_soon)


def test_a_customers_payment_is_reported_soon_and_a_cancellation_at_once(app, when):
    from app.services import checkout, orders
    from app.services.payments import CardDetails, MockProvider
    from tests.shop import customer, make_event, offer_of

    solo, buyer = offer_of(make_event(), "solo"), customer()
    now = datetime.now(UTC)
    order = orders.place_order(db.session, user=buyer, items={solo.id: 1}, expected_total_cents=solo.price_cents,
                               now=now, hold_minutes=15, max_tickets_per_event=10)
    when.clear()
    card = CardDetails(number="4242424242424242", exp_month=12, exp_year=now.year + 2, cvv="123", holder="Ada")
    payable = checkout.payable_order_of_user(db.session, order.code, buyer.id)
    assert checkout.pay_order(db.session, payable, card, provider=MockProvider(), now=now).paid_now
    assert when == ["soon"]
    orders.cancel_order(db.session, order, actor_id=buyer.id, now=now, provider=MockProvider())
    assert when == ["soon", "now"]


def test_allowing_a_later_refresh_lasts_one_transaction(sales, when):
    stats.allow_stats_refresh_soon(db.session)
    sales.athletics.capacity = 500
    db.session.commit()
    assert when == ["soon"]
    sales.athletics.capacity = 600
    db.session.commit()
    assert when == ["soon", "now"]
    db.session.execute(sa.select(1))  # services allow it inside their transaction
    stats.allow_stats_refresh_soon(db.session)
    db.session.rollback()  # forgotten with the transaction
    sales.athletics.capacity = 700
    db.session.commit()
    assert when == ["soon", "now", "now"]


def test_a_rolled_back_change_is_not_reported(sales, commits):
    sales.athletics.capacity = 500
    db.session.flush()
    db.session.rollback()
    db.session.commit()
    assert commits == []


def test_catalogue_edits_are_noticed(sales, commits):
    sales.athletics.capacity = 500  # the fill rate changes
    db.session.commit()
    assert commits == [True]


def test_what_moves_the_overviews_accounts_counts_is_noticed_and_nothing_else_of_an_account(app, commits):
    from app.models import Invitation, Person, User
    from tests.factories import InvitationFactory

    user = UserFactory()  # a new account
    assert commits == [True]
    user.totp_last_step, user.first_name = 123, "Renamed"  # a sign-in's step, a profile edit: no count moves
    db.session.commit()
    db.session.execute(sa.update(User).where(User.id == user.id).values(totp_last_step=124))
    db.session.commit()
    assert commits == [True]

    user.role = "staff"
    db.session.commit()
    db.session.execute(sa.update(User).where(User.id == user.id).values(disabled_at=utc("2026-03-01T10:00:00")))
    db.session.commit()
    assert commits == [True] * 3

    person = Person(first_name="Ana", last_name="Lopes", phone1="+33618880042", intended_role="staff")
    db.session.add(person)
    db.session.commit()
    person.phone2 = "+33618880043"  # not counted
    db.session.commit()
    person.user_id = user.id  # with an account now
    db.session.commit()
    assert commits == [True] * 5

    invitation = InvitationFactory(person=person)
    invitation.revoked_at = utc("2026-03-02T10:00:00")
    db.session.commit()
    db.session.execute(sa.delete(Invitation).where(Invitation.id == invitation.id))
    db.session.commit()
    assert commits == [True] * 8


def test_utc_offset_periods_follow_the_paris_clock_changes():
    periods = stats.utc_offset_periods(stats.PARIS, utc("2026-01-10T00:00:00"), utc("2026-12-01T00:00:00"))
    changes = [(start.isoformat(), offset) for start, offset in periods[1:]]
    assert changes == [("2026-03-29T01:00:00+00:00", 7200), ("2026-10-25T01:00:00+00:00", 3600)]
    assert periods[0][1] == 3600 and periods[0][0] < utc("2026-01-10T00:00:00")
