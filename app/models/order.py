"""Orders, their lines and payment attempts."""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow
from app.models.event import Event, Offer
from app.models.user import User


class OrderStatus(str, enum.Enum):
    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    FAILED = "failed"


class OrderFacts:
    """What an order's columns and lines say, for the model and for the order page's rows
    (app/services/order_page.py) alike: they need `status`, `expires_at` and `lines`."""

    @property
    def is_paid(self) -> bool:
        return self.status == OrderStatus.PAID.value

    @property
    def is_pending(self) -> bool:
        return self.status == OrderStatus.PENDING.value

    @property
    def is_cancelled(self) -> bool:
        return self.status == OrderStatus.CANCELLED.value

    @property
    def seats(self) -> int:
        return sum(line.seats for line in self.lines)

    @property
    def tickets_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    def hold_has_expired(self, now: datetime) -> bool:
        return self.is_pending and self.expires_at <= now


class OrderLineFacts:
    """A line's totals, from its `quantity`, `persons` and `unit_price_cents`."""

    @property
    def seats(self) -> int:
        return self.quantity * self.persons

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


class Order(OrderFacts, db.Model):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=OrderStatus.PENDING.value, index=True)
    total_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # One key per order: the provider never charges twice for it.
    idempotency_key: Mapped[str] = mapped_column(sa.String(64), unique=True)

    user: Mapped[User] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", cascade="all, delete-orphan")
    payments: Mapped[list[Payment]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="Payment.created_at"
    )

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'cancelled', 'refunded', 'expired', 'failed')", name="status"
        ),
        sa.CheckConstraint("total_cents >= 0", name="total_positive"),
        # `flask orders expire` looks for pending orders whose hold has run out.
        sa.Index("ix_orders_status_expires_at", "status", "expires_at"),
        # The admin dashboard's sales per day read this index alone (issue 8).
        sa.Index("ix_orders_status_paid_at", "status", "paid_at", "total_cents"),
    )


class OrderLine(OrderLineFacts, db.Model):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int] = mapped_column(sa.ForeignKey("offers.id"), index=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id"), index=True)
    quantity: Mapped[int]
    persons: Mapped[int]  # per unit, copied from the offer at purchase
    unit_price_cents: Mapped[int]

    order: Mapped[Order] = relationship(back_populates="lines")
    offer: Mapped[Offer] = relationship()
    event: Mapped[Event] = relationship()

    __table_args__ = (sa.CheckConstraint("quantity >= 1 AND quantity <= 10", name="quantity_range"),)


class Payment(db.Model):
    """One attempt to charge (or refund) an order. Only brand and last 4 digits are kept."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(8), default="charge")  # charge | refund
    amount_cents: Mapped[int]
    succeeded: Mapped[bool] = mapped_column(default=False)
    error_code: Mapped[str | None] = mapped_column(sa.String(40))
    card_brand: Mapped[str | None] = mapped_column(sa.String(20))
    card_last4: Mapped[str | None] = mapped_column(sa.String(4))
    transaction_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    order: Mapped[Order] = relationship(back_populates="payments")


class CartItem(db.Model):
    """A line of a signed-in customer's cart (anonymous visitors keep theirs in the session)."""

    __tablename__ = "cart_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    offer_id: Mapped[int] = mapped_column(sa.ForeignKey("offers.id", ondelete="CASCADE"))
    quantity: Mapped[int]
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("user_id", "offer_id", name="uq_cart_items_user_offer"),
        sa.CheckConstraint("quantity >= 1 AND quantity <= 10", name="quantity_range"),
    )
