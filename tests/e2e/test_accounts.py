"""E2E in Chromium: register → verify from the email → log in → edit profile → log out; and a reset."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.extensions import db
from app.models import User
from tests.checkers import wait_for_mail
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e

PASSWORD = "Velvet-Harbor-Lantern-93"
NEW_PASSWORD = "Quartz-Meadow-Falcon-77"


def path_of(pattern: str, body: str) -> str:
    return urlsplit(re.search(pattern, body).group(0)).path


def log_in(page, email: str, password: str) -> None:
    page.goto("/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def test_register_verify_login_edit_profile_logout(app, page, outbox, artifacts_dir):
    page.goto("/")
    page.get_by_role("link", name="Register").click()
    page.get_by_label("First name").fill("Lucie")
    page.get_by_label("Last name").fill("Martin")
    page.get_by_label("Username").fill("luciem")
    page.get_by_label("Email").fill("lucie@example.test")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm the password").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url("**/auth/login")
    expect(page.get_by_text("Welcome, Lucie!")).to_be_visible()

    message = wait_for_mail(outbox, 1)
    assert message.recipients == ["lucie@example.test"] and message.html
    page.goto(path_of(r"https?://\S+/auth/verify/[\w.\-]+", message.body))
    expect(page.get_by_text("your email address is confirmed")).to_be_visible()
    user = db.session.scalar(sa.select(User).where(User.email == "lucie@example.test"))
    assert user.email_verified_at is not None

    log_in(page, "lucie@example.test", PASSWORD)
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.get_by_role("link", name="My account").click()
    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    expect(page.get_by_text("confirmed", exact=True)).to_be_visible()
    page.get_by_role("link", name="Edit my profile").click()
    page.get_by_label("First name").fill("Lucy")
    page.get_by_role("button", name="Save my profile").click()
    page.wait_for_url("**/account/")
    expect(page.get_by_text("Profile saved.")).to_be_visible()
    expect(page.get_by_text("Lucy Martin")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "account.png"), full_page=True)

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out")).to_be_visible()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    page.goto("/account/")
    page.wait_for_url("**/auth/login?next=**")
    db.session.expire_all()
    assert db.session.scalar(sa.select(User.first_name)) == "Lucy"
    assert page.console_errors == [] and page.foreign_requests == []


def test_password_reset_journey(app, page, outbox):
    user = UserFactory(email="reset.me@example.test")
    page.goto("/auth/login")
    page.get_by_role("link", name="Forgot password").click()
    page.get_by_label("Email").fill("reset.me@example.test")
    page.get_by_role("button", name="Send me a reset link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    message = wait_for_mail(outbox, 1)
    code = re.search(r"Type this code: (\d{6})", message.body).group(1)
    page.goto(path_of(r"https?://\S+/auth/reset/[\w\-]+", message.body))
    page.get_by_label("6-digit code from the email").fill(code)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_label("Confirm the password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set my new password").click()
    page.wait_for_url("**/auth/login")
    expect(page.get_by_text("Your password has been changed")).to_be_visible()
    assert "Your password was changed" in wait_for_mail(outbox, 2).subject

    log_in(page, user.email, NEW_PASSWORD)
    page.wait_for_url(lambda url: "/auth/login" not in url)
    expect(page.get_by_role("link", name="My account")).to_be_visible()
    assert page.console_errors == [] and page.foreign_requests == []
