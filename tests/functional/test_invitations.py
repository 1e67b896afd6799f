"""/invitations/activate through HTTP: success, each refusal with its message and no change, rate limit."""
from __future__ import annotations

from datetime import UTC, datetime
from html import unescape

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from app.extensions import db
from app.messages import MESSAGES
from app.models import AuditEvent, Invitation, Person, User
from tests.factories import (
    DEFAULT_PASSWORD,
    InvitationFactory,
    PersonFactory,
    UserFactory,
)

URL = "/invitations/activate"
NEW_PASSWORD = "Gate-Keeper-Lantern-93"


def html(response) -> str:
    return unescape(response.get_data(as_text=True))


def row_counts() -> dict[str, int]:
    return {model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (User, Person, Invitation)}


def form(code, email, password=NEW_PASSWORD, confirm=None):
    return {"code": code, "email": email, "password": password,
            "confirm": password if confirm is None else confirm}


def post(client, data, address="192.0.2.10"):
    return client.post(URL, data=data, environ_overrides={"REMOTE_ADDR": address})


def test_the_page_offers_the_three_ways_in(client):
    page = html(client.get(URL))
    assert "Activate my access" in page
    assert 'href="/auth/login"' in page and 'href="/auth/reset"' in page
    assert 'name="code"' in page and 'name="confirm"' in page
    login_page = html(client.get("/auth/login"))
    assert 'href="/invitations/activate"' in login_page


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)
def test_a_valid_code_creates_the_account_and_logs_in(client):
    person = PersonFactory(first_name="Noor", last_name="Haddad", email="noor@example.test", intended_role="staff")
    invitation = InvitationFactory(person=person)
    response = post(client, form(invitation.code.lower(), "NOOR@example.test"))
    assert response.status_code == 302
    assert response.headers["Location"] == "/tickets/scan"
    user = db.session.scalar(sa.select(User).where(User.email == "noor@example.test"))
    assert (user.role, user.username, user.first_name) == ("staff", "noor", "Noor")
    assert user.is_verified
    db.session.refresh(invitation)
    assert invitation.used_by_id == user.id
    assert db.session.get(Person, person.id).user_id == user.id
    types = set(db.session.scalars(sa.select(AuditEvent.type)))
    assert {"invitation_activated", "login_succeeded"} <= types
    account = client.get("/account/")
    assert account.status_code == 200 and "noor@example.test" in html(account)


def test_an_admin_invitation_lands_on_the_admin_area_after_2fa_enrolment(client):
    invitation = InvitationFactory(person=PersonFactory(email="ada@example.test", intended_role="admin"))
    response = post(client, form(invitation.code, "ada@example.test"))
    assert response.headers["Location"] == "/admin/"
    gate = client.get("/admin/")  # REQUIRE_2FA_FOR_STAFF is on in tests: enrol first
    assert gate.status_code == 302 and gate.headers["Location"].startswith("/account/2fa")


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)
def test_a_logged_in_customer_links_their_own_account(client, auth):
    customer = UserFactory(email="fan@example.test")
    auth.login(customer)
    invitation = InvitationFactory(person=PersonFactory(email="fan@example.test"))
    before = row_counts()
    response = post(client, form(invitation.code, "fan@example.test", password=DEFAULT_PASSWORD))
    assert response.status_code == 302
    assert row_counts() == before
    assert db.session.get(User, customer.id).role == "staff"
    assert client.get("/tickets/scan").status_code == 200


# --------------------------------------------------------------------------- every refusal
def _unknown(invitation):
    return form("GCH-ABCDEF-GHJKM", "new@example.test"), "invitation_unknown", "code"


def _used(invitation):
    invitation.used_at = datetime.now(UTC)
    db.session.commit()
    return form(invitation.code, "new@example.test"), "invitation_used", "code"


def _revoked(invitation):
    invitation.revoked_at = datetime.now(UTC)
    db.session.commit()
    return form(invitation.code, "new@example.test"), "invitation_revoked", "code"


def _mismatched_confirmation(invitation):
    return (form(invitation.code, "new@example.test", confirm=NEW_PASSWORD + "x"), None, "confirm")


