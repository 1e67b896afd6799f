"""The catalogue as customers see it: published sessions that have not started, their offers, seats left.

Writes that change what the catalogue shows call `mark_catalogue_changed(session)`, and sales,
cancellations and lapsed holds, which only move seats, `mark_seats_moved(session)`; the web layer
turns the flag into a cache invalidation once the transaction has committed (for seats, one for
all the sales of a moment: app/offers/cache.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload, selectinload

from app.models import Event
from app.services.errors import NotFound

CATALOGUE_CHANGED = "catalogue_changed"  # keys in Session.info
SEATS_MOVED = "catalogue_seats_moved"
FEW_SEATS_RATIO = 0.1
FEW_SEATS_MINIMUM = 20


def mark_catalogue_changed(session: Session) -> None:
    """Note that this transaction changes events or offers (the cache drops after commit)."""
    session.info[CATALOGUE_CHANGED] = True


def mark_seats_moved(session: Session) -> None:
    """Note that this transaction takes or gives back seats (the cache drops a moment after commit)."""
    session.info[SEATS_MOVED] = True


@dataclass(frozen=True)
class FilterOptions:
    sports: list[str]
    venues: list[str]
    days: list[date]  # local days (display time zone) with at least one session


@dataclass(frozen=True)
class Filters:
    sport: str | None = None
    venue: str | None = None
    day: date | None = None

    @property
    def active(self) -> bool:
        return bool(self.sport or self.venue or self.day)


def _on_sale(now: datetime):
    return sa.and_(Event.published.is_(True), Event.starts_at > now)


def filter_options(session: Session, *, now: datetime, zone: ZoneInfo) -> FilterOptions:
    rows = session.execute(sa.select(Event.sport, Event.venue, Event.starts_at).where(_on_sale(now))).all()
    return FilterOptions(
        sports=sorted({row.sport for row in rows}),
        venues=sorted({row.venue for row in rows}),
        days=sorted({row.starts_at.astimezone(zone).date() for row in rows}),
    )


def clean_filters(options: FilterOptions, *, sport: str | None, venue: str | None, day: str | None) -> Filters:
    """Keep only values that exist in the catalogue (unknown values are dropped, never echoed)."""
    parsed_day = None
    if day:
        try:
            parsed_day = date.fromisoformat(day)
        except ValueError:
            parsed_day = None
    return Filters(
        sport=sport if sport in options.sports else None,
        venue=venue if venue in options.venues else None,
        day=parsed_day if parsed_day in options.days else None,
    )


def list_events(session: Session, filters: Filters, *, now: datetime, zone: ZoneInfo) -> list[Event]:
    """Sessions on sale, soonest first, with their offers loaded in one extra query."""
    query = sa.select(Event).where(_on_sale(now)).options(selectinload(Event.offers))
    if filters.sport:
        query = query.where(Event.sport == filters.sport)
    if filters.venue:
        query = query.where(Event.venue == filters.venue)
    if filters.day:
        start = datetime.combine(filters.day, time(0), tzinfo=zone)
        end = datetime.combine(filters.day + timedelta(days=1), time(0), tzinfo=zone)
        query = query.where(Event.starts_at >= start.astimezone(UTC),
                            Event.starts_at < end.astimezone(UTC))
    return list(session.scalars(query.order_by(Event.starts_at, Event.id)))


def get_event(session: Session, slug: str) -> Event:
    """A published event by its slug (started ones too: the page then says sales are closed)."""
    event = session.execute(  # one statement: during a rush every sale rebuilds this page
        sa.select(Event).where(Event.slug == slug, Event.published.is_(True)).options(joinedload(Event.offers))
    ).unique().scalar()
    if event is None:
        raise NotFound()
    return event


def availability(event: Event) -> str:
    """'sold_out', 'few' or 'available': the label shown beside an event."""
    left = event.seats_left
    if left <= 0:
        return "sold_out"
    if left <= max(FEW_SEATS_MINIMUM, int(event.capacity * FEW_SEATS_RATIO)):
        return "few"
    return "available"


def offers_on_sale(event: Event) -> list:
    return [offer for offer in event.offers if offer.published]


def lowest_price_cents(event: Event) -> int | None:
    prices = [offer.price_cents for offer in offers_on_sale(event)]
    return min(prices) if prices else None
