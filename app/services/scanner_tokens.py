"""Bearer tokens for gate scanner apps calling POST /tickets/api/check-in.

A staff member creates one on the scan page (or an operator with `flask tickets create-token`),
names it after the device, copies it once into the app, and can revoke it at any time. The token
is 256 random bits; only its SHA-256 is stored. It acts for its creator, and only while that
account is an active staff member or admin, so demoting or disabling someone stops their
devices at the next scan.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Role, ScannerToken, User
from app.services import audit
from app.services.errors import DomainError, NotFound

TOKEN_PREFIX = "gchs_"
_TOKEN_RE = re.compile(r"gchs_[A-Za-z0-9_-]{43}")
HINT_CHARS = 10
TOUCH_EVERY = timedelta(minutes=10)  # last_used_at is refreshed at most this often
STAFF_ROLES = (Role.STAFF.value, Role.ADMIN.value)


def new_token_text() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def create_scanner_token(session: Session, user: User, *, name: str, now: datetime, valid_days: int,
                         max_tokens: int, ip_address: str | None = None) -> tuple[ScannerToken, str]:
    """A new token for `user`; returns the row and the token text, which is never shown again."""
    if not user.is_staff or not user.is_active:
        raise DomainError("scanner_token_staff_only")
    name = " ".join(name.split())
    if not name:
        raise DomainError("scanner_token_name_required", field="name")
    active = session.scalar(
        sa.select(sa.func.count(ScannerToken.id)).where(
            ScannerToken.user_id == user.id, ScannerToken.revoked_at.is_(None), ScannerToken.expires_at > now
        )
    )
    if active >= max_tokens:
        raise DomainError("scanner_token_limit", limit=max_tokens)
    text = new_token_text()
    token = ScannerToken(user_id=user.id, name=name[:60], token_hash=hash_token(text),
                         hint=text[:HINT_CHARS], created_at=now, expires_at=now + timedelta(days=valid_days))
    session.add(token)
    session.flush()
    audit.record(session, "scanner_token_created", actor_id=user.id, subject_user_id=user.id,
                 ip_address=ip_address, token_id=token.id, name=token.name)
    session.commit()
    return token, text


def revoke_scanner_token(session: Session, token_id: int, *, user_id: int, now: datetime,
                         ip_address: str | None = None) -> ScannerToken:
    """Revoke one of the user's own tokens (someone else's answers NotFound)."""
    token = session.get(ScannerToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound()
    if token.revoked_at is None:
        token.revoked_at = now
        audit.record(session, "scanner_token_revoked", actor_id=user_id, subject_user_id=token.user_id,
                     ip_address=ip_address, token_id=token.id, name=token.name)
        session.commit()
    return token


def scanner_tokens_of(session: Session, user_id: int) -> list[ScannerToken]:
    return list(session.scalars(
        sa.select(ScannerToken).where(ScannerToken.user_id == user_id)
        .order_by(ScannerToken.revoked_at.is_not(None), ScannerToken.created_at.desc(), ScannerToken.id.desc())
    ))


def staff_id_for_token(session: Session, token: str | None, *, now: datetime) -> int | None:
    """The id of the active staff member or admin a bearer token acts for, or None. One query."""
    if not token or not _TOKEN_RE.fullmatch(token):
        return None
    row = session.execute(
        sa.select(ScannerToken.id, ScannerToken.revoked_at, ScannerToken.expires_at, ScannerToken.last_used_at,
                  User.id.label("user_id"), User.role, User.disabled_at)
        .join(User, User.id == ScannerToken.user_id)
        .where(ScannerToken.token_hash == hash_token(token))
    ).one_or_none()
    if (row is None or row.revoked_at is not None or row.expires_at <= now or row.disabled_at is not None
            or row.role not in STAFF_ROLES):
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        session.execute(sa.update(ScannerToken).where(ScannerToken.id == row.id).values(last_used_at=now))
        session.commit()
    return row.user_id
