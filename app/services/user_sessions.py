"""Login sessions (`user_sessions` rows): open at login, list, revoke one, all others or all.

A row's `public_id` is what the server-side session stores; the loader refuses a session whose
row is revoked, so revoking here logs that browser out on its next request.
"""
from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import User, UserSession
from app.services.audit import record
from app.services.errors import NotFound

USER_AGENT_MAX = 255
IP_MAX = 45


def new_public_id() -> str:
    return secrets.token_urlsafe(32)  # 43 characters


def open_session(session: Session, user: User, *, user_agent: str, ip_address: str, now: datetime,
                 method: str = "password") -> UserSession:
    """Create the row for a successful login and audit it (one transaction)."""
    row = UserSession(public_id=new_public_id(), user_id=user.id, user_agent=(user_agent or "")[:USER_AGENT_MAX],
                      ip_address=(ip_address or "")[:IP_MAX], created_at=now, last_seen_at=now)
    session.add(row)
    record(session, "login_succeeded", actor_id=user.id, subject_user_id=user.id, ip_address=ip_address or None,
           method=method)
    session.commit()
    return row


def active_sessions(session: Session, user_id: int) -> list[UserSession]:
    return list(session.scalars(
        sa.select(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    ))


def end_session(session: Session, public_id: str, *, now: datetime, ip_address: str | None = None) -> None:
    """Logout: the row is revoked so the same session id can never be used again."""
    row = session.scalar(sa.select(UserSession).where(UserSession.public_id == public_id))
    if row is None:
        return
    if row.revoked_at is None:
        row.revoked_at = now
    record(session, "logout", actor_id=row.user_id, subject_user_id=row.user_id, ip_address=ip_address)
    session.commit()


def revoke_session(session: Session, user: User, session_id: int, *, now: datetime,
                   ip_address: str | None = None) -> UserSession:
    """Revoke one of the user's own sessions; another person's session id is 'not found'."""
    row = session.scalar(sa.select(UserSession).where(UserSession.id == session_id, UserSession.user_id == user.id))
    if row is None:
        raise NotFound("session_not_found")
    if row.revoked_at is None:
        row.revoked_at = now
        record(session, "sessions_revoked", actor_id=user.id, subject_user_id=user.id, ip_address=ip_address,
               scope="one", count=1)
        session.commit()
    return row


def revoke_other_sessions(session: Session, user: User, *, keep_public_id: str | None, now: datetime,
                          ip_address: str | None = None, audit: bool = True) -> int:
    """Revoke every active session of the user but the one in use; returns how many."""
    count = _revoke_where(session, user.id, now=now, keep_public_id=keep_public_id)
    if audit and count:
        record(session, "sessions_revoked", actor_id=user.id, subject_user_id=user.id, ip_address=ip_address,
               scope="others", count=count)
    session.commit()
    return count


def revoke_all_sessions(session: Session, user_id: int, *, now: datetime, actor_id: int | None = None,
                        ip_address: str | None = None, reason: str = "revoked") -> int:
    """Revoke every active session of a user (admin action, password reset); returns how many."""
    count = _revoke_where(session, user_id, now=now, keep_public_id=None)
    record(session, "sessions_revoked", actor_id=actor_id, subject_user_id=user_id, ip_address=ip_address,
           scope="all", count=count, reason=reason)
    session.commit()
    return count


def _revoke_where(session: Session, user_id: int, *, now: datetime, keep_public_id: str | None) -> int:
    """Row by row through the ORM (no bulk UPDATE) so the cache listeners see every change."""
    count = 0
    for row in active_sessions(session, user_id):
        if keep_public_id is not None and row.public_id == keep_public_id:
            continue
        row.revoked_at = now
        count += 1
    session.flush()
    return count
