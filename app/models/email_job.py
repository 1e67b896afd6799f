"""The email outbox: one row per email to send, written in the transaction of the change it announces."""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow
from app.models.order import Order


class EmailJobStatus(str, enum.Enum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # given up after too many attempts, or nothing left to send


class EmailJob(db.Model):
    """An email a worker (or the request itself, without MAIL_QUEUE) still has to send.

    It holds no address, token or rendered content: the worker builds the email from the
    order when it sends it, and `last_error` keeps an exception class name only.
    """

    __tablename__ = "email_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(sa.String(16), default=EmailJobStatus.PENDING.value)
    last_error: Mapped[str | None] = mapped_column(sa.String(80))

    order: Mapped[Order] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("kind", "order_id", name="uq_email_jobs_kind_order"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        sa.CheckConstraint("attempts >= 0", name="attempts_positive"),
        # The worker's question: pending jobs due now, oldest first.
        sa.Index("ix_email_jobs_status_next_attempt_at", "status", "next_attempt_at"),
    )

    @property
    def is_pending(self) -> bool:
        return self.status == EmailJobStatus.PENDING.value
