"""Password reset through a real SMTP server: link AND code, 20 minutes, single use, 5 wrong codes."""
from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pyotp
import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from app.extensions import bcrypt, db
from app.models import AuditEvent, PasswordReset, User, UserSession
from tests.factories import DEFAULT_PASSWORD, UserFactory

NEW_PASSWORD = "Quartz-Meadow-Falcon-77"


def wait_for(smtp_server, n: int = 1, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while len(smtp_server.messages) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(smtp_server.messages) >= n, "no email reached the SMTP server"
    return smtp_server.messages[n - 1]


def link_and_code(message) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"https?://\S+/auth/reset/[\w\-]+", text).group(0)
    code = re.search(r"Type this code: (\d{6})", text).group(1)
    html = message.get_body(preferencelist=("html",)).get_content()
    assert link in html and code in html  # multipart: the same link and code in both parts
    return urlsplit(link).path, code


def request_reset(client, email, ip="192.0.2.50"):
    return client.post("/auth/reset", data={"email": email}, environ_overrides={"REMOTE_ADDR": ip})


def submit(client, path, code, password=NEW_PASSWORD, ip="192.0.2.60", **extra):
    return client.post(path, data={"code": code, "password": password, "confirm": password, **extra},
                       environ_overrides={"REMOTE_ADDR": ip})


def password_is(user, password) -> bool:
    db.session.refresh(user)
    return bcrypt.check_password_hash(user.password_hash, password)


def test_reset_through_a_real_smtp_server(client, smtp_server):
    user = UserFactory()
    response = request_reset(client, user.email.upper())
    assert response.status_code == 200 and "Check your email" in response.get_data(as_text=True)
    message = wait_for(smtp_server)
    assert message["To"] == user.email and "Reset your password" in message["Subject"]
    assert message.is_multipart()
    path, code = link_and_code(message)

    # Stored hashed: neither the token nor the code is in the table.
    reset = db.session.scalar(sa.select(PasswordReset))
    token = path.rsplit("/", 1)[1]
    assert token not in reset.token_hash and code != reset.code_hash and len(reset.code_hash) == 64
    assert reset.expires_at - reset.created_at == timedelta(minutes=20)

    form = client.get(path)
    assert form.status_code == 200 and "6-digit code" in form.get_data(as_text=True)
    assert "Authentication code or recovery code" not in form.get_data(as_text=True)
    done = submit(client, path, code)
    assert done.status_code == 302 and done.headers["Location"] == "/auth/login"
    assert password_is(user, NEW_PASSWORD)
    notice = wait_for(smtp_server, 2)
    assert "Your password was changed" in notice["Subject"] and notice["To"] == user.email
    types = db.session.scalars(sa.select(AuditEvent.type).order_by(AuditEvent.id)).all()
    assert types == ["password_reset_requested", "password_reset_completed", "sessions_revoked"]
    assert client.post("/auth/login", data={"email": user.email, "password": NEW_PASSWORD}).status_code == 302


def test_the_answer_is_the_same_whether_the_email_exists(client, outbox):
    user = UserFactory(email="known@example.test")
    known = request_reset(client, "known@example.test").get_data(as_text=True)
    unknown = request_reset(client, "unknown@example.test", ip="192.0.2.51").get_data(as_text=True)
    assert known.replace("known@", "X@") == unknown.replace("unknown@", "X@")
    assert len(outbox) == 1 and outbox[0].recipients == [user.email]
    assert db.session.scalar(sa.select(sa.func.count(PasswordReset.id))) == 1


def test_malformed_email_is_refused_with_a_message(client, outbox):
    response = request_reset(client, "not-an-email")
    assert "Enter a valid email address" in response.get_data(as_text=True)
    assert outbox == [] and db.session.scalar(sa.select(sa.func.count(PasswordReset.id))) == 0


def test_link_without_the_code_does_nothing(client, smtp_server):
    user = UserFactory()
    request_reset(client, user.email)
    path, _code = link_and_code(wait_for(smtp_server))
    response = submit(client, path, "")
    assert "Enter the 6-digit code from the email." in response.get_data(as_text=True)
    assert password_is(user, DEFAULT_PASSWORD)


def test_five_wrong_codes_void_the_reset(client, smtp_server):
    user = UserFactory()
    request_reset(client, user.email)
    path, code = link_and_code(wait_for(smtp_server))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for attempt in range(1, 5):
        response = submit(client, path, wrong)
        assert response.status_code == 200
        assert f"This code is wrong. {5 - attempt} attempt(s) left" in response.get_data(as_text=True)
    fifth = submit(client, path, wrong)
    assert fifth.status_code == 400 and "Too many wrong codes" in fifth.get_data(as_text=True)
    reset = db.session.scalar(sa.select(PasswordReset))
    assert reset.failed_attempts == 5 and reset.voided_at is not None
    # The right code no longer helps (from another address, so the per-minute limit is not what stops it).
    late = submit(client, path, code, ip="192.0.2.99")
    assert late.status_code == 400 and "Too many wrong codes" in late.get_data(as_text=True)
    assert password_is(user, DEFAULT_PASSWORD)


def test_after_twenty_minutes_link_and_code_are_refused(client, outbox):
    user = UserFactory()
    with freeze_time(datetime.now(UTC)) as frozen:
        request_reset(client, user.email)
        message = outbox[0]
        path = urlsplit(re.search(r"https?://\S+/auth/reset/[\w\-]+", message.body).group(0)).path
        code = re.search(r"Type this code: (\d{6})", message.body).group(1)
        frozen.tick(timedelta(minutes=19, seconds=59))
        assert client.get(path).status_code == 200
        frozen.tick(timedelta(seconds=1))
        page = client.get(path)
        assert page.status_code == 400 and "has expired" in page.get_data(as_text=True)
        response = submit(client, path, code)
        assert response.status_code == 400 and "has expired" in response.get_data(as_text=True)
    assert password_is(user, DEFAULT_PASSWORD)
    assert db.session.scalar(sa.select(PasswordReset.used_at)) is None


