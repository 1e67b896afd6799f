"""The catalogue: events (competition sessions) and the offers sold for them."""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class OfferKind(str, enum.Enum):
    SOLO = "solo"
    DUO = "duo"
    FAMILY = "family"
    CUSTOM = "custom"


PERSONS_BY_KIND = {OfferKind.SOLO.value: 1, OfferKind.DUO.value: 2, OfferKind.FAMILY.value: 4}


class EventFacts:
    """What an event's `capacity` and `seats_taken` say, for the model and for the cart's offer
    rows (app/services/cart.py) alike."""

    @property
    def seats_left(self) -> int:
        return max(self.capacity - self.seats_taken, 0)


class Event(EventFacts, db.Model):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(160))
    slug: Mapped[str] = mapped_column(sa.String(180), unique=True)
    sport: Mapped[str] = mapped_column(sa.String(80), index=True)
    venue: Mapped[str] = mapped_column(sa.String(120))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    capacity: Mapped[int]
    # Seats held by pending orders and sold by paid ones; only ever changed by a conditional UPDATE.
    seats_taken: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    published: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    offers: Mapped[list[Offer]] = relationship(
        back_populates="event", cascade="all, delete-orphan", order_by="Offer.persons"
    )

    __table_args__ = (
        sa.CheckConstraint("capacity >= 0", name="capacity_positive"),
        sa.CheckConstraint("seats_taken >= 0 AND seats_taken <= capacity", name="seats_within_capacity"),
    )


class Offer(db.Model):
    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(60))
    persons: Mapped[int]
    price_cents: Mapped[int]
    published: Mapped[bool] = mapped_column(default=True)

    event: Mapped[Event] = relationship(back_populates="offers")

    __table_args__ = (
        sa.CheckConstraint("persons >= 1", name="persons_positive"),
        sa.CheckConstraint("price_cents > 0", name="price_positive"),
        sa.CheckConstraint("kind IN ('solo', 'duo', 'family', 'custom')", name="kind"),
    )
