"""What a ticket looks like outside the database: its signed QR text, its view and its PDF.

Needs an app context (for the signing key); the slow parts (PDF) run after the commit.
"""
from __future__ import annotations

from app.extensions import db
from app.models import Order, Ticket
from app.services.rendering import TicketView, render_ticket_pdf
from app.services.signing import sign_payload
from app.services.tickets import tickets_of_order
from app.tickets.keys import signing_key

PDF = "application/pdf"


def ticket_payload(ticket: Ticket) -> str:
    """The QR text: the ticket id and its current double-key digest, signed (deterministic)."""
    return sign_payload(signing_key(), ticket.id, ticket.key_digest)


def ticket_view(ticket: Ticket) -> TicketView:
    event = ticket.event
    return TicketView(
        event_title=event.title, sport=event.sport, venue=event.venue, starts_at=event.starts_at,
        offer_name=ticket.offer.name, persons_admitted=ticket.persons, holder_name=ticket.holder_name,
        order_code=ticket.order.code, ticket_number=ticket.number, payload=ticket_payload(ticket),
    )


def ticket_filename(ticket: Ticket) -> str:
    return f"guichet-ticket-{ticket.number}.pdf"


def ticket_pdf(ticket: Ticket) -> bytes:
    return render_ticket_pdf(ticket_view(ticket))


def ticket_attachments(tickets: list[Ticket]) -> list[tuple[str, str, bytes]]:
    """One PDF per ticket, as (filename, content type, bytes) for `send_mail(attachments=...)`."""
    return [(ticket_filename(ticket), PDF, ticket_pdf(ticket)) for ticket in tickets]


def order_ticket_attachments(order: Order) -> list[tuple[str, str, bytes]]:
    """The PDFs of a paid order's usable tickets, one per ticket, for the confirmation email."""
    return ticket_attachments(tickets_of_order(db.session, order.id))
