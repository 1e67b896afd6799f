"""Sales statistics for the admin dashboard, aggregated in SQL and cached behind a version token.

Every figure is a GROUP BY in the database: no order is ever loaded into Python, so the
dashboard stays fast with hundreds of thousands of orders. Only paid orders count as sales;
a cancelled or refunded order leaves the figures. Days are Europe/Paris days.

Caching: whatever is derived from the statistics is stored under ``stats:<version>:<name>``
(`stats_key`): what the dashboard keeps (app/admin/dashboard.py: its rendered statistics
section per set of filters, the catalogue overview, the accounts and staff counts).
The version is a random token kept in the same cache; any committed change to the data the
statistics read (a sale, a cancellation, a check-in, a catalogue edit; an account, a person or
an invitation counted on the overview, `COUNTED_COLUMNS`) replaces it, so
every cached result becomes unreachable at once, on every web instance sharing the cache.
`install_stats_invalidation` watches the SQLAlchemy session for such changes, so no
code path (shop, admin, CLI, scanner API) has to remember to call `bump_stats_version`.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from app.models import (
    CheckIn,
    Event,
    Invitation,
    Offer,
    Order,
    OrderLine,
    OrderStatus,
    Person,
    Ticket,
    User,
)

PARIS = ZoneInfo("Europe/Paris")
VERSION_KEY = "stats:version"
PAID = OrderStatus.PAID.value


class CacheLike(Protocol):
    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...
    def add(self, key: str, value: Any, timeout: int | None = None) -> Any: ...


@dataclass(frozen=True)
class StatsFilters:
    """Optional event and an inclusive range of Paris days (sales by payment time)."""

    event_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None

    def cache_key(self) -> str:
        return ":".join(str(v) if v is not None else "-" for v in (self.event_id, self.date_from, self.date_to))

    def utc_bounds(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC: Paris midnight of date_from to Paris midnight after date_to."""
        start = end = None
        if self.date_from:
            start = datetime.combine(self.date_from, time(0), tzinfo=PARIS).astimezone(UTC)
        if self.date_to:
            end = datetime.combine(self.date_to + timedelta(days=1), time(0), tzinfo=PARIS).astimezone(UTC)
        return start, end


def paris_day(moment: datetime) -> date:
    return moment.astimezone(PARIS).date()


# --------------------------------------------------------------------------- queries
def _in_range(column, filters: StatsFilters) -> list:
    start, end = filters.utc_bounds()
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return conditions


def _paid_conditions(filters: StatsFilters, *, lines: bool = True) -> list:
    conditions = [Order.status == PAID, *_in_range(Order.paid_at, filters)]
    if filters.event_id is not None and lines:
        conditions.append(OrderLine.event_id == filters.event_id)
    return conditions


def utc_offset_periods(zone: ZoneInfo, first: datetime, last: datetime) -> list[tuple[datetime, int]]:
    """[(start in UTC, offset in seconds)] covering first..last: when `zone`'s UTC offset changes."""
    moment = datetime(first.year - 1, 12, 31, tzinfo=UTC)
    stop = datetime(last.year + 1, 1, 2, tzinfo=UTC)
    periods = [(moment, int(moment.astimezone(zone).utcoffset().total_seconds()))]
    step = timedelta(days=1)
    while moment < stop:
        following = moment + step
        offset = int(following.astimezone(zone).utcoffset().total_seconds())
        if offset != periods[-1][1]:  # the change happened in this day: find its hour
            low, high = moment, following
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if int(middle.astimezone(zone).utcoffset().total_seconds()) == offset:
                    high = middle
                else:
                    low = middle
            periods.append((high.replace(second=0, microsecond=0), offset))
        moment = following
    return periods


