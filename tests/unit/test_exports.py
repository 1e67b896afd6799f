"""CSV exports: streamed chunks, parsed back with the csv module, formula injection neutralised."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from app.extensions import db
from app.models import CheckIn, Ticket
from app.services import exports
from app.services.stats import StatsFilters
from tests.factories import OfferFactory, UserFactory
from tests.sales_data import load_sales_data, make_order, utc


def parse(chunks) -> list[list[str]]:
    text = "".join(chunks)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.mark.parametrize("value, expected", [
    ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
    ("+33 6 12 34 56 78", "'+33 6 12 34 56 78"),
    ("-1+1", "'-1+1"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"),
    ("\rcmd", "'\rcmd"),
    ("Camille", "Camille"),
    ("a=b", "a=b"),
    ("", ""),
    (None, ""),
    (12, "12"),
])
def test_neutralise(value, expected):
    assert exports.neutralise(value) == expected


def test_chunks_are_streamed_by_batch_and_parse_back():
    rows = ([str(i), f"name {i}"] for i in range(5))
    chunks = list(exports.csv_chunks(["id", "name"], rows, batch=2))

    assert len(chunks) == 3  # rows 1-2, rows 3-4, then row 5
    assert parse(chunks) == [["id", "name"]] + [[str(i), f"name {i}"] for i in range(5)]


def test_cells_with_commas_quotes_and_newlines_survive():
    rows = [['Stade "de" France, Saint-Denis', "line 1\nline 2"]]
    assert parse(exports.csv_chunks(["a", "b"], rows)) == [["a", "b"], rows[0]]


def test_orders_export_headers_and_rows(app):
    data = load_sales_data()
    rows = parse(exports.csv_chunks(exports.ORDER_HEADER, exports.order_rows(db.session, StatsFilters())))

    assert rows[0] == exports.ORDER_HEADER
    body = rows[1:]
    assert len(body) == 8  # one row per order line, all statuses
    o1 = data.orders["o1"]
    assert body[0] == [o1.code, "paid", "2026-03-10T10:55:00+01:00", "2026-03-10T11:00:00+01:00", "",
                       "Camille Martin", "camille@example.test", "Athletics Final", "2026-12-20T21:00:00+01:00",
                       "Solo", "2", "1", "50.00", "100.00", "EUR"]
    assert body[1][7:14] == ["Athletics Final", "2026-12-20T21:00:00+01:00", "Duo", "1", "2", "90.00", "90.00"]
    statuses = {row[0]: row[1] for row in body}
    assert statuses[data.orders["o4"].code] == "cancelled" and statuses[data.orders["o5"].code] == "pending"
    cancelled = next(row for row in body if row[0] == data.orders["o4"].code)
    assert cancelled[4] == "2026-03-11T11:00:00+01:00"


def test_orders_export_filters(app):
    data = load_sales_data()
    swimming = list(exports.order_rows(db.session, StatsFilters(event_id=data.swimming.id)))
    assert {row[7] for row in swimming} == {"Swimming Heats"} and len(swimming) == 3

    march_11 = list(exports.order_rows(db.session, StatsFilters(date_from=date(2026, 3, 11), date_to=date(2026, 3, 11))))
    assert {row[0] for row in march_11} == {data.orders[k].code for k in ("o2", "o3", "o4")}

    paid = list(exports.order_rows(db.session, StatsFilters(), status="paid"))
    assert {row[1] for row in paid} == {"paid"} and len(paid) == 6


def test_a_customer_named_like_a_formula_comes_out_neutralised(app):
    offer = OfferFactory(price_cents=1000)
    user = UserFactory(first_name='=HYPERLINK("x")', last_name="", email="formula@example.test")
    make_order(user, [(offer, 1)], paid_at=utc("2026-03-10T10:00:00"))

    rows = parse(exports.csv_chunks(exports.ORDER_HEADER, exports.order_rows(db.session, StatsFilters())))
    assert rows[1][5] == '\'=HYPERLINK("x")'


def test_no_secret_leaves_in_an_export(app):
    data = load_sales_data()
    text = "".join(exports.csv_chunks(exports.ORDER_HEADER, exports.order_rows(db.session, StatsFilters())))
    ticket = db.session.query(Ticket).first()
    for secret in (data.customer.user_key, ticket.purchase_key, ticket.key_digest):
        assert secret.hex() not in text
    assert data.customer.password_hash not in text


def test_check_ins_export_headers_and_rows(app):
    data = load_sales_data()
    staff = UserFactory(first_name="Sam", last_name="Steward", email="sam@example.test", role="staff")
    ticket = db.session.query(Ticket).filter(Ticket.checked_in_at.is_not(None)).order_by(Ticket.id).first()
    db.session.add_all([
        CheckIn(ticket_id=ticket.id, event_id=ticket.event_id, staff_id=staff.id, verdict="VALID",
                scanned_at=utc("2026-12-20T19:00:00")),
        CheckIn(ticket_id=ticket.id, event_id=ticket.event_id, staff_id=staff.id, verdict="ALREADY_USED",
                scanned_at=utc("2026-12-20T19:01:00")),
        CheckIn(ticket_id=None, event_id=None, staff_id=staff.id, verdict="FORGED", scanned_at=utc("2026-12-20T19:02:00")),
    ])
    db.session.commit()

    rows = parse(exports.csv_chunks(exports.CHECK_IN_HEADER, exports.check_in_rows(db.session, StatsFilters())))
    assert rows[0] == exports.CHECK_IN_HEADER
    assert rows[1] == ["2026-12-20T20:00:00+01:00", "VALID", "Athletics Final", ticket.number, ticket.holder_name,
                       "Solo", "1", data.orders["o1"].code, "Sam Steward", "sam@example.test"]
    assert rows[2][1] == "ALREADY_USED"
    assert rows[3] == ["2026-12-20T20:02:00+01:00", "FORGED", "", "", "", "", "", "", "Sam Steward", "sam@example.test"]

    only_athletics = list(exports.check_in_rows(db.session, StatsFilters(event_id=data.athletics.id)))
    assert len(only_athletics) == 2


def test_export_filename_names_the_filters():
    name = exports.export_filename("orders", StatsFilters(event_id=3, date_from=date(2026, 3, 1)), utc("2026-03-10T10:00:00"))
    assert name == "guichet-orders-event3-from-2026-03-01-20260310-1100.csv"
