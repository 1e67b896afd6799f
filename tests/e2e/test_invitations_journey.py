"""E2E in Chromium with two browser contexts: an admin records a person with "Generate an
invitation code" ticked, copies the code shown once; a second browser activates it and lands
on the staff area.

The first journey runs with REQUIRE_2FA_FOR_STAFF off and lands straight on the check-in page.
The second keeps the production setting on: the admin logs in with a TOTP code, and the new
staff member is sent to 2FA enrolment first, then reaches the check-in page.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pyotp
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.extensions import db
from app.models import Invitation, User
from app.services.codes import INVITATION_CODE_RE
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.e2e

STAFF_PASSWORD = "Lantern-Gate-Keeper-93"


def new_context_page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    return context, page


def log_in(page, email: str, totp_secret: str | None = None) -> None:
    page.goto("/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
    page.locator("#login-form").get_by_role("button").click()
    if totp_secret:
        expect(page).to_have_url(re.compile(r"/auth/2fa$"))
        page.get_by_label("Authentication code").fill(pyotp.TOTP(totp_secret).now())
        page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("link", name="Admin")).to_be_visible()


def create_person_with_code(page, artifacts_dir, shot: str) -> str:
    page.get_by_role("link", name="Admin").click()
    page.locator("main").get_by_role("link", name="People").first.click()
    page.get_by_role("link", name="Add a person").click()
    page.get_by_label("First name").fill("Yasmine")
    page.get_by_label("Last name").fill("Benali")
    page.get_by_label("Phone", exact=True).fill("06 11 22 33 44")
    page.get_by_label("Email (optional)").fill("yasmine@example.test")
    page.get_by_label("Role once activated").select_option("staff")
    page.get_by_label("Generate an invitation code").check()
    page.get_by_role("button", name="Add the person").click()

    expect(page.get_by_role("heading", name="Invitation code for Yasmine")).to_be_visible()
    code = page.locator("#invitation-code").inner_text().strip()
    assert INVITATION_CODE_RE.fullmatch(code)
    page.screenshot(path=str(artifacts_dir / shot), full_page=True)
    copy = page.locator('button[data-copy-target="invitation-code"]')
    expect(copy).to_have_text("Copy")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == code
    # shown once: after a reload the code is gone, the invitation is listed as pending
    page.reload()
    expect(page.locator("#invitation-code")).to_have_count(0)
    expect(page.get_by_text("Pending", exact=True)).to_be_visible()
    assert code not in page.content()
    return code


def activate(page, code: str) -> None:
    page.goto("/auth/login")
    page.get_by_role("link", name="Activate my access").click()
    expect(page.get_by_role("heading", name="Activate my access")).to_be_visible()
    page.get_by_label("Invitation code").fill(code.lower())  # case does not matter
    page.get_by_label("Email").fill("yasmine@example.test")
    page.get_by_label("Password", exact=True).fill(STAFF_PASSWORD)
    page.get_by_label("Confirm the password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Activate my access").click()


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)
def test_admin_invites_and_the_new_staff_member_lands_on_the_check_in_page(app, browser, live_server,
                                                                           artifacts_dir):
    admin = UserFactory(role="admin", email="admin.e2e@example.test")
    admin_context, admin_page = new_context_page(browser, live_server)
    staff_context, staff_page = new_context_page(browser, live_server)
    try:
        log_in(admin_page, admin.email)
        code = create_person_with_code(admin_page, artifacts_dir, "invitation_code_shown.png")

        activate(staff_page, code)
        expect(staff_page).to_have_url(re.compile(r"/tickets/scan$"))
        expect(staff_page.get_by_role("heading", name="Check-in")).to_be_visible()
        expect(staff_page.get_by_text("welcome to the Guichet team, Yasmine")).to_be_visible()
        expect(staff_page.get_by_role("link", name="Check-in")).to_be_visible()
        staff_page.screenshot(path=str(artifacts_dir / "invitation_activated.png"), full_page=True)

        # the admin sees the code as used and the person with an account
        admin_page.reload()
        expect(admin_page.get_by_text("Used", exact=True)).to_be_visible()
        db.session.expire_all()
        user = db.session.scalar(sa.select(User).where(User.email == "yasmine@example.test"))
        assert user.role == "staff" and user.is_verified
        assert db.session.scalar(sa.select(Invitation.used_by_id)) == user.id
        assert admin_page.console_errors == [] and staff_page.console_errors == []
    finally:
        admin_context.close()
        staff_context.close()


def test_with_2fa_required_the_new_staff_member_enrols_then_reaches_the_check_in_page(app, browser, live_server,
                                                                                   artifacts_dir):
    secret = pyotp.random_base32()
    admin = UserFactory(role="admin", email="admin2.e2e@example.test", totp_secret=secret,
                        totp_enabled_at=datetime.now(UTC))
    admin_context, admin_page = new_context_page(browser, live_server)
    staff_context, staff_page = new_context_page(browser, live_server)
    try:
        log_in(admin_page, admin.email, totp_secret=secret)
        code = create_person_with_code(admin_page, artifacts_dir, "invitation_code_shown_2fa.png")

        activate(staff_page, code)
        expect(staff_page).to_have_url(re.compile(r"/account/2fa"))  # the staff gate: enrol first
        staff_page.goto("/account/2fa/setup")
        staff_secret = staff_page.locator("#totp-secret").inner_text().replace(" ", "")
        staff_page.get_by_label("Code from your app").fill(pyotp.TOTP(staff_secret).now())
        staff_page.get_by_role("button", name="Turn on two-factor authentication").click()
        expect(staff_page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
        staff_page.get_by_role("button", name="I have saved my codes").click()

        staff_page.get_by_role("link", name="Check-in").click()
        expect(staff_page).to_have_url(re.compile(r"/tickets/scan$"))
        expect(staff_page.get_by_role("heading", name="Check-in")).to_be_visible()
        assert admin_page.console_errors == [] and staff_page.console_errors == []
    finally:
        admin_context.close()
        staff_context.close()
