"""E2E in Chromium: a customer buys, opens "My tickets" and downloads the PDF; a staff member types
the payload into the scan page (VALID, then ALREADY USED); the camera path reads a QR with jsQR."""
from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import expect

from app.extensions import db
from app.models import Order, Ticket
from app.services.rendering import qr_matrix
from app.tickets.documents import ticket_payload
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.factories import DEFAULT_PASSWORD, OfferFactory, UserFactory, make_paid_order

# CSRF on, as in production: the scan page's JavaScript must send the X-CSRFToken header.
pytestmark = [pytest.mark.e2e, pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False, WTF_CSRF_ENABLED=True)]


def log_in(page, email: str) -> None:
    page.goto("/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
    page.locator("#login-form").get_by_role("button").click()
    expect(page.get_by_role("link", name="My tickets", exact=True)).to_be_visible()


def decode_pdf_with_zbar(pdf_path, tmp_path) -> str:
    for binary in ("pdftoppm", "zbarimg"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} missing: apt-get install -y poppler-utils zbar-tools")
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-singlefile", str(pdf_path), str(tmp_path / "page")],
                   check=True, timeout=60)
    return subprocess.run(["zbarimg", "-q", "--raw", "--nodbus", "-Sdisable", "-Sqrcode.enable", str(tmp_path / "page.png")],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def scan_by_typing(page, payload: str) -> None:
    field = page.get_by_label("Ticket code")
    expect(field).to_be_focused()  # a keyboard-wedge scanner types straight into it
    field.fill(payload)
    field.press("Enter")


def test_buy_download_pdf_then_check_in_at_the_gate(app, page, browser, live_server, artifacts_dir, tmp_path):
    customer = UserFactory(email="e2e.buyer@example.test", first_name="Camille", last_name="Martin")
    staff = UserFactory(email="e2e.gate@example.test", role="staff", first_name="Sam", last_name="Steward")
    OfferFactory(name="Solo", persons=1, price_cents=8500, event__title="Athletics — Men's 100m Final",
                 event__slug="athletics-mens-100m-final")

    # --- the customer buys one Solo ticket
    log_in(page, customer.email)
    page.goto("/events/athletics-mens-100m-final")
    page.get_by_role("button", name="Buy Solo now").click()  # added, and straight to the review
    page.wait_for_url("**/cart/checkout")
    expect(page.locator("#review-total")).to_have_text("€85.00")
    # paid on the review: one typo first, shown next to the field, nothing placed
    expect(page.get_by_label("Name on the card")).to_have_value("Camille Martin")
    page.get_by_label("Card number").fill("4242 4242 4242 4241")
    page.get_by_label("Month (MM)").fill("12")
    page.get_by_label("Year (YYYY)").fill(str(datetime.now(UTC).year + 2))
    page.get_by_label("Security code (CVV)").fill("123")
    page.get_by_role("button", name="Pay €85.00").click()
    expect(page.get_by_text("This card number is not valid. Please check the digits.")).to_be_visible()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
    expect(page.get_by_label("Month (MM)")).to_have_value("12")  # kept; the number and CVV are not
    expect(page.get_by_label("Card number")).to_have_value("")
    assert len(page.console_errors) == 1 and "422" in page.console_errors[0]  # the page's status, said by Chromium
    page.console_errors.clear()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Security code (CVV)").fill("123")
    page.get_by_role("button", name="Pay €85.00").click()
    page.wait_for_url("**/orders/GCH-*")
    expect(page.get_by_text("Payment accepted")).to_be_visible()

    ticket = db.session.scalars(sa.select(Ticket).where(Ticket.user_id == customer.id)).one()
    issued = ticket_payload(ticket)

    # --- "My tickets": the QR is in the page, the PDF downloads and decodes to the issued payload
    page.get_by_role("link", name="My tickets", exact=True).click()
    expect(page.get_by_role("heading", name="My tickets")).to_be_visible()
    card = page.locator("article.card", has_text=ticket.number)
    expect(card.get_by_role("img", name=f"QR code of ticket {ticket.number}")).to_be_visible()
    assert card.locator(".ticket-payload").text_content() == issued
    page.screenshot(path=str(artifacts_dir / "my_tickets.png"), full_page=True)
    with page.expect_download() as download_info:
        card.get_by_role("link", name=f"Download ticket {ticket.number} as PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"guichet-ticket-{ticket.number}.pdf"
    pdf_path = tmp_path / download.suggested_filename
    download.save_as(pdf_path)
    assert decode_pdf_with_zbar(pdf_path, tmp_path) == issued

    # --- a staff member, on another device, types the payload into the scan page
    gate_context = browser.new_context(base_url=live_server.url)
    gate = gate_context.new_page()
    errors = []
    gate.on("pageerror", lambda exc: errors.append(str(exc)))
    gate.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    try:
        log_in(gate, staff.email)
        gate.get_by_role("link", name="Check-in").click()
        expect(gate.get_by_role("heading", name="Check-in")).to_be_visible()

        scan_by_typing(gate, issued)
        verdict = gate.locator("#verdict-area .verdict")
        expect(verdict).to_have_class("verdict verdict-valid")
        expect(verdict).to_contain_text("VALID")
        expect(verdict).to_contain_text("Camille Martin")
        expect(verdict).to_contain_text("1 person")
        gate.screenshot(path=str(artifacts_dir / "scan_valid.png"), full_page=True)

        scan_by_typing(gate, issued)
        expect(verdict).to_have_class("verdict verdict-used")
        expect(verdict).to_contain_text("ALREADY USED")
        expect(verdict).to_contain_text("by Sam Steward")
        gate.screenshot(path=str(artifacts_dir / "scan_already_used.png"), full_page=True)

        scan_by_typing(gate, issued[:-3] + "AAA")
        expect(verdict).to_have_class("verdict verdict-forged")
        expect(verdict).to_contain_text("FORGED / UNKNOWN")
    finally:
        gate_context.close()

    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).checked_in_by_id == staff.id
    assert errors == [] and page.console_errors == [] and page.foreign_requests == []


def test_the_scan_page_works_without_javascript(app, browser, live_server):
    staff = UserFactory(role="staff", email="e2e.nojs@example.test")
    ticket_order = make_paid_order(UserFactory(), (OfferFactory(), 1))
    payload = ticket_payload(db.session.scalars(sa.select(Ticket).where(Ticket.order_id == ticket_order.id)).one())
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, staff.email)
        page.goto("/tickets/scan")
        page.get_by_label("Ticket code").fill(payload)
        page.get_by_role("button", name="Check ticket").click()
        expect(page.locator(".verdict")).to_have_class("verdict verdict-valid")
        page.get_by_label("Ticket code").fill(payload)
        page.get_by_role("button", name="Check ticket").click()
        expect(page.locator(".verdict")).to_have_class("verdict verdict-used")
    finally:
        context.close()