def _day_bucket(session: Session, filters: StatsFilters):
    """SQL grouping `orders.paid_at` into Paris days, and the function turning a group's value
    into its Paris day (several groups may make one day).

    PostgreSQL: the UTC hour (`date_bin`), folded into Paris days in Python. Converting every
    row to Paris time in SQL cost twice as much (~50 ms for 100 000 orders), and Paris has been
    a whole number of hours from UTC since 1911, so an hour never straddles two Paris days.
    SQLite (no time-zone database): a CASE over the UTC-offset periods between the first and
    the last sale gives the Paris day itself.
    """
    if session.get_bind().dialect.name == "postgresql":
        hour = sa.func.date_bin(sa.literal_column("interval '1 hour'"), Order.paid_at,
                                sa.literal_column("timestamptz '2000-01-01 00:00:00+00'"))
        return hour, paris_day
    paid = sa.select(Order.paid_at).where(*_paid_conditions(filters, lines=False)).limit(1)
    first = session.scalar(paid.order_by(Order.paid_at))  # two index seeks (status, paid_at)
    last = session.scalar(paid.order_by(Order.paid_at.desc()))
    if first is None:
        return sa.func.date(Order.paid_at), _as_date
    periods = utc_offset_periods(PARIS, first, last)
    whens = [(Order.paid_at < start, sa.func.date(Order.paid_at, f"{offset:+d} seconds"))
             for (start, _), (_, offset) in zip(periods[1:], periods, strict=False)]
    return sa.case(*whens, else_=sa.func.date(Order.paid_at, f"{periods[-1][1]:+d} seconds")), _as_date


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _sales_per_offer(session: Session, filters: StatsFilters) -> dict[int, tuple[int, int, int]]:
    """offer id -> (tickets, seats, revenue in cents) of the paid orders: one pass over the order lines."""
    stmt = (
        sa.select(OrderLine.offer_id, sa.func.sum(OrderLine.quantity),
                  sa.func.sum(OrderLine.quantity * OrderLine.persons),
                  sa.func.sum(OrderLine.quantity * OrderLine.unit_price_cents))
        .join(Order, Order.id == OrderLine.order_id)
        .where(*_paid_conditions(filters))
        .group_by(OrderLine.offer_id)
    )
    return {offer_id: (int(tickets), int(seats), int(revenue))
            for offer_id, tickets, seats, revenue in session.execute(stmt)}


def _sales_per_day(session: Session, filters: StatsFilters) -> dict[date, tuple[int, int]]:
    """Paris day -> (orders, revenue in cents). Without an event filter the orders table alone
    answers (an order's total is the sum of its lines); with one, that event's lines do. An
    order is in one group only, so the groups' distinct counts add up."""
    bucket, day_of = _day_bucket(session, filters)
    bucket = bucket.label("bucket")
    if filters.event_id is None:
        stmt = (sa.select(bucket, sa.func.count(), sa.func.sum(Order.total_cents))
                .where(*_paid_conditions(filters, lines=False)).group_by(bucket))
    else:
        stmt = (sa.select(bucket, sa.func.count(sa.distinct(Order.id)),
                          sa.func.sum(OrderLine.quantity * OrderLine.unit_price_cents))
                .join(OrderLine, OrderLine.order_id == Order.id)
                .where(*_paid_conditions(filters)).group_by(bucket))
    per_day: dict[date, tuple[int, int]] = {}
    for value, orders, revenue in session.execute(stmt):
        day = day_of(value)
        day_orders, day_revenue = per_day.get(day, (0, 0))
        per_day[day] = (day_orders + int(orders), day_revenue + int(revenue or 0))
    return per_day


def _check_ins(session: Session, filters: StatsFilters) -> dict[int, tuple[int, int]]:
    """event id -> (tickets checked in, persons admitted) in the period."""
    stmt = (sa.select(Ticket.event_id, sa.func.count(), sa.func.sum(Ticket.persons))
            .where(Ticket.checked_in_at.is_not(None), *_in_range(Ticket.checked_in_at, filters))
            .group_by(Ticket.event_id))
    if filters.event_id is not None:
        stmt = stmt.where(Ticket.event_id == filters.event_id)
    return {event_id: (int(tickets), int(persons or 0)) for event_id, tickets, persons in session.execute(stmt)}


def _catalogue(session: Session, filters: StatsFilters):
    """The events and offers the charts list (all of them, sold or not), in programme order."""
    events = sa.select(Event.id, Event.title, Event.starts_at, Event.capacity).order_by(Event.starts_at, Event.id)
    offers = (sa.select(Offer.id, Offer.name, Offer.event_id, Event.title).join(Event, Event.id == Offer.event_id)
              .order_by(Event.starts_at, Event.id, Offer.persons, Offer.id))
    if filters.event_id is not None:
        events = events.where(Event.id == filters.event_id)
        offers = offers.where(Offer.event_id == filters.event_id)
    return session.execute(events).all(), session.execute(offers).all()


def _days_series(per_day: dict[date, tuple[int, int]]) -> list[dict]:
    """Every day from the first to the last sale, the days without sales at zero."""
    if not per_day:
        return []
    first, last = min(per_day), max(per_day)
    series = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        orders, revenue = per_day.get(day, (0, 0))
        series.append({"day": day.isoformat(), "orders": orders, "revenue_cents": revenue})
    return series


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def fill_rate(seats_sold: int, capacity: int) -> float:
    """Percentage with one decimal; an event without seats is 0 % full."""
    if capacity <= 0:
        return 0.0
    return round(100 * seats_sold / capacity, 1)


