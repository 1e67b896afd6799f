"""Each audit event type is recorded by the action that causes it — one test per type, each
driving the real action through HTTP — and the admin audit log lists it.

`test_every_audit_type_has_its_test` fails when a type is added to AUDIT_TYPES without one.
"""
from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pyotp
import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from app.extensions import db
from app.models import AuditEvent, Invitation, ScannerToken, Ticket, User
from app.services import two_factor
from app.services.audit import AUDIT_TYPES
from app.tickets.documents import ticket_payload
from tests.factories import (
    DEFAULT_PASSWORD,
    InvitationFactory,
    OfferFactory,
    PersonFactory,
    UserFactory,
    make_paid_order,
)
from tests.html_tables import table_rows
from tests.shop import buy, make_event, offer_of, pay

pytestmark = pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)

NEW_PASSWORD = "Velvet-Harbor-Lantern-93"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
T0 = datetime(2026, 5, 4, 10, 0, 5, tzinfo=UTC)  # 5 s into a 30 s TOTP step


def events_of(type_: str) -> list[AuditEvent]:
    db.session.expire_all()
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == type_).order_by(AuditEvent.id)).all()


def the_event(type_: str) -> AuditEvent:
    found = events_of(type_)
    assert len(found) == 1, f"{type_}: {len(found)} events"
    event = found[0]
    assert event.created_at is not None and event.created_at.tzinfo is not None
    return event


def login(auth, user, client=None, password=DEFAULT_PASSWORD):
    response = auth.login(user, password=password, client=client)
    assert response.status_code == 302 and "/auth/login" not in response.headers["Location"], response.status_code
    return response


def code_at(when: datetime) -> str:
    return pyotp.TOTP(SECRET).at(when)


def enrolled(**fields) -> tuple[User, list[str]]:
    """A user whose 2FA was turned on an hour before T0 (so T0's code is still unused)."""
    user = UserFactory(**fields)
    earlier = T0 - timedelta(hours=1)
    codes = two_factor.enable_two_factor(db.session, user, SECRET, code_at(earlier), now=earlier)
    return user, codes


def shown_in_the_audit_log(app, auth, type_: str) -> None:
    """The admin audit page lists the event when filtered on its type."""
    admin = UserFactory(role="admin")
    client = app.test_client()
    login(auth, admin, client)
    html = client.get("/admin/audit/", query_string={"type": type_}).get_data(as_text=True)
    assert len(table_rows(html, "audit-table")) == len(events_of(type_)) >= 1


def email_link(message, path: str) -> str:
    match = re.search(rf"https?://\S+{path}[\w.\-]+", message.body)
    assert match, message.body
    return urlsplit(match.group(0)).path


# --------------------------------------------------------------------------- accounts
def test_login_succeeded(app, client, auth):
    user = UserFactory()
    login(auth, user)
    event = the_event("login_succeeded")
    assert (event.actor_id, event.subject_user_id) == (user.id, user.id) and event.ip_address
    shown_in_the_audit_log(app, auth, "login_succeeded")


def test_login_failed(app, client, auth):
    user = UserFactory()
    assert auth.login(user, password="not-the-password").status_code == 200
    event = the_event("login_failed")
    assert event.subject_user_id == user.id
    assert "not-the-password" not in str(event.details)
    shown_in_the_audit_log(app, auth, "login_failed")


def test_logout(app, client, auth):
    user = UserFactory()
    login(auth, user)
    assert auth.logout().status_code == 302
    assert the_event("logout").actor_id == user.id
    shown_in_the_audit_log(app, auth, "logout")


