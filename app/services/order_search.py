"""Finding orders for the admin orders page: by order code or by the customer's email."""
from __future__ import annotations

import sqlalchemy as sa

from app.models import Order, User


def search_orders_query(text: str | None = None, *, status: str | None = None):
    """Newest first; matches a whole or partial order code, or a part of the customer's email."""
    stmt = sa.select(Order).join(User, User.id == Order.user_id).order_by(Order.created_at.desc(), Order.id.desc())
    text = (text or "").strip()
    if text:
        stmt = stmt.where(sa.or_(Order.code.contains(text.upper(), autoescape=True),
                                 User.email.contains(text.lower(), autoescape=True)))
    if status:
        stmt = stmt.where(Order.status == status)
    return stmt

