"""Tickets: issuing them at payment (one per offer unit bought) with their double key, showing
them to their owner, voiding them, and re-issuing them when the owner's user key is rotated."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from app.models import Event, Order, Ticket, User
from app.services import audit
from app.services.errors import NotFound
from app.services.signing import double_key_digest, make_purchase_key, make_user_key


def ticket_number(order_code: str, index: int) -> str:
    """A readable number printed on the ticket, e.g. GCH-7F3K9Q-03."""
    return f"{order_code}-{index:02d}"


_INSERT_TICKETS = sa.insert(Ticket.__table__)  # built once: one INSERT for all the order's tickets


def issue_tickets(session: Session, order: Order, *, now: datetime) -> int:
    """Create the tickets of a paid order, in the caller's transaction (no commit); how many.
    The order and its lines must already be in the database (their ids are written)."""
    rows = new_ticket_rows(order, now=now)
    if rows:
        session.execute(_INSERT_TICKETS, rows)
    return len(rows)


def new_ticket_rows(order: Order, *, now: datetime) -> list[dict]:
    """The rows of a paid order's tickets, one per unit bought (the `tickets` table's columns).

    Each ticket gets its own purchase key; only SHA-256(user key ‖ purchase key) is stored
    beside it, never the user key, so a stolen tickets table cannot mint valid QR codes.
    """
    user = order.user
    rows = []
    for line in order.lines:
        for _ in range(line.quantity):
            purchase_key = make_purchase_key()
            rows.append({
                "number": ticket_number(order.code, len(rows) + 1), "order_id": order.id,
                "order_line_id": line.id, "user_id": order.user_id, "event_id": line.event_id,
                "offer_id": line.offer_id, "persons": line.persons, "holder_name": user.full_name,
                "purchase_key": purchase_key, "key_digest": double_key_digest(user.user_key, purchase_key),
                "issued_at": now,
            })
    return rows


# --- reading ----------------------------------------------------------------

def _with_details(statement):
    return statement.options(joinedload(Ticket.event), joinedload(Ticket.offer), joinedload(Ticket.order))


def tickets_of_user(session: Session, user_id: int) -> list[Ticket]:
    """The user's tickets, soonest event first (eager-loaded for the "My tickets" page)."""
    return list(session.scalars(
        _with_details(sa.select(Ticket)).join(Ticket.event).where(Ticket.user_id == user_id)
        .order_by(Event.starts_at, Ticket.order_id, Ticket.id)
    ).unique())


def ticket_for_viewer(session: Session, ticket_id: int, *, user_id: int, is_admin: bool) -> Ticket:
    """A ticket its owner or an admin may download; NotFound for anyone else (ids are not confirmed).

    A void ticket is only shown to admins: its QR code would be refused at the gate anyway.
    """
    ticket = session.scalar(_with_details(sa.select(Ticket)).where(Ticket.id == ticket_id))
    if ticket is None or not (is_admin or (ticket.user_id == user_id and ticket.voided_at is None)):
        raise NotFound()
    return ticket


def tickets_of_order(session: Session, order_id: int) -> list[Ticket]:
    """The order's tickets that can still be used (not void), in ticket-number order."""
    return list(session.scalars(
        _with_details(sa.select(Ticket))
        .where(Ticket.order_id == order_id, Ticket.voided_at.is_(None)).order_by(Ticket.id)
    ).unique())


def tickets_by_ids(session: Session, ticket_ids: list[int]) -> list[Ticket]:
    if not ticket_ids:
        return []
    return list(session.scalars(
        _with_details(sa.select(Ticket)).where(Ticket.id.in_(ticket_ids)).order_by(Ticket.id)
    ).unique())


# --- user key rotation ------------------------------------------------------

@dataclass(frozen=True)
class KeyRotation:
    user_id: int
    reissued_ticket_ids: list[int]


def _reissuable(user_id: int, now: datetime):
    """Tickets a rotation re-issues: still usable (not void, not checked in), event not started."""
    return (
        sa.select(Ticket).join(Ticket.event)
        .where(Ticket.user_id == user_id, Ticket.voided_at.is_(None), Ticket.checked_in_at.is_(None),
               Event.starts_at > now)
        .order_by(Ticket.id)
    )


def tickets_to_reissue(session: Session, user_id: int, *, now: datetime) -> list[Ticket]:
    return list(session.scalars(_with_details(_reissuable(user_id, now))).unique())


def rotate_user_key(session: Session, user: User, *, actor_id: int | None, now: datetime,
                    ip_address: str | None = None) -> KeyRotation:
    """After a compromise: a new user key, and the owner's usable tickets re-issued. Commits.

    Each re-issued ticket keeps its id and number but gets a NEW purchase key, so its digest
    changes: every QR code printed before no longer matches and the gate answers KEY_MISMATCH
    (shown as VOID). The owner downloads the new codes. Used, void and past tickets keep their
    old digest (they will never be admitted again anyway).
    """
    # Lock the owner's row so two admins rotating at once serialise instead of interleaving.
    session.execute(sa.select(User.id).where(User.id == user.id).with_for_update())
    user.user_key = make_user_key()
    tickets = list(session.scalars(_reissuable(user.id, now).with_for_update(of=Ticket)))
    for ticket in tickets:
        ticket.purchase_key = make_purchase_key()
        ticket.key_digest = double_key_digest(user.user_key, ticket.purchase_key)
        ticket.issued_at = now
    ids = [ticket.id for ticket in tickets]
    audit.record(session, "user_key_rotated", actor_id=actor_id, subject_user_id=user.id,
                 ip_address=ip_address, tickets_reissued=len(ids))
    session.commit()
    return KeyRotation(user_id=user.id, reissued_ticket_ids=ids)