def test_a_reset_works_only_once(client, smtp_server):
    user = UserFactory()
    request_reset(client, user.email)
    path, code = link_and_code(wait_for(smtp_server))
    assert submit(client, path, code).status_code == 302
    again = submit(client, path, code, password="Another-Brave-Otter-31")
    assert again.status_code == 400 and "already been used" in again.get_data(as_text=True)
    assert password_is(user, NEW_PASSWORD)


def test_a_new_request_voids_the_previous_link(client, outbox):
    user = UserFactory()
    request_reset(client, user.email)
    request_reset(client, user.email)
    first = urlsplit(re.search(r"https?://\S+/auth/reset/[\w\-]+", outbox[0].body).group(0)).path
    response = client.get(first)
    assert response.status_code == 400 and "A newer password reset was asked for" in response.get_data(as_text=True)
    second = urlsplit(re.search(r"https?://\S+/auth/reset/[\w\-]+", outbox[1].body).group(0)).path
    assert client.get(second).status_code == 200


def test_reset_logs_out_every_session(app, client, auth, smtp_server):
    user = UserFactory()
    laptop, phone = app.test_client(), app.test_client()
    auth.login(user, client=laptop)
    auth.login(user, client=phone)
    assert laptop.get("/account/").status_code == 200 and phone.get("/account/").status_code == 200
    request_reset(client, user.email)
    path, code = link_and_code(wait_for(smtp_server))
    submit(client, path, code)
    assert laptop.get("/account/").status_code == 302
    assert phone.get("/account/").status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(UserSession.id)).where(UserSession.revoked_at.is_(None))) == 0


def test_weak_new_password_keeps_the_reset_usable(client, outbox):
    user = UserFactory()
    request_reset(client, user.email)
    path = urlsplit(re.search(r"https?://\S+/auth/reset/[\w\-]+", outbox[0].body).group(0)).path
    code = re.search(r"Type this code: (\d{6})", outbox[0].body).group(1)
    response = submit(client, path, code, password="short")
    html = response.get_data(as_text=True)
    assert "Use at least 12 characters." in html and code not in html.split("<main", 1)[1]
    mismatch = client.post(path, data={"code": code, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"})
    assert "The two passwords do not match." in mismatch.get_data(as_text=True)
    assert password_is(user, DEFAULT_PASSWORD)
    assert db.session.scalar(sa.select(PasswordReset.failed_attempts)) == 0
    assert submit(client, path, code).status_code == 302


@pytest.mark.parametrize("token", ["nope", "x" * 43, "a" * 300])
def test_unknown_link_is_refused(client, token):
    response = client.get(f"/auth/reset/{token}")
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)


def test_reset_requests_are_limited_per_email(client, outbox):
    user = UserFactory()
    for n in range(3):
        assert request_reset(client, user.email, ip=f"192.0.2.{70 + n}").status_code == 200
    assert request_reset(client, user.email, ip="192.0.2.80").status_code == 429
    assert len(outbox) == 3


def test_reset_requests_are_limited_per_address(client):
    for n in range(10):
        assert request_reset(client, f"someone{n}@example.test", ip="192.0.2.90").status_code == 200
    assert request_reset(client, "someone-else@example.test", ip="192.0.2.90").status_code == 429


def test_code_entry_is_limited_to_five_a_minute(client, outbox):
    user = UserFactory()
    request_reset(client, user.email)
    path = urlsplit(re.search(r"https?://\S+/auth/reset/[\w\-]+", outbox[0].body).group(0)).path
    for _ in range(5):
        submit(client, path, "", ip="192.0.2.95")  # empty codes: refused by the form, no attempt used
    assert submit(client, path, "000000", ip="192.0.2.95").status_code == 429
    assert db.session.scalar(sa.select(PasswordReset.failed_attempts)) == 0


# ----------------------------------------------------------------- accounts with 2FA
def two_factor_user():
    secret = pyotp.random_base32()
    return UserFactory(totp_secret=secret, totp_enabled_at=datetime.now(UTC)), secret


def test_reset_with_2fa_asks_for_the_authentication_code(client, smtp_server):
    pytest.importorskip("app.services.two_factor")
    user, secret = two_factor_user()
    request_reset(client, user.email)
    path, code = link_and_code(wait_for(smtp_server))
    assert "Authentication code or recovery code" in client.get(path).get_data(as_text=True)

    missing = submit(client, path, code)
    assert "Enter the code from your authenticator app" in missing.get_data(as_text=True)
    wrong = submit(client, path, code, second_factor="000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    assert "authentication code or recovery code is wrong" in wrong.get_data(as_text=True)
    assert password_is(user, DEFAULT_PASSWORD)
    assert db.session.scalar(sa.select(PasswordReset.failed_attempts)) == 1

    ok = submit(client, path, code, second_factor=pyotp.TOTP(secret).now(), ip="192.0.2.61")
    assert ok.status_code == 302
    assert password_is(user, NEW_PASSWORD)


def test_user_table_is_untouched_by_a_request_for_an_unknown_email(client):
    UserFactory()
    before = db.session.execute(sa.select(User.id, User.password_hash, User.email)).all()
    request_reset(client, "ghost@example.test")
    assert db.session.execute(sa.select(User.id, User.password_hash, User.email)).all() == before
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == 0
