"""CSV exports of orders and check-ins, streamed row by row and safe to open in a spreadsheet.

Rows come from the database in batches (`yield_per`) and leave as CSV chunks, so an export
of 100 000 orders never sits in memory. A cell a spreadsheet could read as a formula
(starting with =, +, -, @, tab or carriage return) gets a leading single quote (OWASP
"CSV injection"); customer names and event titles are typed by people, so they are suspect.
Nothing secret (user keys, purchase keys, card numbers) is ever exported.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from app.models import CheckIn, Event, Offer, Order, OrderLine, Ticket, User
from app.services.stats import PARIS, StatsFilters

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
BATCH_ROWS = 500

ORDER_HEADER = [
    "order_code", "status", "ordered_at", "paid_at", "cancelled_at", "customer_name", "customer_email",
    "event", "event_starts_at", "offer", "quantity", "persons_per_unit", "unit_price_eur", "line_total_eur",
    "currency",
]
CHECK_IN_HEADER = [
    "scanned_at", "verdict", "event", "ticket_number", "holder_name", "offer", "persons", "order_code",
    "staff_name", "staff_email",
]


def neutralise(value) -> str:
    """The cell as text, with a leading ' when a spreadsheet would run it as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def euros(cents: int | None) -> str:
    if cents is None:
        return ""
    return f"{cents // 100}.{cents % 100:02d}"


def paris_time(moment: datetime | None) -> str:
    """ISO 8601 in Paris time with its offset, e.g. 2025-07-01T21:10:00+02:00."""
    if moment is None:
        return ""
    return moment.astimezone(PARIS).isoformat(timespec="seconds")


def csv_chunks(header: list[str], rows: Iterable[Iterable], *, batch: int = BATCH_ROWS) -> Iterator[str]:
    """CSV text in chunks of `batch` rows; every cell goes through `neutralise`.

    Starts with a UTF-8 byte order mark so spreadsheet programs read accents right.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow([neutralise(cell) for cell in row])
        if count % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _range(column, filters: StatsFilters) -> list:
    start, end = filters.utc_bounds()
    return [c for c in (column >= start if start else None, column < end if end else None) if c is not None]


def order_rows(session: Session, filters: StatsFilters, *, status: str | None = None) -> Iterator[list]:
    """One row per order line, oldest order first; filters on the order date (Paris days)."""
    stmt = (
        sa.select(Order.code, Order.status, Order.created_at, Order.paid_at, Order.cancelled_at,
                  User.first_name, User.last_name, User.email, Event.title, Event.starts_at, Offer.name,
                  OrderLine.quantity, OrderLine.persons, OrderLine.unit_price_cents, Order.currency)
        .join(User, User.id == Order.user_id)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(Event, Event.id == OrderLine.event_id)
        .join(Offer, Offer.id == OrderLine.offer_id)
        .where(*_range(Order.created_at, filters))
        .order_by(Order.created_at, Order.id, OrderLine.id)
        .execution_options(yield_per=BATCH_ROWS)
    )
    if filters.event_id is not None:
        stmt = stmt.where(OrderLine.event_id == filters.event_id)
    if status:
        stmt = stmt.where(Order.status == status)
    for (code, order_status, created, paid, cancelled, first, last, email, title, starts, offer, quantity,
         persons, unit_price, currency) in session.execute(stmt):
        yield [code, order_status, paris_time(created), paris_time(paid), paris_time(cancelled),
               f"{first} {last}".strip(), email, title, paris_time(starts), offer, quantity, persons,
               euros(unit_price), euros(quantity * unit_price), currency]


def check_in_rows(session: Session, filters: StatsFilters) -> Iterator[list]:
    """Every scan answer (valid or refused), oldest first."""
    staff = aliased(User)
    stmt = (
        sa.select(CheckIn.scanned_at, CheckIn.verdict, Event.title, Ticket.number, Ticket.holder_name, Offer.name,
                  Ticket.persons, Order.code, staff.first_name, staff.last_name, staff.email)
        .outerjoin(Ticket, Ticket.id == CheckIn.ticket_id)
        .outerjoin(Event, Event.id == sa.func.coalesce(CheckIn.event_id, Ticket.event_id))
        .outerjoin(Offer, Offer.id == Ticket.offer_id)
        .outerjoin(Order, Order.id == Ticket.order_id)
        .outerjoin(staff, staff.id == CheckIn.staff_id)
        .where(*_range(CheckIn.scanned_at, filters))
        .order_by(CheckIn.scanned_at, CheckIn.id)
        .execution_options(yield_per=BATCH_ROWS)
    )
    if filters.event_id is not None:
        stmt = stmt.where(sa.func.coalesce(CheckIn.event_id, Ticket.event_id) == filters.event_id)
    for (scanned, verdict, title, number, holder, offer, persons, code, staff_first, staff_last,
         staff_email) in session.execute(stmt):
        staff_name = f"{staff_first or ''} {staff_last or ''}".strip()
        yield [paris_time(scanned), verdict, title, number, holder, offer, persons, code, staff_name, staff_email]


def export_filename(kind: str, filters: StatsFilters, now: datetime) -> str:
    parts = [f"guichet-{kind}"]
    if filters.event_id is not None:
        parts.append(f"event{filters.event_id}")
    if filters.date_from:
        parts.append(f"from-{filters.date_from.isoformat()}")
    if filters.date_to:
        parts.append(f"to-{filters.date_to.isoformat()}")
    parts.append(now.astimezone(PARIS).strftime("%Y%m%d-%H%M"))
    return "-".join(parts) + ".csv"
