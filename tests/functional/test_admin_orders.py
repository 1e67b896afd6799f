"""/admin/orders/ — search by code or email, one order, cancel with refund after a confirmation."""
from __future__ import annotations

from datetime import UTC, datetime
from html import unescape

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.messages import message_for
from app.models import AuditEvent, Event, Order, Payment, Ticket
from tests.factories import OfferFactory, UserFactory, make_paid_order
from tests.html_tables import table_rows
from tests.shop import buy, login, make_event, offer_of, pay

pytestmark = pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)


@pytest.fixture
def admin(client, auth):
    user = UserFactory(role="admin", email="ada@example.test")
    login(auth, client, user)
    return user


def page(response) -> str:
    return unescape(response.get_data(as_text=True))


@pytest.fixture
def paid_through_the_shop(app, auth):
    """An order bought and paid by a customer through the shop (so the provider really charged it)."""
    event = make_event(title="Basketball Final", capacity=50)
    buyer = UserFactory(first_name="Lou", last_name="Bernard", email="lou.bernard@example.test")
    shop = app.test_client()
    login(auth, shop, buyer)
    code = buy(shop, (offer_of(event, "duo"), 2), (offer_of(event, "solo"), 1))
    assert pay(shop, code).status_code in (302, 303)
    order = db.session.scalar(sa.select(Order).where(Order.code == code))
    assert order.is_paid
    return order


def test_search_by_code_by_email_and_status(client, admin):
    offer = OfferFactory()
    lou = UserFactory(email="lou.bernard@example.test")
    max_ = UserFactory(email="max.petit@example.test")
    first = make_paid_order(lou, (offer, 1))
    second = make_paid_order(max_, (offer, 2))

    rows = table_rows(page(client.get("/admin/orders/")), "orders-table")
    assert {row[0] for row in rows} == {first.code, second.code}

    by_email = table_rows(page(client.get("/admin/orders/", query_string={"q": "BERNARD"})), "orders-table")
    assert [row[0] for row in by_email] == [first.code]

    by_part = table_rows(page(client.get("/admin/orders/", query_string={"q": second.code[4:].lower()})), "orders-table")
    assert [row[0] for row in by_part] == [second.code]

    exact = client.get("/admin/orders/", query_string={"q": f" {first.code.lower()} "})
    assert exact.status_code == 302 and exact.headers["Location"] == f"/admin/orders/{first.code}"

    none = page(client.get("/admin/orders/", query_string={"q": "100%_nobody"}))
    assert "No orders found." in none
    assert "No orders found." in page(client.get("/admin/orders/", query_string={"status": "cancelled"}))
    assert len(table_rows(page(client.get("/admin/orders/", query_string={"status": "paid"})), "orders-table")) == 2


def test_order_detail_shows_lines_payments_and_tickets(client, admin, paid_through_the_shop):
    order = paid_through_the_shop
    html = page(client.get(f"/admin/orders/{order.code}"))
    assert "Lou Bernard · lou.bernard@example.test" in html
    lines = table_rows(html, "lines-table")
    assert all(row[0].startswith("Basketball Final") for row in lines)
    assert sorted(row[1:] for row in lines) == [["Duo", "2", "4", "€95.00", "€190.00"],
                                                ["Solo", "1", "1", "€50.00", "€50.00"]]
    payments = table_rows(html, "payments-table")
    assert len(payments) == 1 and payments[0][1:5] == ["Charge", "€240.00", "Visa ···· 4242", "OK"]
    assert "4242 4242" not in html
    assert [row[3] for row in table_rows(html, "tickets-table")] == ["Valid", "Valid", "Valid"]


def test_cancel_asks_for_confirmation_then_refunds_voids_and_frees_seats(client, admin, paid_through_the_shop):
    order = paid_through_the_shop
    event_id = order.lines[0].event_id
    seats_before = db.session.get(Event, event_id).seats_taken

    confirm = page(client.get(f"/admin/orders/{order.code}/cancel"))
    assert "Cancel order" in confirm and "€240.00" in confirm and "Yes, cancel and refund" in confirm
    db.session.expire_all()
    assert db.session.get(Order, order.id).is_paid  # a GET changes nothing

    response = client.post(f"/admin/orders/{order.code}/cancel", follow_redirects=True)
    assert f"Order {order.code} was cancelled and €240.00 refunded" in page(response)
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    assert order.status == "cancelled" and order.cancelled_at is not None
    assert db.session.get(Event, event_id).seats_taken == seats_before - 5
    tickets = db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id)).all()
    assert tickets and all(t.is_void for t in tickets)
    refund = db.session.scalar(sa.select(Payment).where(Payment.order_id == order.id, Payment.kind == "refund"))
    assert refund.succeeded and refund.amount_cents == 24000
    audit = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type.in_(["order_cancelled", "order_refunded"]))
                               .order_by(AuditEvent.id)).all()
    assert [(a.type, a.actor_id, a.subject_user_id) for a in audit] == [
        ("order_refunded", admin.id, order.user_id), ("order_cancelled", admin.id, order.user_id)]

    again = client.post(f"/admin/orders/{order.code}/cancel", follow_redirects=True)
    assert message_for("order_not_cancellable") in page(again)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment).where(Payment.kind == "refund")) == 1


def test_an_order_with_a_used_ticket_is_not_cancelled(client, admin):
    order = make_paid_order(UserFactory(), (OfferFactory(), 1))
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.order_id == order.id))
    ticket.checked_in_at = datetime.now(UTC)
    db.session.commit()
    response = client.post(f"/admin/orders/{order.code}/cancel", follow_redirects=True)
    assert message_for("order_ticket_used") in page(response)
    db.session.expire_all()
    assert db.session.get(Order, order.id).is_paid


def test_unknown_order_is_404(client, admin):
    assert client.get("/admin/orders/GCH-ZZZZZZ").status_code == 404
    assert client.post("/admin/orders/not-a-code/cancel").status_code == 404


@pytest.mark.parametrize("role", ["customer", "staff"])
def test_only_admins(client, auth, role):
    order = make_paid_order(UserFactory(), (OfferFactory(), 1))
    login(auth, client, UserFactory(role=role))
    assert client.get("/admin/orders/").status_code == 403
    assert client.post(f"/admin/orders/{order.code}/cancel").status_code == 403
    db.session.expire_all()
    assert db.session.get(Order, order.id).is_paid
