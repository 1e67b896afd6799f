"""Sales statistics for the admin dashboard, aggregated in SQL and cached behind a version token.

Every figure is a GROUP BY in the database: no order is ever loaded into Python, so the
dashboard stays fast with hundreds of thousands of orders. Only paid orders count as sales;
a cancelled or refunded order leaves the figures. Days are Europe/Paris days.

Caching: the result for a set of filters is stored under ``stats:<version>:<filters>``.
The version is a random token kept in the same cache; any committed change to the data the
statistics read (a sale, a cancellation, a check-in, a catalogue edit) replaces it, so
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

from app.models import CheckIn, Event, Offer, Order, OrderLine, OrderStatus, Ticket

PARIS = ZoneInfo("Europe/Paris")
VERSION_KEY = "stats:version"
DEFAULT_TIMEOUT = 300
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


def _paid_lines_conditions(filters: StatsFilters) -> list:
    conditions = [Order.status == PAID, *_in_range(Order.paid_at, filters)]
    if filters.event_id is not None:
        conditions.append(OrderLine.event_id == filters.event_id)
    return conditions


def _events_select(filters: StatsFilters):
    stmt = sa.select(Event.id, Event.title, Event.starts_at, Event.capacity).order_by(Event.starts_at, Event.id)
    if filters.event_id is not None:
        stmt = stmt.where(Event.id == filters.event_id)
    return stmt


def sales_per_offer(session: Session, filters: StatsFilters) -> list[dict]:
    """Every offer (sold or not) with its tickets sold and revenue in the period."""
    sold = (
        sa.select(
            OrderLine.offer_id.label("offer_id"),
            sa.func.sum(OrderLine.quantity).label("tickets"),
            sa.func.sum(OrderLine.quantity * OrderLine.persons).label("seats"),
            sa.func.sum(OrderLine.quantity * OrderLine.unit_price_cents).label("revenue"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(*_paid_lines_conditions(filters))
        .group_by(OrderLine.offer_id)
        .subquery()
    )
    stmt = (
        sa.select(Offer.id, Offer.name, Offer.event_id, Event.title, sold.c.tickets, sold.c.seats, sold.c.revenue)
        .join(Event, Event.id == Offer.event_id)
        .outerjoin(sold, sold.c.offer_id == Offer.id)
        .order_by(Event.starts_at, Event.id, Offer.persons, Offer.id)
    )
    if filters.event_id is not None:
        stmt = stmt.where(Offer.event_id == filters.event_id)
    return [
        {"offer_id": offer_id, "offer": name, "event_id": event_id, "event": title,
         "label": f"{title} — {name}", "tickets": int(tickets or 0), "seats": int(seats or 0),
         "revenue_cents": int(revenue or 0)}
        for offer_id, name, event_id, title, tickets, seats, revenue in session.execute(stmt)
    ]


def _day_bucket(session: Session):
    """A SQL expression for the Paris day of `paid_at` (PostgreSQL), or its UTC hour (SQLite).

    SQLite has no time-zone database; Paris is a whole number of hours from UTC, so
    grouping by UTC hour and mapping each hour to its Paris day in Python is exact.
    """
    if session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("Europe/Paris", Order.paid_at), sa.Date), "day"
    return sa.func.strftime("%Y-%m-%d %H", Order.paid_at), "hour"


def _bucket_day(bucket, kind: str) -> date:
    if kind == "day":
        return bucket if isinstance(bucket, date) else date.fromisoformat(str(bucket))
    return paris_day(datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC))


def sales_per_day(session: Session, filters: StatsFilters) -> list[dict]:
    """Orders, tickets and revenue per Paris day, with the days without sales in between at zero."""
    bucket, kind = _day_bucket(session)
    totals_stmt = (
        sa.select(
            bucket.label("bucket"),
            sa.func.count(sa.distinct(Order.id)),
            sa.func.sum(OrderLine.quantity),
            sa.func.sum(OrderLine.quantity * OrderLine.unit_price_cents),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(*_paid_lines_conditions(filters))
        .group_by(bucket)
    )
    days: dict[date, dict] = {}
    for value, orders, tickets, revenue in session.execute(totals_stmt):
        day = _bucket_day(value, kind)
        entry = days.setdefault(day, {"orders": 0, "tickets": 0, "revenue_cents": 0})
        # An order's lines share its paid_at, so its distinct count never spans two buckets.
        entry["orders"] += int(orders or 0)
        entry["tickets"] += int(tickets or 0)
        entry["revenue_cents"] += int(revenue or 0)
    if not days:
        return []
    first, last = min(days), max(days)
    result = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        result.append({"day": day.isoformat(), **days.get(day, {"orders": 0, "tickets": 0, "revenue_cents": 0})})
    return result


def per_event(session: Session, filters: StatsFilters) -> list[dict]:
    """Fill rate (seats sold in the period / capacity) and check-ins for each event."""
    seats = (
        sa.select(OrderLine.event_id.label("event_id"),
                  sa.func.sum(OrderLine.quantity * OrderLine.persons).label("seats"))
        .join(Order, Order.id == OrderLine.order_id)
        .where(*_paid_lines_conditions(filters))
        .group_by(OrderLine.event_id)
        .subquery()
    )
    valid = (
        sa.select(Ticket.event_id.label("event_id"), sa.func.count().label("tickets"))
        .where(Ticket.voided_at.is_(None))
        .group_by(Ticket.event_id)
        .subquery()
    )
    entered = (
        sa.select(Ticket.event_id.label("event_id"), sa.func.count().label("tickets"),
                  sa.func.sum(Ticket.persons).label("persons"))
        .where(Ticket.checked_in_at.is_not(None), *_in_range(Ticket.checked_in_at, filters))
        .group_by(Ticket.event_id)
        .subquery()
    )
    base = _events_select(filters).subquery()
    stmt = (
        sa.select(base.c.id, base.c.title, base.c.starts_at, base.c.capacity, seats.c.seats,
                  valid.c.tickets, entered.c.tickets, entered.c.persons)
        .outerjoin(seats, seats.c.event_id == base.c.id)
        .outerjoin(valid, valid.c.event_id == base.c.id)
        .outerjoin(entered, entered.c.event_id == base.c.id)
        .order_by(base.c.starts_at, base.c.id)
    )
    rows = []
    for event_id, title, starts_at, capacity, sold, valid_tickets, checked_in, persons_in in session.execute(stmt):
        sold = int(sold or 0)
        rows.append({
            "event_id": event_id, "event": title, "starts_at": _iso(starts_at), "capacity": capacity,
            "seats_sold": sold, "fill_rate": fill_rate(sold, capacity),
            "tickets_valid": int(valid_tickets or 0), "checked_in": int(checked_in or 0),
            "persons_checked_in": int(persons_in or 0),
        })
    return rows


def _iso(value) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # a subquery loses the UTCDateTime type on SQLite
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return str(datetime.fromisoformat(str(value)).replace(tzinfo=UTC).isoformat())


def fill_rate(seats_sold: int, capacity: int) -> float:
    """Percentage with one decimal; an event without seats is 0 % full."""
    if capacity <= 0:
        return 0.0
    return round(100 * seats_sold / capacity, 1)


def dashboard_stats(session: Session, filters: StatsFilters) -> dict:
    """Everything the dashboard shows, as plain JSON-ready values (cents are integers)."""
    offers = sales_per_offer(session, filters)
    days = sales_per_day(session, filters)
    events = per_event(session, filters)
    totals = {
        "orders": sum(d["orders"] for d in days),
        "tickets": sum(o["tickets"] for o in offers),
        "revenue_cents": sum(o["revenue_cents"] for o in offers),
        "seats": sum(o["seats"] for o in offers),
        "checked_in": sum(e["checked_in"] for e in events),
    }
    return {
        "filters": {"event_id": filters.event_id,
                    "date_from": filters.date_from.isoformat() if filters.date_from else None,
                    "date_to": filters.date_to.isoformat() if filters.date_to else None},
        "offers": offers, "days": days, "events": events, "totals": totals,
    }


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


def cached_dashboard_stats(session: Session, cache: CacheLike, filters: StatsFilters, *,
                           timeout: int = DEFAULT_TIMEOUT) -> dict:
    key = f"stats:{stats_version(cache)}:{filters.cache_key()}"
    data = cache.get(key)
    if data is None:
        data = dashboard_stats(session, filters)
        cache.set(key, data, timeout=timeout)
    return data


# --------------------------------------------------------------------------- invalidation
STATS_MODELS = (Order, OrderLine, Ticket, CheckIn, Event, Offer)
STATS_TABLES = frozenset(model.__table__.name for model in STATS_MODELS)
# Columns whose changes do not move any figure: seats held by pending orders, hold windows.
IGNORED_COLUMNS = {"events": {"seats_taken"}, "orders": {"expires_at", "idempotency_key"}}
_FLAG = "stats_changed"


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
    if isinstance(obj, Order):
        return bool(changed & {"status", "paid_at", "cancelled_at"})
    return bool(changed)


def statement_changes_stats(statement) -> bool:
    """A bulk INSERT/UPDATE/DELETE run through the session (e.g. a conditional check-in UPDATE)."""
    table = getattr(statement, "table", None)
    if getattr(table, "name", None) not in STATS_TABLES:
        return False
    values = getattr(statement, "_values", None)
    if not values:
        return True  # unknown shape: assume it matters
    keys = {getattr(key, "key", None) or getattr(key, "name", None) or str(key) for key in values}
    return bool(keys - IGNORED_COLUMNS.get(table.name, set()))


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


_callbacks: dict[int, Callable[[], None]] = {}


def install_stats_invalidation(target, on_change: Callable[[], None]) -> None:
    """Call `on_change()` after each commit that changed what the statistics read.

    `target` is a Session class, sessionmaker or scoped_session (e.g. `db.session`).
    Installing again for the same target only replaces the callback.
    """
    key = id(target)
    first_time = key not in _callbacks
    _callbacks[key] = on_change
    if not first_time:
        return

    def after_commit(session: Session) -> None:
        if session.info.pop(_FLAG, False):
            _callbacks[key]()

    sa_event.listen(target, "after_flush", _after_flush)
    sa_event.listen(target, "do_orm_execute", _do_orm_execute)
    sa_event.listen(target, "after_commit", after_commit)
    sa_event.listen(target, "after_soft_rollback", _after_soft_rollback)
