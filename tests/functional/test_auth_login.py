"""Login, logout, server-side sessions: rotation at login, revocation, `next`, the login limits."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, User, UserSession
from tests.factories import DEFAULT_PASSWORD, UserFactory

SESSION_COOKIE = "guichet_session"


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def audit_types() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.type).order_by(AuditEvent.id)))


def session_cookie(client) -> str | None:
    cookie = client.get_cookie(SESSION_COOKIE)
    return cookie.value if cookie else None


def post_login(client, email, password, *, ip="192.0.2.10", **extra):
    return client.post("/auth/login", data={"email": email, "password": password, **extra},
                       environ_overrides={"REMOTE_ADDR": ip})


def test_login_page_shows_the_three_tabs(client):
    html = client.get("/auth/login").get_data(as_text=True)
    assert "Email / password" in html and "Forgot password" in html
    assert 'href="/auth/reset"' in html


def test_login_creates_a_session_row_and_logs_in(client, auth):
    user = UserFactory()
    response = auth.login(user)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    row = db.session.scalar(sa.select(UserSession))
    assert row.user_id == user.id and row.revoked_at is None and row.ip_address.startswith("10.")
    assert audit_types() == ["login_succeeded"]
    page = client.get("/account/")
    assert page.status_code == 200 and user.email in page.get_data(as_text=True)