def _weak_password(invitation):
    return form(invitation.code, "new@example.test", password="password1234"), "password_too_common", "password"


def _existing_email_wrong_password(invitation):
    UserFactory(email="new@example.test")
    return (form(invitation.code, "new@example.test", password="Not-The-Right-One-2026"),
            "invitation_wrong_password", "password")


def _other_email(invitation):
    return form(invitation.code, "someone.else@example.test"), "invitation_email_mismatch", "email"


def _malformed_code(invitation):
    return form("GCH-0O0O0O-1I1I1", "new@example.test"), "invitation_unknown", "code"


REFUSALS = [_unknown, _used, _revoked, _mismatched_confirmation, _weak_password, _existing_email_wrong_password,
            _other_email, _malformed_code]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda f: f.__name__.strip("_"))
def test_each_refusal_shows_its_message_and_changes_nothing(client, case):
    invitation = InvitationFactory(person=PersonFactory(email="new@example.test"))
    data, code, field = case(invitation)
    before = row_counts()
    response = post(client, data)
    page = html(response)
    assert response.status_code == 200
    expected = MESSAGES[code] if code else "The two passwords do not match."
    assert expected in page
    assert f'id="{field}-errors"' in page  # next to its field
    assert row_counts() == before
    db.session.refresh(invitation)
    assert invitation.used_by_id is None
    assert db.session.scalar(sa.select(Person.user_id)) is None
    assert "login_succeeded" not in set(db.session.scalars(sa.select(AuditEvent.type)))
    assert data["password"] not in page  # passwords are never sent back
    if data["code"]:
        assert f'value="{data["code"]}"' in page  # what was typed is kept


def test_an_expired_code_with_frozen_time(client):
    with freeze_time("2026-07-01 09:00:00"):
        invitation = InvitationFactory(person=PersonFactory(email="late@example.test"))
    with freeze_time("2026-07-08 09:00:01"):
        before = row_counts()
        page = html(post(client, form(invitation.code, "late@example.test")))
        assert MESSAGES["invitation_expired"] in page
        assert row_counts() == before
    db.session.refresh(invitation)
    assert invitation.used_at is None


def test_every_code_state_has_a_different_message():
    codes = ["invitation_unknown", "invitation_expired", "invitation_used", "invitation_revoked"]
    assert len({MESSAGES[code] for code in codes}) == 4


def test_empty_and_oversized_input_is_refused_politely(client):
    page = html(post(client, {"code": "", "email": "not-an-email", "password": "", "confirm": ""}))
    assert "Enter the invitation code you received." in page
    assert "Enter a valid email address" in page
    page = html(post(client, form("G" * 500, "x@example.test")))
    assert "An invitation code is much shorter than that." in page
    assert row_counts() == {"users": 0, "persons": 0, "invitations": 0}


def test_a_password_over_72_bytes_gets_its_message(client):
    invitation = InvitationFactory(person=PersonFactory(email="long@example.test"))
    before = row_counts()
    page = html(post(client, form(invitation.code, "long@example.test", password="é" * 40)))
    assert MESSAGES["password_too_long"] in page
    assert row_counts() == before


def test_activation_is_rate_limited_per_address(client):
    invitation = InvitationFactory(person=PersonFactory(email="slow@example.test"))
    for _ in range(5):
        assert post(client, form("GCH-ABCDEF-GHJKM", "slow@example.test")).status_code == 200
    before = row_counts()
    blocked = post(client, form(invitation.code, "slow@example.test"))
    assert blocked.status_code == 429
    assert row_counts() == before
    db.session.refresh(invitation)
    assert invitation.used_at is None
    # another address is not blocked
    assert post(client, form(invitation.code, "slow@example.test"), address="192.0.2.77").status_code == 302


def test_a_code_cannot_be_used_twice_through_the_page(client, app):
    invitation = InvitationFactory(person=PersonFactory(email=None))
    assert post(client, form(invitation.code, "first@example.test")).status_code == 302
    other = app.test_client()
    page = html(post(other, form(invitation.code, "second@example.test"), address="192.0.2.11"))
    assert MESSAGES["invitation_used"] in page
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1

