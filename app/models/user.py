"""People who log in: the account, its login sessions, 2FA recovery codes and password resets."""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow
from app.models.encrypted import EncryptedString


class Role(str, enum.Enum):
    CUSTOMER = "customer"
    STAFF = "staff"
    ADMIN = "admin"


class PersonName:
    """`full_name` from `first_name` and `last_name`, for the model and for rows that carry them
    (the payment's buyer, app/services/checkout.py)."""

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class User(PersonName, UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(40))
    # Stored lower-cased: uniqueness is case-insensitive on every backend.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    username_key: Mapped[str] = mapped_column(sa.String(40), unique=True)
    first_name: Mapped[str] = mapped_column(sa.String(80))
    last_name: Mapped[str] = mapped_column(sa.String(80))
    password_hash: Mapped[str] = mapped_column(sa.String(128))
    # 32 random bytes made at registration; half of every ticket's double key. Never displayed.
    user_key: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    role: Mapped[str] = mapped_column(sa.String(16), default=Role.CUSTOMER.value, index=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Encrypted at rest (app/models/encrypted.py): a database dump does not give the second factor.
    totp_secret: Mapped[str | None] = mapped_column(EncryptedString())
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)

    sessions: Mapped[list[UserSession]] = relationship(back_populates="user", cascade="all, delete-orphan")
    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    __table_args__ = (sa.CheckConstraint("role IN ('customer', 'staff', 'admin')", name="role"),)

    def __repr__(self) -> str:  # never the key or the hash
        return f"<User {self.id} {self.role}>"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.disabled_at is None

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def has_2fa(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.STAFF.value, Role.ADMIN.value)


class UserSession(db.Model):
    """One row per login, so a person can see and revoke where they are logged in."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A random public id stored in the server-side session; never the session cookie itself.
    public_id: Mapped[str] = mapped_column(sa.String(43), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user_agent: Mapped[str] = mapped_column(sa.String(255), default="")
    ip_address: Mapped[str] = mapped_column(sa.String(45), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="sessions")

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class RecoveryCode(db.Model):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="recovery_codes")


class PasswordReset(db.Model):
    """A pending reset: the emailed link token and the 6-digit code, both stored hashed."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    failed_attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
