"""Reading the audit log: the filters of the admin audit page, as one SELECT to paginate."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.models import AuditEvent, User
from app.services.stats import StatsFilters


@dataclass(frozen=True)
class AuditFilters:
    type: str | None = None
    user: str | None = None  # email, username or #id; matches the actor or the subject
    date_from: date | None = None  # Paris days, inclusive
    date_to: date | None = None


def _matching_user_ids(text: str):
    text = text.strip()
    if text.startswith("#") and text[1:].isdigit():
        return sa.select(User.id).where(User.id == int(text[1:]))
    text = text.lower()
    return sa.select(User.id).where(sa.or_(User.email.contains(text, autoescape=True),
                                           User.username_key.contains(text, autoescape=True)))


def audit_query(filters: AuditFilters):
    """Newest first; the caller paginates (e.g. `db.paginate`)."""
    stmt = sa.select(AuditEvent).options(selectinload(AuditEvent.actor), selectinload(AuditEvent.subject_user)).order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    if filters.type:
        stmt = stmt.where(AuditEvent.type == filters.type)
    if filters.user and filters.user.strip():
        ids = _matching_user_ids(filters.user)
        stmt = stmt.where(sa.or_(AuditEvent.actor_id.in_(ids), AuditEvent.subject_user_id.in_(ids)))
    start, end = StatsFilters(date_from=filters.date_from, date_to=filters.date_to).utc_bounds()
    if start is not None:
        stmt = stmt.where(AuditEvent.created_at >= start)
    if end is not None:
        stmt = stmt.where(AuditEvent.created_at < end)
    return stmt
