"""My account: profile (email change re-verifies), password change, sessions list and revocation."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.extensions import bcrypt, db
from app.models import AuditEvent, User, UserSession
from tests.factories import DEFAULT_PASSWORD, UserFactory

NEW_PASSWORD = "Quartz-Meadow-Falcon-77"


def snapshot() -> list[tuple]:
    return db.session.execute(sa.select(User.id, User.username, User.email, User.first_name, User.last_name,
                                        User.password_hash, User.email_verified_at).order_by(User.id)).all()


def profile_data(user, **changes):
    return {"first_name": user.first_name, "last_name": user.last_name, "username": user.username,
            "email": user.email, "current_password": "", **changes}


@pytest.fixture
def lucie(client, auth):
    user = UserFactory(username="lucie", email="lucie@example.test", first_name="Lucie", last_name="Martin")
    assert auth.login(user).status_code == 302
    return user


def test_account_pages_need_a_login(client):
    for path in ("/account/", "/account/profile", "/account/password"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/auth/login?next=")


def test_account_page_shows_profile_links_and_sessions(client, lucie):
    html = client.get("/account/").get_data(as_text=True)
    assert "Lucie Martin" in html and "lucie@example.test" in html and "confirmed" in html
    assert "/account/profile" in html and "/account/password" in html
    assert "this device" in html and "Where you are logged in" in html


def test_edit_names_and_username(client, lucie, outbox):
    response = client.post("/account/profile", data=profile_data(lucie, first_name="Lucy", username="LucyM"))
    assert response.status_code == 302
    db.session.refresh(lucie)
    assert (lucie.first_name, lucie.username, lucie.username_key) == ("Lucy", "LucyM", "lucym")
    assert lucie.is_verified and outbox == []
    assert "Lucy Martin" in client.get("/account/").get_data(as_text=True)


def test_email_change_needs_the_password_and_re_verifies(client, lucie, outbox):
    before = snapshot()
    missing = client.post("/account/profile", data=profile_data(lucie, email="new@example.test"))
    assert "Enter your current password to change your email address." in missing.get_data(as_text=True)
    wrong = client.post("/account/profile", data=profile_data(lucie, email="new@example.test",
                                                               current_password="Wrong-password-1"))
    assert "Your current password is wrong." in wrong.get_data(as_text=True)
    assert "new@example.test" in wrong.get_data(as_text=True)  # typed value kept
    assert snapshot() == before and outbox == []

    ok = client.post("/account/profile", data=profile_data(lucie, email="New@Example.test",
                                                            current_password=DEFAULT_PASSWORD))
    assert ok.status_code == 302
    db.session.refresh(lucie)
    assert lucie.email == "new@example.test" and lucie.email_verified_at is None
    notice, verify = outbox
    assert notice.recipients == ["lucie@example.test"] and "new@example.test" in notice.body
    assert verify.recipients == ["new@example.test"]
    token = re.search(r"/auth/verify/([\w.\-]+)", verify.body).group(1)
    assert client.get(f"/auth/verify/{token}").status_code == 302
    db.session.refresh(lucie)
    assert lucie.is_verified


def test_old_verification_link_cannot_verify_a_new_address(client, auth, outbox):
    from app.services.verification import make_verification_token

    user = UserFactory(email_verified_at=None)
    old_token = make_verification_token("testing-secret-key-not-for-production", user)
    auth.login(user)
    client.post("/account/profile", data=profile_data(user, email="changed@example.test",
                                                       current_password=DEFAULT_PASSWORD))
    response = client.get(f"/auth/verify/{old_token}")
    assert response.status_code == 400
    db.session.refresh(user)
    assert user.email_verified_at is None


@pytest.mark.parametrize("changes,message", [
    ({"email": "taken@example.test", "current_password": DEFAULT_PASSWORD}, "An account already uses this email"),
    ({"username": "TAKEN"}, "This username is already taken."),
    ({"email": "broken@"}, "Enter a valid email address"),
    ({"first_name": ""}, "Enter your first name."),
    ({"username": "x"}, "Use between 3 and 40 characters."),
])
def test_bad_profile_input(client, lucie, outbox, changes, message):
    UserFactory(username="taken", email="taken@example.test")
    before = snapshot()
    response = client.post("/account/profile", data=profile_data(lucie, **changes))
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert snapshot() == before and outbox == []


# ----------------------------------------------------------------- password
def test_password_change_revokes_the_other_sessions(app, client, lucie, auth, outbox):
    phone = app.test_client()
    auth.login(lucie, client=phone)
    assert phone.get("/account/").status_code == 200
    response = client.post("/account/password", data={"current_password": DEFAULT_PASSWORD,
                                                       "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    db.session.refresh(lucie)
    assert bcrypt.check_password_hash(lucie.password_hash, NEW_PASSWORD)
    assert client.get("/account/").status_code == 200  # this browser stays logged in
    assert phone.get("/account/").status_code == 302  # the other one is out
    [message] = outbox
    assert "Your password was changed" in message.subject
    types = db.session.scalars(sa.select(AuditEvent.type).order_by(AuditEvent.id)).all()
    assert types[-2:] == ["password_changed", "sessions_revoked"]


@pytest.mark.parametrize("data,message", [
    ({"current_password": "Wrong-password-1", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
     "Your current password is wrong."),
    ({"current_password": DEFAULT_PASSWORD, "password": "short1", "confirm": "short1"}, "Use at least 12 characters."),
    ({"current_password": DEFAULT_PASSWORD, "password": "Lucie-Martin-1999", "confirm": "Lucie-Martin-1999"},
     "must not contain your username"),
    ({"current_password": DEFAULT_PASSWORD, "password": "é" * 40, "confirm": "é" * 40}, "longer than 72 bytes"),
    ({"current_password": DEFAULT_PASSWORD, "password": NEW_PASSWORD, "confirm": "different-Value-99"},
     "The two passwords do not match."),
    ({"current_password": "", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, "Enter your current password."),
])
def test_bad_password_change(app, client, lucie, auth, outbox, data, message):
    phone = app.test_client()
    auth.login(lucie, client=phone)
    before = snapshot()
    response = client.post("/account/password", data=data)
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert snapshot() == before and outbox == []
    assert phone.get("/account/").status_code == 200


# ----------------------------------------------------------------- sessions
def test_revoke_all_other_sessions(app, client, lucie, auth):
    phones = [app.test_client() for _ in range(2)]
    for phone in phones:
        auth.login(lucie, client=phone)
    assert client.post("/account/sessions/revoke-others").status_code == 302
    assert all(phone.get("/account/").status_code == 302 for phone in phones)
    assert client.get("/account/").status_code == 200
    active = db.session.scalar(sa.select(sa.func.count(UserSession.id)).where(UserSession.revoked_at.is_(None)))
    assert active == 1


def test_cannot_revoke_another_persons_session(app, client, lucie, auth):
    other = UserFactory()
    other_client = app.test_client()
    auth.login(other, client=other_client)
    row = db.session.scalar(sa.select(UserSession).where(UserSession.user_id == other.id))
    response = client.post(f"/account/sessions/{row.id}/revoke")
    assert response.status_code == 404  # same answer as a session id that does not exist
    assert client.post("/account/sessions/999999/revoke").status_code == 404
    db.session.refresh(row)
    assert row.revoked_at is None and other_client.get("/account/").status_code == 200


def test_sessions_list_shows_device_and_address(client, lucie):
    html = client.get("/account/", headers={"User-Agent": "Mozilla/5.0 TestPhone"}).get_data(as_text=True)
    row = db.session.scalar(sa.select(UserSession))
    assert row.ip_address in html