def dashboard_stats(session: Session, filters: StatsFilters) -> dict:
    """Everything the dashboard shows, as plain JSON-ready values (cents are integers).

    A fixed handful of GROUP BY statements whatever the number of orders: one pass over the
    paid order lines (per offer, hence per event), one over the paid orders (per day), one
    over the checked-in tickets, and the catalogue's own rows.
    """
    events, offers = _catalogue(session, filters)
    per_offer = _sales_per_offer(session, filters)
    per_day = _sales_per_day(session, filters)
    check_ins = _check_ins(session, filters)

    offer_rows, per_event = [], {}
    for offer_id, name, event_id, title in offers:
        tickets, seats, revenue = per_offer.get(offer_id, (0, 0, 0))
        offer_rows.append({"offer_id": offer_id, "offer": name, "event_id": event_id, "event": title,
                           "label": f"{title} — {name}", "tickets": tickets, "seats": seats, "revenue_cents": revenue})
        sold = per_event.setdefault(event_id, [0, 0])
        sold[0] += tickets
        sold[1] += seats
    event_rows = []
    for event_id, title, starts_at, capacity in events:
        tickets, seats = per_event.get(event_id, (0, 0))
        checked_in, persons = check_ins.get(event_id, (0, 0))
        event_rows.append({"event_id": event_id, "event": title, "starts_at": _iso(starts_at), "capacity": capacity,
                           "seats_sold": seats, "fill_rate": fill_rate(seats, capacity), "tickets_sold": tickets,
                           "checked_in": checked_in, "persons_checked_in": persons})
    return {
        "filters": {"event_id": filters.event_id,
                    "date_from": filters.date_from.isoformat() if filters.date_from else None,
                    "date_to": filters.date_to.isoformat() if filters.date_to else None},
        "offers": offer_rows,
        "days": _days_series(per_day),
        "events": event_rows,
        "totals": {
            "orders": sum(orders for orders, _ in per_day.values()),
            "tickets": sum(row["tickets"] for row in offer_rows),
            "revenue_cents": sum(row["revenue_cents"] for row in offer_rows),
            "seats": sum(row["seats"] for row in offer_rows),
            "checked_in": sum(row["checked_in"] for row in event_rows),
        },
    }


def catalogue_overview(session: Session) -> dict:
    """The events for the dashboard's filter menu, in programme order, and the number of paid
    orders. Both only move when the stats version does (events and orders are watched), so
    they are cached beside the figures instead of being read on every view."""
    events = session.execute(sa.select(Event.id, Event.title).order_by(Event.starts_at, Event.id))
    paid_orders = session.scalar(sa.select(sa.func.count()).select_from(Order).where(Order.status == PAID))
    return {"events": [(event_id, title) for event_id, title in events], "paid_orders": paid_orders}


# --------------------------------------------------------------------------- cache
def stats_version(cache: CacheLike) -> str:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, secrets.token_hex(8), timeout=0)
        version = cache.get(VERSION_KEY) or "none"
    return version


def bump_stats_version(cache: CacheLike) -> None:
    """Make every cached statistic stale. A fresh random token (not a counter) means a
    version key lost to eviction can never bring back an old cached result."""
    cache.set(VERSION_KEY, secrets.token_hex(8), timeout=0)


def stats_key(version: str, name: str) -> str:
    """The cache key of a value derived from the statistics (figures, rendered HTML) for a version."""
    return f"stats:{version}:{name}"


# --------------------------------------------------------------------------- invalidation
STATS_MODELS = (Order, OrderLine, Ticket, CheckIn, Event, Offer, User, Person, Invitation)
STATS_TABLES = frozenset(model.__table__.name for model in STATS_MODELS)
# Columns whose changes do not move any figure: seats held by pending orders, hold windows.
IGNORED_COLUMNS = {"events": {"seats_taken"}, "orders": {"expires_at", "idempotency_key"}}
# The overview's accounts counts (app/services/admin_counts.py) move with a new or deleted row, or
# with these columns only: a sign-in, a new password or a second factor leaves them as they are.
COUNTED_COLUMNS = {"users": {"role", "disabled_at"}, "persons": {"user_id"},
                   "invitations": {"expires_at", "used_at", "revoked_at"}}
_FLAG = "stats_changed"
# Execution options of a statement that writes to a table the statistics read without changing a
# figure (a pending order's INSERT): `statement.execution_options(**STATS_UNAFFECTED)`.
STATS_UNAFFECTED = {"stats_unaffected": True}
_FLAG_SOON = "stats_changed_soon"
_SOON_ENOUGH = "stats_refresh_soon_enough"  # allow_stats_refresh_soon: this transaction's changes may wait


def _changed_columns(obj) -> set[str]:
    state = sa.inspect(obj)
    return {attr.key for attr in state.attrs if attr.history.has_changes()}


