"""/admin/audit/ — the audit log: filter by type, user and date (Paris days), paginated."""
from __future__ import annotations

from html import unescape

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent
from app.services import audit
from tests.factories import UserFactory
from tests.html_tables import table_rows
from tests.sales_data import utc
from tests.shop import login

pytestmark = pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)


@pytest.fixture
def admin(client, auth):
    user = UserFactory(role="admin", email="ada@example.test")
    login(auth, client, user)
    return user


def record(type_, when, **kwargs):
    """An audit event written as the app writes it, then dated `when`."""
    audit.record(db.session, type_, **kwargs)
    event = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    event.created_at = utc(when)
    db.session.commit()
    return event


@pytest.fixture
def log(admin):
    lou = UserFactory(email="lou@example.test", username="lou")
    max_ = UserFactory(email="max@example.test", username="maxp")
    record("login_failed", "2026-03-10T08:00:00", subject_user_id=lou.id, ip_address="203.0.113.7")
    record("order_paid", "2026-03-10T22:59:00", actor_id=lou.id, subject_user_id=lou.id, order="GCH-AAAAAA",
           amount_cents=5000)  # 23:59 in Paris
    record("order_paid", "2026-03-10T23:01:00", actor_id=max_.id, subject_user_id=max_.id,
           order="GCH-BBBBBB")  # 00:01 on 11 March in Paris
    record("role_changed", "2026-03-12T09:00:00", actor_id=admin.id, subject_user_id=max_.id,
           old_role="customer", new_role="staff")
    return {"lou": lou, "max": max_}


def rows(client, **params):
    response = client.get("/admin/audit/", query_string=params)
    assert response.status_code == 200
    return table_rows(unescape(response.get_data(as_text=True)), "audit-table")


def test_lists_every_event_newest_first_with_its_details(client, log):
    listed = rows(client)
    assert [row[1] for row in listed if row[1] != "Login succeeded"] == [
        "Role changed", "Order paid", "Order paid", "Login failed"]
    role = next(row for row in listed if row[1] == "Role changed")
    assert role[2:] == ["ada@example.test", "max@example.test", "", "old role: customer · new role: staff"]
    failed = next(row for row in listed if row[1] == "Login failed")
    assert failed[2:4] == ["—", "lou@example.test"] and failed[4] == "203.0.113.7"
    assert failed[0] == "10 Mar 2026, 09:00:00"  # Paris time


def test_filter_by_type(client, log):
    assert [row[1] for row in rows(client, type="order_paid")] == ["Order paid", "Order paid"]


def test_filter_by_user_matches_actor_or_subject(client, log):
    assert [row[1] for row in rows(client, user="MAX@")] == ["Role changed", "Order paid"]
    assert [row[1] for row in rows(client, user="lou")] == ["Order paid", "Login failed"]
    assert [row[1] for row in rows(client, user=f"#{log['lou'].id}")] == ["Order paid", "Login failed"]
    assert rows(client, user="nobody") == [["No audit events match these filters."]]


def test_filter_by_paris_days(client, log):
    on_10th = rows(client, date_from="2026-03-10", date_to="2026-03-10")
    assert [(row[1], row[2]) for row in on_10th] == [("Order paid", "lou@example.test"), ("Login failed", "—")]
    assert on_10th[0][5] == "order: GCH-AAAAAA · amount cents: 5000"
    from_11th = rows(client, date_from="2026-03-11", type="order_paid")
    assert [row[2] for row in from_11th] == ["max@example.test"]


@pytest.mark.parametrize("params, message", [
    ({"date_from": "2026-03-12", "date_to": "2026-03-01"}, "The end date must be on or after the start date."),
    ({"date_to": "soon"}, "Not a valid date value."),
    ({"type": "made_up"}, "Not a valid choice."),
])
def test_bad_filters_show_a_message(client, log, params, message):
    response = client.get("/admin/audit/", query_string=params)
    assert response.status_code == 200 and message in unescape(response.get_data(as_text=True))


def test_paginated_by_fifty(client, admin):
    for minute in range(60):
        record("logout", f"2026-03-10T10:{minute:02d}:00", actor_id=admin.id)
    first = client.get("/admin/audit/", query_string={"type": "logout"}).get_data(as_text=True)
    assert len(table_rows(first, "audit-table")) == 50 and "Page 1 of 2" in first
    assert "/admin/audit/?page=2&amp;type=logout" in first or "/admin/audit/?type=logout&amp;page=2" in first
    second = client.get("/admin/audit/", query_string={"type": "logout", "page": 2}).get_data(as_text=True)
    assert len(table_rows(second, "audit-table")) == 10
    assert table_rows(second, "audit-table")[-1][0] == "10 Mar 2026, 11:00:00"  # the oldest is last
    assert client.get("/admin/audit/", query_string={"page": 99}).status_code == 200


@pytest.mark.parametrize("role", ["customer", "staff"])
def test_only_admins(client, auth, role):
    login(auth, client, UserFactory(role=role))
    assert client.get("/admin/audit/").status_code == 403
