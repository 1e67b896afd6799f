"""What admins do to the catalogue: create, edit, publish and unpublish events and offers.

Every rule is checked here (the forms only check shapes), and a refused change leaves the
database untouched. Sold things are protected: capacity never drops below the seats already
sold or held, and an offer (or event) with sales is never deleted, only unpublished —
its order lines and tickets keep pointing at it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.models import (
    PERSONS_BY_KIND,
    Event,
    Offer,
    OfferKind,
    Order,
    OrderLine,
    OrderStatus,
)
from app.services.catalogue import mark_catalogue_changed
from app.services.demo import slugify
from app.services.errors import Conflict, DomainError, NotFound

SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_CAPACITY = 200_000
MAX_PRICE_CENTS = 1_000_000  # €10,000
MAX_CUSTOM_PERSONS = 20
KINDS = tuple(kind.value for kind in OfferKind)


@dataclass(frozen=True)
class EventInput:
    title: str
    sport: str
    venue: str
    starts_at: datetime
    capacity: int
    description: str = ""
    slug: str | None = None  # derived from the title when empty


@dataclass(frozen=True)
class OfferInput:
    kind: str
    price_cents: int
    name: str | None = None  # defaults to the kind's name (Solo, Duo, Family)
    persons: int | None = None  # required for a custom kind only


def get_event(session: Session, event_id: int) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise NotFound()
    return event


def get_offer(session: Session, event_id: int, offer_id: int) -> Offer:
    offer = session.get(Offer, offer_id)
    if offer is None or offer.event_id != event_id:
        raise NotFound()
    return offer


def offer_sales(session: Session, event_id: int) -> dict[int, dict[str, int]]:
    """Per offer of the event: units on any order line (its sales history) and units paid now."""
    paid = sa.case((Order.status == OrderStatus.PAID.value, OrderLine.quantity), else_=0)
    rows = session.execute(
        sa.select(OrderLine.offer_id, sa.func.sum(OrderLine.quantity), sa.func.sum(paid))
        .join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.event_id == event_id)
        .group_by(OrderLine.offer_id)
    )
    return {offer_id: {"units": int(units or 0), "paid": int(paid_units or 0)} for offer_id, units, paid_units in rows}


def events_query():
    """Every event in start order, with its offers loaded; the caller paginates."""
    return sa.select(Event).options(selectinload(Event.offers)).order_by(Event.starts_at, Event.id)


def cents_to_decimal(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def offer_has_sales(session: Session, offer_id: int) -> bool:
    return session.scalar(sa.select(sa.exists().where(OrderLine.offer_id == offer_id)))


def event_has_sales(session: Session, event_id: int) -> bool:
    return session.scalar(sa.select(sa.exists().where(OrderLine.event_id == event_id)))


# --------------------------------------------------------------------------- events
def _check_event(session: Session, data: EventInput, *, event: Event | None, now: datetime) -> str:
    """Validate and return the slug to use."""
    if not data.title.strip():
        raise DomainError("event_title_missing", field="title")
    if not data.sport.strip():
        raise DomainError("event_sport_missing", field="sport")
    if not data.venue.strip():
        raise DomainError("event_venue_missing", field="venue")
    if data.starts_at.tzinfo is None:
        raise ValueError("starts_at must be timezone-aware")
    start_changed = event is None or data.starts_at != event.starts_at
    if start_changed and data.starts_at <= now:
        raise DomainError("event_start_in_past", field="starts_at")
    if not 1 <= data.capacity <= MAX_CAPACITY:
        raise DomainError("event_capacity_invalid", field="capacity", maximum=MAX_CAPACITY)
    if event is not None and data.capacity < event.seats_taken:
        raise DomainError("event_capacity_below_taken", field="capacity", taken=event.seats_taken)
    return _slug_for(session, data, event)


def _slug_for(session: Session, data: EventInput, event: Event | None) -> str:
    wanted = (data.slug or "").strip().lower()
    taken = sa.select(Event.id).where(Event.slug == sa.bindparam("slug"))
    if event is not None:
        taken = taken.where(Event.id != event.id)
    if wanted:
        if not SLUG_PATTERN.fullmatch(wanted) or len(wanted) > 180:
            raise DomainError("event_slug_invalid", field="slug")
        if session.scalar(taken, {"slug": wanted}) is not None:
            raise DomainError("event_slug_taken", field="slug")
        return wanted
    base = slugify(data.title)[:170] or "event"
    candidate, counter = base, 1
    while session.scalar(taken, {"slug": candidate}) is not None:
        counter += 1
        candidate = f"{base}-{counter}"
    return candidate


def create_event(session: Session, data: EventInput, *, now: datetime) -> Event:
    """A new event is a draft (unpublished) until it has an offer and an admin publishes it."""
    slug = _check_event(session, data, event=None, now=now)
    event = Event(title=data.title.strip(), slug=slug, sport=data.sport.strip(), venue=data.venue.strip(),
                  starts_at=data.starts_at, capacity=data.capacity, seats_taken=0,
                  description=data.description.strip(), published=False, created_at=now)
    session.add(event)
    mark_catalogue_changed(session)
    _commit(session, "event_slug_taken", "slug")
    return event


def update_event(session: Session, event_id: int, data: EventInput, *, now: datetime) -> Event:
    event = _locked_event(session, event_id)
    try:
        slug = _check_event(session, data, event=event, now=now)
    except DomainError:
        session.rollback()
        raise
    event.title, event.slug = data.title.strip(), slug
    event.sport, event.venue = data.sport.strip(), data.venue.strip()
    event.starts_at, event.capacity = data.starts_at, data.capacity
    event.description = data.description.strip()
    mark_catalogue_changed(session)
    # The CHECK constraint seats_taken <= capacity backs the test above if a sale slipped in between.
    _commit(session, "event_capacity_below_taken", "capacity", taken=event.seats_taken)
    return event


def set_event_published(session: Session, event_id: int, published: bool) -> Event:
    event = get_event(session, event_id)
    if published and not any(offer.published for offer in event.offers):
        raise DomainError("event_needs_published_offer")
    event.published = published
    mark_catalogue_changed(session)
    session.commit()
    return event


def delete_event(session: Session, event_id: int) -> None:
    event = get_event(session, event_id)
    if event_has_sales(session, event_id):
        raise Conflict("event_has_sales")
    session.delete(event)
    mark_catalogue_changed(session)
    session.commit()


def _locked_event(session: Session, event_id: int) -> Event:
    event = session.scalar(sa.select(Event).where(Event.id == event_id).with_for_update())
    if event is None:
        raise NotFound()
    return event


# --------------------------------------------------------------------------- offers
def _check_offer(session: Session, event: Event, data: OfferInput, *, offer: Offer | None) -> tuple[str, int]:
    """Validate and return (name, persons)."""
    if data.kind not in KINDS:
        raise DomainError("offer_kind_invalid", field="kind")
    if data.kind == OfferKind.CUSTOM.value:
        name = (data.name or "").strip()
        if not name:
            raise DomainError("offer_name_missing", field="name")
        if data.persons is None or not 1 <= data.persons <= MAX_CUSTOM_PERSONS:
            raise DomainError("offer_persons_invalid", field="persons", maximum=MAX_CUSTOM_PERSONS)
        persons = data.persons
    else:
        name = (data.name or "").strip() or data.kind.capitalize()
        persons = PERSONS_BY_KIND[data.kind]
    if data.price_cents <= 0:
        raise DomainError("offer_price_not_positive", field="price")
    if data.price_cents > MAX_PRICE_CENTS:
        raise DomainError("offer_price_too_high", field="price", maximum=MAX_PRICE_CENTS // 100)
    if offer is not None and (data.kind != offer.kind or persons != offer.persons) and offer_has_sales(session, offer.id):
        raise DomainError("offer_kind_locked", field="kind")
    same_name = sa.select(Offer.id).where(Offer.event_id == event.id, sa.func.lower(Offer.name) == name.lower())
    if offer is not None:
        same_name = same_name.where(Offer.id != offer.id)
    if session.scalar(same_name) is not None:
        raise DomainError("offer_name_taken", field="name")
    return name, persons


def create_offer(session: Session, event_id: int, data: OfferInput) -> Offer:
    event = get_event(session, event_id)
    name, persons = _check_offer(session, event, data, offer=None)
    offer = Offer(event_id=event.id, kind=data.kind, name=name, persons=persons, price_cents=data.price_cents,
                  published=False)
    session.add(offer)
    mark_catalogue_changed(session)
    session.commit()
    return offer


def update_offer(session: Session, event_id: int, offer_id: int, data: OfferInput) -> Offer:
    """Price and name may change after sales (order lines keep the price paid); persons may not."""
    offer = get_offer(session, event_id, offer_id)
    name, persons = _check_offer(session, offer.event, data, offer=offer)
    offer.kind, offer.name, offer.persons, offer.price_cents = data.kind, name, persons, data.price_cents
    mark_catalogue_changed(session)
    session.commit()
    return offer


def set_offer_published(session: Session, event_id: int, offer_id: int, published: bool) -> Offer:
    offer = get_offer(session, event_id, offer_id)
    offer.published = published
    mark_catalogue_changed(session)
    session.commit()
    return offer


def delete_offer(session: Session, event_id: int, offer_id: int) -> None:
    """Refused once the offer has been sold: unpublish it instead."""
    offer = get_offer(session, event_id, offer_id)
    if offer_has_sales(session, offer.id):
        raise Conflict("offer_has_sales")
    session.delete(offer)
    mark_catalogue_changed(session)
    session.commit()


def _commit(session: Session, code: str, field: str, **params) -> None:
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise DomainError(code, field=field, **params) from error
