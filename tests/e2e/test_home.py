"""E2E: the home page in a real headless Chromium, with no request leaving 127.0.0.1."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.services.demo import load_demo_events

pytestmark = pytest.mark.e2e


def test_home_page_renders_without_console_errors_or_foreign_requests(app, page, artifacts_dir):
    load_demo_events(db.session, now=datetime.now(UTC))
    db.session.commit()

    page.goto("/")
    assert page.title().startswith("Tickets for the Games")
    expect(page.get_by_role("heading", name="Your seat at the Games")).to_be_visible()
    assert page.locator("article.card").count() == 6
    # Bootstrap's stylesheet and bundle were served and applied (navbar is dark blue, JS loaded).
    assert page.evaluate("() => typeof window.bootstrap") == "object"
    page.screenshot(path=str(artifacts_dir / "home.png"), full_page=True)

    assert page.console_errors == []
    assert page.foreign_requests == []
