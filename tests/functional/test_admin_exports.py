"""/admin/exports/*.csv — orders and check-ins as streamed CSV, read back with the csv module."""
from __future__ import annotations

import csv
import io
from html import unescape

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Ticket
from app.services.exports import CHECK_IN_HEADER, ORDER_HEADER
from app.tickets.documents import ticket_payload
from tests.factories import OfferFactory, UserFactory
from tests.sales_data import load_sales_data, make_order, utc
from tests.shop import login

pytestmark = pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)


@pytest.fixture
def admin(client, auth):
    user = UserFactory(role="admin")
    login(auth, client, user)
    return user


def download(client, path, **params) -> tuple[list[list[str]], object]:
    response = client.get(path, query_string=params)
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/csv"
    assert response.is_streamed  # a generator, not a string built in memory
    assert response.headers["Content-Disposition"].startswith('attachment; filename="guichet-')
    text = response.get_data().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""))), response


def test_orders_csv_headers_and_rows_match(client, admin):
    data = load_sales_data()
    rows, _ = download(client, "/admin/exports/orders.csv")

    assert rows[0] == ORDER_HEADER
    assert len(rows) == 1 + 8
    o1 = data.orders["o1"]
    assert rows[1] == [o1.code, "paid", "2026-03-10T10:55:00+01:00", "2026-03-10T11:00:00+01:00", "",
                       "Camille Martin", "camille@example.test", "Athletics Final", "2026-12-20T21:00:00+01:00",
                       "Solo", "2", "1", "50.00", "100.00", "EUR"]
    by_code = {}
    for row in rows[1:]:
        by_code.setdefault(row[0], []).append(row)
    for order in data.orders.values():  # every order, every line, totals add up to the order's total
        lines = by_code[order.code]
        assert {row[1] for row in lines} == {order.status}
        assert sum(round(float(row[13]) * 100) for row in lines) == order.total_cents


def test_orders_csv_filters(client, admin):
    data = load_sales_data()
    rows, response = download(client, "/admin/exports/orders.csv", event=data.swimming.id, status="paid")
    assert {row[7] for row in rows[1:]} == {"Swimming Heats"} and {row[1] for row in rows[1:]} == {"paid"}
    assert len(rows) == 1 + 2
    assert f"event{data.swimming.id}" in response.headers["Content-Disposition"]

    rows, _ = download(client, "/admin/exports/orders.csv", date_from="2026-03-30", date_to="2026-03-30")
    assert [row[0] for row in rows[1:]] == [data.orders["o6"].code]


def test_a_customer_named_like_a_formula_is_neutralised(client, admin):
    user = UserFactory(first_name='=HYPERLINK("x")', last_name="", email="formula@example.test")
    make_order(user, [(OfferFactory(event__title="+Cycling"), 1)], paid_at=utc("2026-03-10T10:00:00"))
    rows, _ = download(client, "/admin/exports/orders.csv")
    assert rows[1][5] == '\'=HYPERLINK("x")'
    assert rows[1][7] == "'+Cycling"


def test_check_ins_csv_from_real_scans(app, client, admin, auth):
    data = load_sales_data()
    staff = UserFactory(role="staff", first_name="Sam", last_name="Steward", email="sam@example.test")
    gate = app.test_client()
    login(auth, gate, staff)
    ticket = db.session.scalars(sa.select(Ticket).where(Ticket.event_id == data.swimming.id,
                                                        Ticket.checked_in_at.is_(None)).order_by(Ticket.id)).first()
    for expected in ("VALID", "ALREADY_USED"):
        assert gate.post("/tickets/api/check-in", json={"payload": ticket_payload(ticket)}).json["verdict"] == expected
    assert gate.post("/tickets/api/check-in", json={"payload": "NOT-A-TICKET"}).json["verdict"] == "MALFORMED"

    rows, _ = download(client, "/admin/exports/check-ins.csv")
    assert rows[0] == CHECK_IN_HEADER
    assert [row[1] for row in rows[1:]] == ["VALID", "ALREADY_USED", "MALFORMED"]
    assert rows[1][2:] == ["Swimming Heats", ticket.number, ticket.holder_name, "Solo", "1", ticket.order.code,
                           "Sam Steward", "sam@example.test"]
    assert rows[3][2:8] == ["", "", "", "", "", ""]

    only_athletics, _ = download(client, "/admin/exports/check-ins.csv", event=data.athletics.id)
    assert only_athletics == [CHECK_IN_HEADER]


def test_bad_filters_export_nothing_and_say_why(client, admin):
    response = client.get("/admin/exports/orders.csv", query_string={"date_from": "2026-03-12", "date_to": "2026-03-01"},
                          follow_redirects=True)
    assert response.mimetype == "text/html"
    assert "These filters are not valid; nothing was exported." in unescape(response.get_data(as_text=True))
    response = client.get("/admin/exports/orders.csv", query_string={"status": "lost"})
    assert response.status_code == 302
    assert client.get("/admin/exports/check-ins.csv", query_string={"event": "x"}).status_code == 302


@pytest.mark.parametrize("role", ["customer", "staff"])
def test_only_admins(client, auth, role):
    login(auth, client, UserFactory(role=role))
    assert client.get("/admin/exports/orders.csv").status_code == 403
    assert client.get("/admin/exports/check-ins.csv").status_code == 403
