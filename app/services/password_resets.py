"""Password reset (SPEC §2): an emailed link token AND a 6-digit code, both required.

Both are stored as peppered HMACs; the reset expires after 20 minutes, works once, and is void
after 5 wrong codes. With 2FA on, a TOTP or recovery code is asked too (the link and the code
travel in the same email, so together they are one factor). After the reset every session of
the account is revoked.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import PasswordReset, User
from app.services import user_sessions
from app.services.accounts import InvalidFields, PasswordHasher, find_by_email
from app.services.audit import record
from app.services.codes import (
    codes_equal,
    hash_code,
    new_six_digit_code,
    normalise_six_digit_code,
)
from app.services.errors import DomainError
from app.services.passwords import password_problems

MAX_WRONG_CODES = 5
TOKEN_MAX_CHARS = 128

# verify_second_factor(session, user, code, now=...) -> "totp" | "recovery" | None
SecondFactorCheck = Callable[..., str | None]


@dataclass(frozen=True)
class IssuedReset:
    user: User
    token: str  # only ever in the email
    code: str


def request_reset(session: Session, *, email: str, now: datetime, pepper: str | bytes, minutes: int,
                  ip_address: str | None = None) -> IssuedReset | None:
    """A new reset for an active account (older pending ones are voided); None when there is no
    such account, and the caller answers the same either way."""
    user = find_by_email(session, email)
    if user is None or user.is_disabled:
        return None
    for pending in _pending(session, user.id):
        pending.voided_at = now
    token, code = secrets.token_urlsafe(32), new_six_digit_code()
    session.add(PasswordReset(user_id=user.id, token_hash=hash_code(token, pepper=pepper),
                              code_hash=hash_code(code, pepper=pepper), created_at=now,
                              expires_at=now + timedelta(minutes=minutes)))
    record(session, "password_reset_requested", subject_user_id=user.id, ip_address=ip_address)
    session.commit()
    return IssuedReset(user=user, token=token, code=code)


def _pending(session: Session, user_id: int) -> list[PasswordReset]:
    return list(session.scalars(sa.select(PasswordReset).where(
        PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None), PasswordReset.voided_at.is_(None))))


def find_reset(session: Session, token: str, *, now: datetime, pepper: str | bytes) -> PasswordReset:
    """The usable reset for a link token; a coded error for unknown, expired, used or void ones."""
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX_CHARS:
        raise DomainError("reset_link_invalid")
    reset = session.scalar(sa.select(PasswordReset).where(PasswordReset.token_hash == hash_code(token, pepper=pepper)))
    if reset is None:
        raise DomainError("reset_link_invalid")
    if reset.used_at is not None:
        raise DomainError("reset_used")
    if reset.voided_at is not None:
        raise DomainError("reset_voided" if reset.failed_attempts >= MAX_WRONG_CODES else "reset_superseded")
    if now >= reset.expires_at:
        raise DomainError("reset_expired")
    return reset


def complete_reset(session: Session, *, token: str, code: str, new_password: str, hasher: PasswordHasher,
                   now: datetime, pepper: str | bytes, second_factor: str | None = None,
                   verify_second_factor: SecondFactorCheck | None = None, ip_address: str | None = None) -> User:
    """Check link, code (and second factor), set the new password, revoke every session."""
    reset = find_reset(session, token, now=now, pepper=pepper)
    user = reset.user
    problems = password_problems(new_password, username=user.username, email=user.email,
                                 names=[user.first_name, user.last_name])
    if problems:
        raise InvalidFields({"password": problems})
    normalised = normalise_six_digit_code(code)
    if normalised is None or not codes_equal(hash_code(normalised, pepper=pepper), reset.code_hash):
        _wrong_attempt(session, reset, now, field="code", code_name="reset_code_wrong")
    if user.has_2fa:
        if verify_second_factor is None:
            raise DomainError("second_factor_unavailable", field="second_factor")
        if not second_factor or verify_second_factor(session, user, second_factor.strip(), now=now) is None:
            _wrong_attempt(session, reset, now, field="second_factor", code_name="second_factor_wrong")
    user.password_hash = hasher.hash(new_password)
    reset.used_at = now
    for other in _pending(session, user.id):
        if other.id != reset.id:
            other.voided_at = now
    record(session, "password_reset_completed", actor_id=user.id, subject_user_id=user.id, ip_address=ip_address)
    user_sessions.revoke_all_sessions(session, user.id, now=now, actor_id=user.id, ip_address=ip_address,
                                      reason="password_reset")  # commits
    return user


def _wrong_attempt(session: Session, reset: PasswordReset, now: datetime, *, field: str, code_name: str) -> None:
    reset.failed_attempts += 1
    remaining = MAX_WRONG_CODES - reset.failed_attempts
    if remaining <= 0:
        reset.voided_at = now
    session.commit()
    if remaining <= 0:
        raise DomainError("reset_voided")
    raise DomainError(code_name, field=field, remaining=remaining)
