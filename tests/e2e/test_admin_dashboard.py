"""E2E in Chromium: an admin with 2FA logs in and the dashboard's four charts are really drawn."""
from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import pytest
from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.sales_data import load_sales_data

pytestmark = [pytest.mark.e2e, pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=True)]

CHARTS = ("chart-offers", "chart-days", "chart-fill", "chart-checkins")

# Share of the canvas's pixels that are not transparent (bars, lines, axes, labels).
PAINTED_SHARE = """(id) => {
  const canvas = document.getElementById(id);
  const { width, height } = canvas;
  const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) painted += 1; }
  return { width, height, share: painted / (width * height) };
}"""

# Pixels of the chart's first bar colour (Guichet blue #0b3d91, or the teal of the fill-rate bars).
COLOURED = """([id, r, g, b]) => {
  const canvas = document.getElementById(id);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i] === r && pixels[i + 1] === g && pixels[i + 2] === b && pixels[i + 3] === 255) count += 1;
  }
  return count;
}"""


def test_admin_with_2fa_logs_in_and_the_charts_render(app, page, artifacts_dir):
    load_sales_data()
    secret = pyotp.random_base32()
    admin = UserFactory(role="admin", email="ada.admin@example.test", totp_secret=secret,
                        totp_enabled_at=datetime.now(UTC))
    page.emulate_media(reduced_motion="reduce")  # the charts draw at once, without animation

    page.goto("/auth/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
    page.locator("#login-form").get_by_role("button").click()
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    page.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("link", name="Admin")).to_be_visible()

    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Sales dashboard")).to_be_visible()
    for chart in CHARTS:
        expect(page.locator(f"#{chart}")).to_have_attribute("data-rendered", "true")
    page.wait_for_function("() => window.Chart && Object.keys(Chart.instances).length === 4")

    for chart in CHARTS:
        drawn = page.evaluate(PAINTED_SHARE, chart)
        assert drawn["width"] > 100 and drawn["height"] > 100, (chart, drawn)
        assert drawn["share"] > 0.01, (chart, drawn)  # not blank
    assert page.evaluate(COLOURED, ["chart-offers", 0x0B, 0x3D, 0x91]) > 200  # the blue ticket bars
    assert page.evaluate(COLOURED, ["chart-fill", 0x00, 0x83, 0x8F]) > 200  # the teal fill-rate bars

    # the chart reads the same numbers as the table beside it
    labels = page.evaluate("() => Chart.getChart('chart-offers').data.labels")
    tickets = page.evaluate("() => Chart.getChart('chart-offers').data.datasets[0].data")
    assert labels == ["Athletics Final — Solo", "Athletics Final — Duo", "Swimming Heats — Solo",
                      "Swimming Heats — Family"]
    assert tickets == [3, 2, 3, 1]
    expect(page.locator("#table-offers tbody tr").first).to_contain_text("3")

    page.screenshot(path=str(artifacts_dir / "admin-dashboard.png"), full_page=True)
    assert page.console_errors == []
    assert page.foreign_requests == []
