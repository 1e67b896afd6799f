"""E-tickets and their check-ins at the gate."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow
from app.models.event import Event, Offer
from app.models.order import Order, OrderLine
from app.models.user import User


class Ticket(db.Model):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(24), unique=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(sa.ForeignKey("order_lines.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id"), index=True)
    offer_id: Mapped[int] = mapped_column(sa.ForeignKey("offers.id"))
    persons: Mapped[int]
    holder_name: Mapped[str] = mapped_column(sa.String(170))
    # The purchase key, and SHA-256(user key ‖ purchase key). The user key itself is never copied here.
    purchase_key: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    key_digest: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checked_in_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    order: Mapped[Order] = relationship()
    order_line: Mapped[OrderLine] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])
    event: Mapped[Event] = relationship()
    offer: Mapped[Offer] = relationship()
    checked_in_by: Mapped[User | None] = relationship(foreign_keys=[checked_in_by_id])

    # The admin dashboard's check-ins per event read this index alone (issue 8).
    __table_args__ = (sa.Index("ix_tickets_event_checked_in", "event_id", "checked_in_at", "persons"),)

    @property
    def is_void(self) -> bool:
        return self.voided_at is not None


class CheckIn(db.Model):
    """Every scan answer, kept for the audit trail and the check-in statistics."""

    __tablename__ = "check_ins"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("events.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    verdict: Mapped[str] = mapped_column(sa.String(20))
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ScannerToken(db.Model):
    """A bearer token a staff member gives a gate scanner app for POST /tickets/api/check-in.

    Only the SHA-256 of the token is stored (the token is 256 random bits, so no pepper is
    needed); it is shown once when created. It acts for its user, and only while that user is
    an active staff member or admin.
    """

    __tablename__ = "scanner_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(60))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    hint: Mapped[str] = mapped_column(sa.String(16))  # the first characters, to recognise it in a list
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now
