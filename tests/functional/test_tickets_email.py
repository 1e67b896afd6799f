"""The order confirmation email, through the shop's payment flow and a real SMTP server: one PDF per ticket."""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from app.extensions import db
from app.models import Order, Ticket
from app.tickets.documents import ticket_payload
from tests.factories import OfferFactory, UserFactory
from tests.functional.test_tickets import decode_pdf, login

SUCCESS_CARD = {"holder": "Zoe Dupont", "number": "4242 4242 4242 4242", "exp_month": "12",
                "exp_year": str(datetime.now(UTC).year + 2), "cvv": "123"}


def buy(client, lines) -> Order:
    """Cart → place order → pay with the success card, all through HTTP."""
    for offer, quantity in lines:
        assert client.post("/cart/add", data={"offer_id": offer.id, "quantity": quantity}).status_code == 303
    total = sum(offer.price_cents * quantity for offer, quantity in lines)
    placed = client.post("/orders/", data={"expected_total_cents": total})
    assert placed.status_code == 303 and "/orders/GCH-" in placed.headers["Location"], placed.headers["Location"]
    code = placed.headers["Location"].rsplit("/", 1)[1]
    paid = client.post(f"/orders/{code}/pay", data=SUCCESS_CARD)
    assert paid.status_code == 303
    order = db.session.scalar(sa.select(Order).where(Order.code == code))
    assert order.status == "paid"
    return order


def test_confirmation_email_has_one_pdf_per_ticket(client, auth, smtp_server, tmp_path):
    customer = UserFactory(first_name="Zoe", last_name="Dupont")
    solo = OfferFactory(name="Solo", persons=1, price_cents=5000)
    duo = OfferFactory(kind="duo", name="Duo", persons=2, price_cents=9000, event=solo.event)
    login(auth, customer)
    order = buy(client, [(solo, 2), (duo, 1)])

    tickets = db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id)).all()
    assert len(tickets) == 3
    [message] = [m for m in smtp_server.messages if order.code in m["Subject"]]
    assert message["To"] == customer.email
    pdfs = [part for part in message.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert [p.get_filename() for p in pdfs] == [f"guichet-ticket-{t.number}.pdf" for t in tickets]
    for part, ticket in zip(pdfs, tickets, strict=True):
        assert decode_pdf(part.get_content(), tmp_path) == (ticket_payload(ticket),) * 2