def test_password_changed(app, client, auth):
    user = UserFactory()
    login(auth, user)
    response = client.post("/account/password", data={"current_password": DEFAULT_PASSWORD, "password": NEW_PASSWORD,
                                                      "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    event = the_event("password_changed")
    assert event.subject_user_id == user.id and NEW_PASSWORD not in str(event.details)
    shown_in_the_audit_log(app, auth, "password_changed")


def test_password_reset_requested(app, client, auth, outbox):
    user = UserFactory()
    assert client.post("/auth/reset", data={"email": user.email}).status_code == 200
    event = the_event("password_reset_requested")
    assert event.subject_user_id == user.id
    assert email_link(outbox[0], "/auth/reset/").rsplit("/", 1)[1] not in str(event.details)
    shown_in_the_audit_log(app, auth, "password_reset_requested")


def test_password_reset_completed(app, client, auth, outbox):
    user = UserFactory()
    client.post("/auth/reset", data={"email": user.email})
    path = email_link(outbox[0], "/auth/reset/")
    code = re.search(r"Type this code: (\d{6})", outbox[0].body).group(1)
    response = client.post(path, data={"code": code, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    event = the_event("password_reset_completed")
    assert event.subject_user_id == user.id and code not in str(event.details)
    shown_in_the_audit_log(app, auth, "password_reset_completed")


def test_email_verified(app, client, auth, outbox):
    client.post("/auth/register", data={"username": "LucieM", "email": "lucie@example.test", "first_name": "Lucie",
                                        "last_name": "Martin", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert client.get(email_link(outbox[0], "/auth/verify/")).status_code == 302
    user = db.session.scalar(sa.select(User).where(User.email == "lucie@example.test"))
    assert the_event("email_verified").subject_user_id == user.id
    shown_in_the_audit_log(app, auth, "email_verified")


def test_sessions_revoked(app, client, auth):
    user = UserFactory()
    other_device = app.test_client()
    login(auth, user, other_device)
    login(auth, user)
    assert client.post("/account/sessions/revoke-others").status_code == 302
    event = the_event("sessions_revoked")
    assert event.subject_user_id == user.id
    assert other_device.get("/account/").status_code == 302  # that session is over
    shown_in_the_audit_log(app, auth, "sessions_revoked")


# --------------------------------------------------------------------------- two-factor authentication
def test_2fa_enabled(app, client, auth):
    user = UserFactory()
    login(auth, user)
    with freeze_time(T0):
        page = client.get("/account/2fa/setup").get_data(as_text=True)
        secret = re.search(r'data-secret="([A-Z2-7]+)"', page).group(1)
        assert client.post("/account/2fa/setup", data={"code": pyotp.TOTP(secret).at(T0)}).status_code == 302
    event = the_event("2fa_enabled")
    assert event.subject_user_id == user.id and secret not in str(event.details)
    shown_in_the_audit_log(app, auth, "2fa_enabled")


def test_2fa_disabled(app, client, auth):
    user, _ = enrolled()
    with freeze_time(T0):
        login(auth, user)
        assert client.post("/auth/2fa", data={"code": code_at(T0)}).status_code == 302
        response = client.post("/account/2fa/disable", data={"disable-password": DEFAULT_PASSWORD,
                                                             "disable-code": code_at(T0 + timedelta(seconds=30))})
        assert response.status_code == 302
    assert the_event("2fa_disabled").subject_user_id == user.id
    shown_in_the_audit_log(app, auth, "2fa_disabled")


def test_2fa_recovery_code_used(app, client, auth):
    user, codes = enrolled()
    login(auth, user)
    assert client.post("/auth/2fa", data={"code": codes[3]}).status_code == 302
    event = the_event("2fa_recovery_code_used")
    assert event.subject_user_id == user.id and codes[3] not in str(event.details)
    shown_in_the_audit_log(app, auth, "2fa_recovery_code_used")


def test_2fa_recovery_codes_regenerated(app, client, auth):
    user, codes = enrolled()
    with freeze_time(T0):
        login(auth, user)
        assert client.post("/auth/2fa", data={"code": code_at(T0)}).status_code == 302
        response = client.post("/account/2fa/recovery-codes/new",
                               data={"regenerate-password": DEFAULT_PASSWORD, "regenerate-code": codes[0]})
        assert response.status_code == 302
    assert the_event("2fa_recovery_codes_regenerated").subject_user_id == user.id
    shown_in_the_audit_log(app, auth, "2fa_recovery_codes_regenerated")


def test_2fa_reset_by_admin(app, client, auth):
    user, _ = enrolled()
    admin = UserFactory(role="admin")
    login(auth, admin)
    response = client.post(f"/admin/users/{user.id}/reset-2fa", data={"identity_check": "Passport seen on a call"})
    assert response.status_code == 302
    event = the_event("2fa_reset_by_admin")
    assert (event.actor_id, event.subject_user_id) == (admin.id, user.id)
    shown_in_the_audit_log(app, auth, "2fa_reset_by_admin")


# --------------------------------------------------------------------------- people, invitations, roles
def test_invitation_created(app, client, auth):
    admin = UserFactory(role="admin")
    person = PersonFactory(email="noor@example.test")
    login(auth, admin)
    assert client.post(f"/admin/people/{person.id}/invite").status_code == 302
    event = the_event("invitation_created")
    assert event.actor_id == admin.id
    invitation = db.session.scalar(sa.select(Invitation).where(Invitation.person_id == person.id))
    assert invitation.code_hash not in str(event.details)
    shown_in_the_audit_log(app, auth, "invitation_created")


def test_invitation_revoked(app, client, auth):
    admin = UserFactory(role="admin")
    invitation = InvitationFactory()
    login(auth, admin)
    assert client.post(f"/admin/invitations/{invitation.id}/revoke").status_code == 302
    assert the_event("invitation_revoked").actor_id == admin.id
    shown_in_the_audit_log(app, auth, "invitation_revoked")


def test_invitation_activated(app, client, auth):
    person = PersonFactory(email="noor@example.test", intended_role="staff")
    invitation = InvitationFactory(person=person)
    response = client.post("/invitations/activate", data={"code": invitation.code, "email": "noor@example.test",
                                                          "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    user = db.session.scalar(sa.select(User).where(User.email == "noor@example.test"))
    event = the_event("invitation_activated")
    assert event.subject_user_id == user.id and invitation.code not in str(event.details)
    shown_in_the_audit_log(app, auth, "invitation_activated")


def test_role_changed(app, client, auth):
    admin = UserFactory(role="admin")
    user = UserFactory()
    login(auth, admin)
    assert client.post(f"/admin/users/{user.id}/role", data={"role": "staff"}).status_code == 302
    event = the_event("role_changed")
    assert (event.actor_id, event.subject_user_id) == (admin.id, user.id)
    assert (event.details["old_role"], event.details["new_role"]) == ("customer", "staff")
    shown_in_the_audit_log(app, auth, "role_changed")


def test_account_disabled(app, client, auth):
    admin = UserFactory(role="admin")
    user = UserFactory()
    login(auth, admin)
    assert client.post(f"/admin/users/{user.id}/disable").status_code == 302
    event = the_event("account_disabled")
    assert (event.actor_id, event.subject_user_id) == (admin.id, user.id)
    shown_in_the_audit_log(app, auth, "account_disabled")


def test_account_enabled(app, client, auth):
    admin = UserFactory(role="admin")
    user = UserFactory(disabled_at=datetime.now(UTC))
    login(auth, admin)
    assert client.post(f"/admin/users/{user.id}/enable").status_code == 302
    event = the_event("account_enabled")
    assert (event.actor_id, event.subject_user_id) == (admin.id, user.id)
    shown_in_the_audit_log(app, auth, "account_enabled")


def test_user_key_rotated(app, client, auth):
    admin = UserFactory(role="admin")
    user = UserFactory()
    make_paid_order(user, (OfferFactory(), 1))
    login(auth, admin)
    assert client.post(f"/admin/users/{user.id}/rotate-key", data={"confirm": "y"}).status_code == 302
    event = the_event("user_key_rotated")
    assert (event.actor_id, event.subject_user_id) == (admin.id, user.id)
    db.session.refresh(user)
    assert user.user_key.hex() not in str(event.details)
    shown_in_the_audit_log(app, auth, "user_key_rotated")


# --------------------------------------------------------------------------- orders and the gate
@pytest.fixture
def paid_order(app, client, auth):
    """A customer buys and pays through the shop; returns (customer, order code)."""
    customer = UserFactory()
    login(auth, customer)
    code = buy(client, (offer_of(make_event(), "solo"), 2))
    assert pay(client, code).status_code in (302, 303)
    return customer, code


def test_order_paid(app, client, auth, paid_order):
    customer, code = paid_order
    event = the_event("order_paid")
    assert event.subject_user_id == customer.id and event.details["order"] == code
    assert "4242 4242" not in str(event.details) and "4242424242424242" not in str(event.details)
    shown_in_the_audit_log(app, auth, "order_paid")


def test_order_cancelled(app, client, auth, paid_order):
    customer, code = paid_order
    assert client.post(f"/orders/{code}/cancel").status_code in (302, 303)
    event = the_event("order_cancelled")
    assert (event.actor_id, event.subject_user_id, event.details["order"]) == (customer.id, customer.id, code)
    shown_in_the_audit_log(app, auth, "order_cancelled")


def test_order_refunded(app, client, auth, paid_order):
    customer, code = paid_order
    admin = UserFactory(role="admin")
    admin_client = app.test_client()
    login(auth, admin, admin_client)
    assert admin_client.post(f"/admin/orders/{code}/cancel").status_code == 302
    event = the_event("order_refunded")
    assert (event.actor_id, event.subject_user_id, event.details["order"]) == (admin.id, customer.id, code)
    assert event.details["amount_cents"] == 2 * 5000
    shown_in_the_audit_log(app, auth, "order_refunded")


def test_check_in(app, client, auth):
    order = make_paid_order(UserFactory(), (OfferFactory(), 1))
    ticket = db.session.scalar(sa.select(Ticket).where(Ticket.order_id == order.id))
    staff = UserFactory(role="staff")
    login(auth, staff)
    assert client.post("/tickets/api/check-in", json={"payload": ticket_payload(ticket)}).json["verdict"] == "VALID"
    event = the_event("check_in")
    assert (event.actor_id, event.subject_user_id, event.details["ticket_id"]) == (staff.id, order.user_id, ticket.id)
    shown_in_the_audit_log(app, auth, "check_in")


def test_scanner_token_created(app, client, auth):
    staff = UserFactory(role="staff")
    login(auth, staff)
    page = client.post("/tickets/scanner-tokens", data={"name": "Gate 3 phone"}).get_data(as_text=True)
    event = the_event("scanner_token_created")
    assert event.actor_id == staff.id
    token_hash = db.session.scalar(sa.select(ScannerToken.token_hash))
    assert token_hash not in str(event.details) and "Gate 3 phone" in page
    shown_in_the_audit_log(app, auth, "scanner_token_created")


def test_scanner_token_revoked(app, client, auth):
    staff = UserFactory(role="staff")
    login(auth, staff)
    client.post("/tickets/scanner-tokens", data={"name": "Gate 3 phone"})
    token_id = db.session.scalar(sa.select(ScannerToken.id))
    assert client.post(f"/tickets/scanner-tokens/{token_id}/revoke").status_code == 302
    assert the_event("scanner_token_revoked").actor_id == staff.id
    shown_in_the_audit_log(app, auth, "scanner_token_revoked")


def test_every_audit_type_has_its_test():
    module = sys.modules[__name__]
    missing = [t for t in AUDIT_TYPES if not callable(getattr(module, f"test_{t}", None))]
    assert not missing, f"audit types without a test here: {missing}"
