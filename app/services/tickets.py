"""Tickets: issuing them at payment (one per offer unit bought) with their double key."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.models import Order, Ticket
from app.services.signing import double_key_digest, make_purchase_key


def ticket_number(order_code: str, index: int) -> str:
    """A readable number printed on the ticket, e.g. GCH-7F3K9Q-03."""
    return f"{order_code}-{index:02d}"


def issue_tickets(session: Session, order: Order, *, now: datetime) -> list[Ticket]:
    """Create the tickets of a paid order, in the caller's transaction (no commit).

    Each ticket gets its own purchase key; only SHA-256(user key ‖ purchase key) is stored
    beside it, never the user key, so a stolen tickets table cannot mint valid QR codes.
    """
    user = order.user
    tickets = []
    index = 0
    for line in order.lines:
        for _ in range(line.quantity):
            index += 1
            purchase_key = make_purchase_key()
            ticket = Ticket(
                number=ticket_number(order.code, index),
                order=order, order_line=line, user_id=order.user_id, event_id=line.event_id,
                offer_id=line.offer_id, persons=line.persons, holder_name=user.full_name,
                purchase_key=purchase_key, key_digest=double_key_digest(user.user_key, purchase_key),
                issued_at=now,
            )
            session.add(ticket)
            tickets.append(ticket)
    return tickets
