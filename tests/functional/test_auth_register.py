"""Registration and email verification: every bad input gets its message and changes nothing."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from app.extensions import bcrypt, db
from app.models import AuditEvent, User
from tests.factories import UserFactory

GOOD = {
    "username": "LucieM", "email": "Lucie.Martin@Example.test", "first_name": "Lucie", "last_name": "Martin",
    "password": "Velvet-Harbor-Lantern-93", "confirm": "Velvet-Harbor-Lantern-93",
}


def register(client, **changes):
    return client.post("/auth/register", data={**GOOD, **changes})


def users() -> list[tuple]:
    return db.session.execute(sa.select(User.id, User.email, User.username, User.password_hash)).all()


def verification_link(message) -> str:
    match = re.search(r"https?://\S+/auth/verify/[\w.\-]+", message.body)
    assert match, message.body
    return match.group(0)


def test_register_creates_an_unverified_customer_with_a_user_key(client, outbox):
    response = register(client)
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login"
    user = db.session.scalar(sa.select(User))
    assert user.email == "lucie.martin@example.test" and user.username == "LucieM" and user.username_key == "luciem"
    assert user.role == "customer" and user.email_verified_at is None and user.disabled_at is None
    assert isinstance(user.user_key, bytes) and len(user.user_key) == 32
    assert user.password_hash.startswith("$2b$") and bcrypt.check_password_hash(user.password_hash, GOOD["password"])
    assert "Velvet" not in user.password_hash
    [message] = outbox
    assert message.recipients == ["lucie.martin@example.test"]
    assert message.body and message.html and verification_link(message) in message.html
    assert "Welcome, Lucie!" in client.get("/auth/login").get_data(as_text=True)


def test_bcrypt_cost_is_12_outside_tests():
    from config import Config, ProductionConfig

    assert Config.BCRYPT_LOG_ROUNDS >= 12 and ProductionConfig.BCRYPT_LOG_ROUNDS >= 12


def test_two_registrations_get_different_keys(client):
    register(client)
    register(client, username="other", email="other@example.test")
    keys = db.session.scalars(sa.select(User.user_key)).all()
    assert len(keys) == 2 and keys[0] != keys[1]


BAD_INPUTS = [
    ("duplicate email (other case)", {"email": "LUCIE@example.test"}, "An account already uses this email address."),
    ("duplicate username (other case)", {"username": "lucie"}, "This username is already taken."),
    ("too short", {"password": "Vx9#qLm2", "confirm": "Vx9#qLm2"}, "Use at least 12 characters."),
    ("over 72 bytes", {"password": "é" * 40, "confirm": "é" * 40}, "longer than 72 bytes"),
    ("contains the username", {"password": "newcomer-Lucie-2024-zz", "confirm": "newcomer-Lucie-2024-zz",
                               "username": "newcomer"},
     "must not contain your username, your email address or your name"),
    ("common password", {"password": "123qweasdzxc", "confirm": "123qweasdzxc"}, "list of commonly used passwords"),
    ("too weak", {"password": "abcd1234abcd", "confirm": "abcd1234abcd"}, "would be easy to guess"),
    ("mismatched confirmation", {"confirm": "Velvet-Harbor-Lantern-94"}, "The two passwords do not match."),
    ("malformed email", {"email": "lucie.example.test"}, "Enter a valid email address"),
    ("malformed email 2", {"email": "lucie@"}, "Enter a valid email address"),
    ("missing first name", {"first_name": ""}, "Enter your first name."),
    ("bad username characters", {"username": "lu cie<script>"}, "Use letters, digits, dots, hyphens"),
    ("username too short", {"username": "lu"}, "Use between 3 and 40 characters."),
]


@pytest.mark.parametrize("changes,message", [(c, m) for _, c, m in BAD_INPUTS], ids=[i for i, _, _ in BAD_INPUTS])
def test_bad_registration_input(client, outbox, changes, message):
    UserFactory(email="lucie@example.test", username="Lucie")
    before = users()
    base = {**GOOD, "email": "newcomer@example.test", "username": "newcomer"}
    response = client.post("/auth/register", data={**base, **changes})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in html
    assert 'aria-invalid="true"' in html
    assert users() == before and outbox == []
    # What was typed is kept, except passwords.
    assert (changes.get("first_name", GOOD["first_name"]) or "") in html
    assert GOOD["password"] not in html and "value=\"" + (changes.get("password") or GOOD["password"]) not in html


def test_every_broken_rule_gets_its_own_message(client):
    response = register(client, username="lucie", password="lucie", confirm="lucie")
    html = response.get_data(as_text=True)
    assert "Use at least 12 characters." in html
    assert "must not contain your username" in html
    assert "would be easy to guess" in html
    assert users() == []


# ----------------------------------------------------------------- verification
def test_verification_link_confirms_the_address(client, outbox):
    register(client)
    link = verification_link(outbox[0])
    response = client.get(urlsplit(link).path)
    assert response.status_code == 302
    user = db.session.scalar(sa.select(User))
    db.session.refresh(user)
    assert user.email_verified_at is not None
    assert db.session.scalar(sa.select(AuditEvent.type)) == "email_verified"
    # Opening it again is harmless.
    assert client.get("/auth/verify/" + link.rsplit("/", 1)[1]).status_code == 302


def _token(outbox) -> str:
    return verification_link(outbox[0]).rsplit("/", 1)[1]


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: "x" + t,
    lambda t: "not-a-token",
])
def test_tampered_verification_link_is_refused(client, outbox, mangle):
    register(client)
    response = client.get("/auth/verify/" + mangle(_token(outbox)))
    assert response.status_code == 400
    assert "This verification link is not valid." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(User.email_verified_at)) is None
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == 0


def test_expired_verification_link_is_refused(app, client, outbox):
    with freeze_time(datetime.now(UTC)) as frozen:
        register(client)
        token = _token(outbox)
        frozen.tick(timedelta(hours=app.config["EMAIL_VERIFICATION_HOURS"], seconds=1))
        response = client.get("/auth/verify/" + token)
    assert response.status_code == 400
    assert "This verification link has expired." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(User.email_verified_at)) is None


def test_verification_link_from_another_app_key_is_refused(make_app, client, outbox):
    from app.services.verification import make_verification_token

    register(client)
    user = db.session.scalar(sa.select(User))
    forged = make_verification_token("some-other-secret", user)
    response = client.get("/auth/verify/" + forged)
    assert response.status_code == 400
    assert db.session.scalar(sa.select(User.email_verified_at)) is None


def test_resend_verification_sends_a_new_link(client, auth, outbox):
    user = UserFactory(email_verified_at=None)
    auth.login(user)
    page = client.get("/auth/verify/resend")
    assert page.status_code == 200 and user.email in page.get_data(as_text=True)
    response = client.post("/auth/verify/resend")
    assert response.status_code == 302
    [message] = outbox
    assert message.recipients == [user.email]
    assert client.get("/auth/verify/" + verification_link(message).rsplit("/", 1)[1]).status_code == 302
    db.session.refresh(user)
    assert user.is_verified


def test_resend_verification_needs_a_login(client):
    response = client.post("/auth/verify/resend")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_resend_when_already_verified_sends_nothing(client, auth, outbox):
    auth.login(UserFactory())
    assert client.post("/auth/verify/resend").status_code == 302
    assert outbox == []
