"""E2E in Chromium: a visitor fills a cart, registers, verifies the email, finds the cart kept,
places the order and pays with the success test card."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.extensions import db
from app.models import Order, Ticket
from tests.checkers import wait_for_mail
from tests.shop import make_event, seats_taken

pytestmark = pytest.mark.e2e

PASSWORD = "Velvet-Harbor-Lantern-93"


def test_visitor_fills_a_cart_registers_verifies_and_pays(app, page, outbox, artifacts_dir):
    event = make_event(title="Artistic Gymnastics — All-around Final", venue="Bercy Arena", capacity=500)

    # an anonymous visitor picks a Duo and a Family
    page.goto("/")
    page.get_by_role("link", name="Events", exact=True).click()
    page.get_by_role("link", name=f"See offers for {event.title}").click()
    expect(page.get_by_role("heading", name=event.title)).to_be_visible()
    expect(page.get_by_text("500 seats left")).to_be_visible()
    page.get_by_role("button", name="Add Duo to cart").click()
    expect(page.get_by_text(f"Added 1 × Duo for {event.title} to your cart.")).to_be_visible()
    page.get_by_label("Tickets").nth(2).select_option("1")
    page.get_by_role("button", name="Add Family to cart").click()
    expect(page.get_by_role("link", name="Cart (2)")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "shop_event.png"), full_page=True)

    # registers, then confirms the address from the email
    page.get_by_role("link", name="Register").click()
    page.get_by_label("First name").fill("Inès")
    page.get_by_label("Last name").fill("Moreau")
    page.get_by_label("Username").fill("ines")
    page.get_by_label("Email").fill("ines@example.test")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm the password").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url("**/auth/login")
    message = wait_for_mail(outbox, 1)
    link = re.search(r"https?://\S+/auth/verify/[\w.\-]+", message.body).group(0)
    page.goto(urlsplit(link).path)
    expect(page.get_by_text("your email address is confirmed")).to_be_visible()

    # logs in: the cart is still there
    page.get_by_label("Email").fill("ines@example.test")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    page.get_by_role("link", name="Cart (2)").click()
    rows = page.locator("tr.cart-line")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Duo")
    expect(rows.nth(1)).to_contain_text("Family")
    expect(page.locator("#cart-total")).to_have_text("€265.00")

    # reviews, places the order, pays with the success test card
    page.get_by_role("link", name="Continue to checkout").click()
    expect(page.locator("#review-total")).to_have_text("€265.00")
    page.get_by_role("button", name="Place order, pay later · €265.00").click()
    expect(page.get_by_text("your seats are held for 15 minutes")).to_be_visible()
    code = page.locator("#order-code").inner_text()
    expect(page.get_by_label("Name on the card")).to_have_value("Inès Moreau")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Month (MM)").fill("12")
    page.get_by_label("Year (YYYY)").fill(str(datetime.now(UTC).year + 2))
    page.get_by_label("Security code (CVV)").fill("731")
    page.get_by_role("button", name="Pay €265.00").click()

    expect(page.get_by_text("Payment accepted: your order is paid")).to_be_visible()
    expect(page.locator(".order-status")).to_have_text("Paid")
    expect(page.get_by_text("2 tickets issued for 6 people")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "shop_paid_order.png"), full_page=True)
    page.get_by_label("Main navigation").get_by_role("link", name="My orders").click()
    expect(page.get_by_role("link", name=code)).to_be_visible()

    db.session.expire_all()
    order = db.session.scalar(sa.select(Order).where(Order.code == code))
    assert order.status == "paid" and order.user.email == "ines@example.test"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket).where(Ticket.order_id == order.id)) == 2
    assert seats_taken(event.id) == 6
    assert any(code in m.subject for m in outbox)
    assert page.console_errors == [] and page.foreign_requests == []