def object_changes_stats(obj, *, new: bool = False, deleted: bool = False) -> bool:
    table = getattr(getattr(obj, "__table__", None), "name", None)
    if table not in STATS_TABLES:
        return False
    if deleted:
        return True
    if new:
        # A pending order (and its lines) sells nothing until it is paid.
        if isinstance(obj, Order):
            return obj.status == PAID
        return not isinstance(obj, OrderLine)
    changed = _changed_columns(obj) - IGNORED_COLUMNS.get(table, set())
    if table in COUNTED_COLUMNS:
        return bool(changed & COUNTED_COLUMNS[table])
    if isinstance(obj, Order):
        return bool(changed & {"status", "paid_at", "cancelled_at"})
    return bool(changed)


def statement_changes_stats(statement) -> bool:
    """A bulk INSERT/UPDATE/DELETE run through the session (e.g. a conditional check-in UPDATE)."""
    table = getattr(statement, "table", None)
    if getattr(table, "name", None) not in STATS_TABLES or statement.get_execution_options().get("stats_unaffected"):
        return False
    values = getattr(statement, "_values", None)
    if not values:
        return True  # unknown shape: assume it matters
    keys = {getattr(key, "key", None) or getattr(key, "name", None) or str(key) for key in values}
    if table.name in COUNTED_COLUMNS:
        return bool(keys & COUNTED_COLUMNS[table.name])
    return bool(keys - IGNORED_COLUMNS.get(table.name, set()))


def note_stats_change(session: Session, *, soon: bool = False) -> None:
    """For a change the listeners cannot see (the check-in statement, which psycopg runs on the
    session's connection): the session's next commit replaces the statistics version like any
    change it saw.
    `soon`: the replacement may come a moment later, shared with other such changes (the
    `on_change_soon` of `install_stats_invalidation`), for the gates' stream of check-ins."""
    session.info[_FLAG_SOON if soon else _FLAG] = True


def allow_stats_refresh_soon(session: Session) -> None:
    """Whatever this transaction changes in the statistics (seen by the listeners or noted), the
    replacement of their version may come a moment later, shared with other such changes: for a
    customer's payment, of which an on-sale makes hundreds a second, as for the check-ins."""
    session.info[_SOON_ENOUGH] = True


def stats_changed_outside(session: object, *, soon: bool = False) -> None:
    """For a change committed on a connection of its own, outside `session`'s transactions (the
    scanner API's check-in statement): run now what the callbacks installed for `session` would
    run at a commit that included it. Committing `session` for that instead took as many
    instructions as a sixteenth of the whole scan (bench/README.md). Nothing runs for a session
    with no callbacks installed (`session` is the target given to `install_stats_invalidation`)."""
    callbacks = _callbacks.get(id(session))
    if callbacks is not None:
        (callbacks[1] if soon else callbacks[0])()


def _after_flush(session: Session, _flush_context) -> None:
    if session.info.get(_FLAG):
        return
    if (any(object_changes_stats(o, new=True) for o in session.new)
            or any(object_changes_stats(o, deleted=True) for o in session.deleted)
            or any(object_changes_stats(o) for o in session.dirty)):
        session.info[_FLAG] = True


def _do_orm_execute(state) -> None:
    if (state.is_insert or state.is_update or state.is_delete) and statement_changes_stats(state.statement):
        state.session.info[_FLAG] = True


def _after_soft_rollback(session: Session, previous_transaction) -> None:
    # Forget pending changes only when the whole transaction is gone, not a savepoint.
    if previous_transaction.parent is None:
        session.info.pop(_FLAG, None)
        session.info.pop(_FLAG_SOON, None)
        session.info.pop(_SOON_ENOUGH, None)


_callbacks: dict[int, tuple[Callable[[], None], Callable[[], None]]] = {}


def install_stats_invalidation(target, on_change: Callable[[], None],
                               on_change_soon: Callable[[], None] | None = None) -> None:
    """Call `on_change()` after each commit that changed what the statistics read, or
    `on_change_soon()` (default: `on_change`) when all its changes were noted `soon`.

    `target` is a Session class, sessionmaker or scoped_session (e.g. `db.session`).
    Installing again for the same target only replaces the callbacks.
    """
    key = id(target)
    first_time = key not in _callbacks
    _callbacks[key] = (on_change, on_change_soon or on_change)
    if not first_time:
        return

    def after_commit(session: Session) -> None:
        now, soon = session.info.pop(_FLAG, False), session.info.pop(_FLAG_SOON, False)
        if session.info.pop(_SOON_ENOUGH, False):
            now, soon = False, now or soon
        if now:
            _callbacks[key][0]()
        elif soon:
            _callbacks[key][1]()

    sa_event.listen(target, "after_flush", _after_flush)
    sa_event.listen(target, "do_orm_execute", _do_orm_execute)
    sa_event.listen(target, "after_commit", after_commit)
    sa_event.listen(target, "after_soft_rollback", _after_soft_rollback)
