"""E2E in Chromium: turn on 2FA from "My account" (secret read off the page, code from oathtool),
log out, log in with a TOTP code, then with a recovery code."""
from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.services.totp import provisioning_uri
from tests.checkers import oathtool
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.e2e


def next_step_code(secret: str) -> str:
    """The code of the next 30 s step: inside the ±1 window, and never a step already used
    (enrolment just used the current one), whatever the clock does meanwhile."""
    return oathtool(secret, datetime.now(UTC) + timedelta(seconds=30))


def log_in(page, email: str) -> None:
    page.goto("/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
    page.locator("#login-form").get_by_role("button").click()


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def test_enable_2fa_then_log_in_with_totp_and_with_a_recovery_code(app, page, artifacts_dir, tmp_path):
    user = UserFactory(email="e2e.twofactor@example.test")
    log_in(page, user.email)
    expect(page.get_by_role("link", name="My account")).to_be_visible()

    # enrol from My account
    page.get_by_role("link", name="My account").click()
    page.get_by_role("link", name="manage").click()
    page.get_by_role("link", name="Set up two-factor authentication").click()
    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    # the QR code as Chromium drew it decodes (zbarimg) to the otpauth URI of that secret
    if shutil.which("zbarimg"):
        shot = tmp_path / "qr.png"
        page.locator("#totp-qr").screenshot(path=str(shot))
        decoded = subprocess.run(["zbarimg", "-q", "--raw", "--nodbus", "-Sdisable", "-Sqrcode.enable", str(shot)],
                                 capture_output=True, text=True, check=True).stdout.strip()
        assert decoded == provisioning_uri(secret, user.email)
    page.screenshot(path=str(artifacts_dir / "two_factor_setup.png"), full_page=True)

    page.get_by_label("Code from your app").fill(oathtool(secret, datetime.now(UTC)))
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download as a .txt file").click()
    downloaded = download_info.value
    assert downloaded.suggested_filename == "guichet-recovery-codes.txt"
    text = Path(downloaded.path()).read_text(encoding="utf-8")
    assert all(code in text for code in codes)
    page.get_by_role("button", name="I have saved my codes").click()
    expect(page.get_by_text("Two-factor authentication is on")).to_be_visible()
    log_out(page)

    # log in with a TOTP code
    log_in(page, user.email)
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    page.get_by_label("Authentication code").fill("000000")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That code is not valid")).to_be_visible()
    page.get_by_label("Authentication code").fill(next_step_code(secret))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("link", name="My account")).to_be_visible()
    log_out(page)

    # log in with a recovery code
    log_in(page, user.email)
    page.get_by_label("Authentication code").fill(codes[4])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("You used a recovery code; 9 left")).to_be_visible()
    expect(page.get_by_role("link", name="My account")).to_be_visible()
    page.goto("/account/2fa")
    expect(page.locator("#recovery-codes-left")).to_contain_text("9 unused recovery codes")

    assert page.console_errors == []
    assert page.foreign_requests == []