def write_qr_video(payload: str, path) -> None:
    """A still Y4M video of the QR code, for Chromium's fake camera."""
    matrix = qr_matrix(payload)
    module = 7
    side = len(matrix) * module
    image = Image.new("L", (len(matrix), len(matrix)), 255)
    image.putdata([0 if dark else 255 for row in matrix for dark in row])
    image = image.resize((side, side), Image.Resampling.NEAREST)
    width, height = 640, 480
    frame = Image.new("L", (width, height), 255)
    frame.paste(image, ((width - side) // 2, (height - side) // 2))
    chroma = bytes([128]) * (width * height // 4)
    header = f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + (b"FRAME\n" + frame.tobytes() + chroma + chroma) * 10)


def test_camera_scanning_reads_the_qr_with_jsqr(app, browser, live_server, tmp_path):
    """Chromium's fake camera shows a QR code; scan.js decodes it with the vendored jsQR."""
    staff = UserFactory(role="staff", email="e2e.camera@example.test")
    order = make_paid_order(UserFactory(first_name="Lena", last_name="Camera"), (OfferFactory(), 1))
    payload = ticket_payload(db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id)).one())
    video = tmp_path / "qr.y4m"
    write_qr_video(payload, video)
    camera_browser = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"])
    try:
        context = camera_browser.new_context(base_url=live_server.url)
        context.grant_permissions(["camera"], origin=live_server.url)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        log_in(page, staff.email)
        page.goto("/tickets/scan")
        page.get_by_role("button", name="Scan with the camera").click()
        verdict = page.locator("#verdict-area .verdict")
        expect(verdict).to_have_class("verdict verdict-valid", timeout=20_000)
        expect(verdict).to_contain_text("Lena Camera")
        page.get_by_role("button", name="Stop the camera").click()
        assert errors == []
    finally:
        camera_browser.close()
    db.session.expire_all()
    assert db.session.scalar(sa.select(Ticket.checked_in_by_id).where(Ticket.order_id == order.id)) == staff.id
