"""Admin users through HTTP: search, details (role, 2FA, sessions), and the confirmed actions
(role change, disable, enable, revoke sessions) taking effect on the user's next request."""
from __future__ import annotations

from datetime import UTC, datetime
from html import unescape

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.messages import MESSAGES
from app.models import AuditEvent, User, UserSession
from tests.conftest import AuthActions
from tests.factories import UserFactory

pytestmark = pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)  # the 2FA gate has its own tests


def html(response) -> str:
    return unescape(response.get_data(as_text=True))


@pytest.fixture
def admin(auth):
    user = UserFactory(role="admin", email="chief@example.test", username="chief")
    assert auth.login(user).status_code == 302
    return user


@pytest.fixture
def other(app):
    """A second browser, logged in as a customer."""
    user = UserFactory(role="customer", email="camille@example.test", username="camille")
    browser = app.test_client()
    assert AuthActions(browser).login(user).status_code == 302
    browser.user = user
    return browser


def audit_types() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.type).order_by(AuditEvent.id)))


def test_list_and_search_users(client, admin):
    UserFactory(email="ines@example.test", username="ines", first_name="Inès", role="staff",
                totp_secret="JBSWY3DPEHPK3PXP", totp_enabled_at=datetime.now(UTC))
    UserFactory(email="bob@example.test", username="bob", disabled_at=datetime.now(UTC))
    page = html(client.get("/admin/users/"))
    assert "ines@example.test" in page and "bob@example.test" in page and "3 users" in page
    found = html(client.get("/admin/users/?q=INÈS"))
    assert "ines@example.test" in found and "bob@example.test" not in found
    staff = html(client.get("/admin/users/?role=staff"))
    assert "ines@example.test" in staff and "chief@example.test" not in staff
    disabled = html(client.get("/admin/users/?status=disabled"))
    assert "bob@example.test" in disabled and "ines@example.test" not in disabled
    assert "No account matches" in html(client.get("/admin/users/?q=%25%25"))


def test_user_page_shows_role_2fa_and_sessions(client, admin, other):
    page = html(client.get(f"/admin/users/{other.user.id}"))
    assert 'id="user-role">Customer' in page
    assert "Two-factor</dt>" in page and "Off" in page
    assert "Active" in page and "Revoke all sessions" in page
    assert client.get("/admin/users/999999").status_code == 404


def test_change_role_asks_first_then_takes_effect_on_the_next_request(client, admin, other):
    assert other.get("/tickets/scan").status_code == 403
    confirm = client.get(f"/admin/users/{other.user.id}/role?role=staff")
    page = html(confirm)
    assert confirm.status_code == 200
    assert "From <strong>Customer</strong> to <strong>Staff</strong>" in page
    assert db.session.get(User, other.user.id).role == "customer"  # nothing changed yet
    cookie_before = other.get_cookie("guichet_session").value
    response = client.post(f"/admin/users/{other.user.id}/role", data={"role": "staff"})
    assert response.headers["Location"] == f"/admin/users/{other.user.id}"
    db.session.expire_all()
    assert db.session.get(User, other.user.id).role == "staff"
    assert other.get("/tickets/scan").status_code == 200  # the very next request
    assert other.get_cookie("guichet_session").value != cookie_before  # privilege change: new session id
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.type == "role_changed"))
    assert (event.actor_id, event.subject_user_id) == (admin.id, other.user.id)
    assert event.details == {"old_role": "customer", "new_role": "staff"}


def test_a_demoted_admin_loses_the_admin_pages_at_once(client, admin, app):
    second = UserFactory(role="admin")
    browser = app.test_client()
    AuthActions(browser).login(second)
    assert browser.get("/admin/users/").status_code == 200
    client.post(f"/admin/users/{second.id}/role", data={"role": "customer"})
    assert browser.get("/admin/users/").status_code == 403


def test_the_last_admin_cannot_step_down(client, admin):
    page = html(client.get(f"/admin/users/{admin.id}/role?role=staff"))
    assert "This is the last active administrator" in page
    response = client.post(f"/admin/users/{admin.id}/role", data={"role": "staff"}, follow_redirects=True)
    assert MESSAGES["last_admin"] in html(response)
    db.session.expire_all()
    assert db.session.get(User, admin.id).role == "admin"
    assert "role_changed" not in audit_types()


def test_bad_role_values_change_nothing(client, admin, other):
    for role in ("root", "", "customer"):
        client.post(f"/admin/users/{other.user.id}/role", data={"role": role}, follow_redirects=True)
    db.session.expire_all()
    assert db.session.get(User, other.user.id).role == "customer"
    assert audit_types().count("role_changed") == 0


def test_disable_logs_the_user_out_and_enable_lets_them_back(client, admin, other):
    confirm = html(client.get(f"/admin/users/{other.user.id}/disable"))
    assert "every current session is ended now" in confirm
    assert other.get("/account/").status_code == 200  # GET changed nothing
    response = client.post(f"/admin/users/{other.user.id}/disable", follow_redirects=True)
    assert "is disabled and signed out everywhere" in html(response)
    gone = other.get("/account/")
    assert gone.status_code == 302 and gone.headers["Location"].startswith("/auth/login")
    AuthActions(other).login(other.user)
    assert other.get("/account/").status_code == 302  # a disabled account cannot log in
    rows = db.session.scalars(sa.select(UserSession).where(UserSession.user_id == other.user.id)).all()
    assert rows and all(row.revoked_at is not None for row in rows)
    client.post(f"/admin/users/{other.user.id}/enable")
    assert AuthActions(other).login(other.user).status_code == 302
    assert other.get("/account/").status_code == 200
    assert {"account_disabled", "account_enabled"} <= set(audit_types())


def test_an_admin_cannot_disable_themself(client, admin):
    UserFactory(role="admin")
    page = html(client.post(f"/admin/users/{admin.id}/disable", follow_redirects=True))
    assert MESSAGES["cannot_disable_self"] in page
    db.session.expire_all()
    assert not db.session.get(User, admin.id).is_disabled


def test_revoke_all_sessions(client, admin, other):
    confirm = html(client.get(f"/admin/users/{other.user.id}/sessions/revoke"))
    assert "1 active session" in confirm
    client.post(f"/admin/users/{other.user.id}/sessions/revoke")
    anonymous = other.get("/account/")
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.type == "sessions_revoked"))
    assert event.actor_id == admin.id and event.details["count"] == 1
    again = html(client.post(f"/admin/users/{other.user.id}/sessions/revoke", follow_redirects=True))
    assert MESSAGES["no_sessions_to_revoke"] in again


@pytest.mark.parametrize("role", ["customer", "staff"])
def test_only_admins_manage_users(client, auth, role):
    target = UserFactory(role="customer")
    auth.login(UserFactory(role=role))
    assert client.get("/admin/users/").status_code == 403
    assert client.post(f"/admin/users/{target.id}/role", data={"role": "admin"}).status_code == 403
    assert client.post(f"/admin/users/{target.id}/disable").status_code == 403
    db.session.expire_all()
    assert db.session.get(User, target.id).role == "customer" and not db.session.get(User, target.id).is_disabled
