import base64
import io
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest
import qrcode
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from qrcode import util as qr_util
from qrcode.constants import ERROR_CORRECT_H

from app.services import rendering
from app.services.rendering import (
    TicketView,
    paris_datetime_lines,
    pdf_text,
    qr_matrix,
    qr_png_data_uri,
    qr_svg,
    qr_version,
    render_ticket_pdf,
    render_tickets_pdf,
)
from app.services.signing import (
    double_key_digest,
    generate_private_key_pem,
    load_private_key,
    make_purchase_key,
    make_user_key,
    sign_payload,
)

SVG_NS = "{http://www.w3.org/2000/svg}"
OTPAUTH = "otpauth://totp/Guichet:zoe%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Guichet"


def make_payload(ticket_id=1):
    key = load_private_key(generate_private_key_pem())
    return sign_payload(key, ticket_id, double_key_digest(make_user_key(), make_purchase_key()))


def make_ticket(**overrides):
    fields = {
        "event_title": "Athletics - Men's 100m Final", "sport": "Athletics",
        "venue": "Stade de France, Saint-Denis",
        "starts_at": datetime(2024, 8, 4, 18, 30, tzinfo=UTC),  # 20:30 in Paris (CEST)
        "offer_name": "Category A", "persons_admitted": 2, "holder_name": "Marie Curie",
        "order_code": "K7M2QX", "ticket_number": "K7M2QX-01", "payload": make_payload(),
    }
    return TicketView(**(fields | overrides))


def need(binary, package):
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} missing: apt-get install -y {package}")


def pdf_page_png(pdf, tmp_path, dpi=150):
    need("pdftoppm", "poppler-utils")
    (tmp_path / "ticket.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-singlefile", tmp_path / "ticket.pdf",
                    tmp_path / "page"], check=True, timeout=30)
    return tmp_path / "page.png"


def zbar(png_path):
    need("zbarimg", "zbar-tools")
    result = subprocess.run(["zbarimg", "-q", "--raw", "--nodbus", "-Sdisable", "-Sqrcode.enable", png_path],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def zxing(png_path):
    with Image.open(png_path) as image:
        return read_qr_codes(image)


def read_qr_codes(image):
    """zxing-cpp on QR codes only: asked for every format, it reads a spurious Codabar inside a
    QR's modules on about 1 random payload in 150 (tests/functional/test_tickets.py)."""
    return zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)


def pdf_text_of(pdf, tmp_path):
    need("pdftotext", "poppler-utils")
    (tmp_path / "text.pdf").write_bytes(pdf)
    result = subprocess.run(["pdftotext", "-layout", tmp_path / "text.pdf", "-"],
                            capture_output=True, check=True, timeout=30)
    return result.stdout.decode("utf-8")


# --- QR matrix ---------------------------------------------------------------

@pytest.mark.parametrize("text", [make_payload(7), make_payload(2**64 - 1), OTPAUTH, "A",
                                  "https://example.org/" + "x" * 300, "0123456789" * 4])
def test_matrix_is_exactly_what_qrcode_makes(text):
    """Our faster mask choice must give the library's symbol, module for module."""
    reference = qrcode.QRCode(error_correction=ERROR_CORRECT_H, border=4)
    reference.add_data(text, optimize=0)
    reference.make(fit=True)
    matrix = qr_matrix(text)
    assert matrix == reference.get_matrix()
    assert len(matrix) == 17 + 4 * reference.version + 8
    assert qr_version(text) == reference.version


def test_matrix_matches_qrcode_across_versions():
    """Random texts from version 1 to 20: the packed penalty and the mask applied by its deltas
    must still give qrcode's own symbol, whichever mask wins."""
    import random

    rng = random.Random(20261124)
    versions = set()
    for _ in range(40):
        text = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(rng.randint(1, 700)))
        reference = qrcode.QRCode(error_correction=ERROR_CORRECT_H, border=4)
        reference.add_data(text, optimize=0)
        reference.make(fit=True)
        assert qr_matrix(text) == reference.get_matrix(), text
        versions.add(reference.version)
    assert min(versions) <= 3 and max(versions) >= 15


@pytest.mark.parametrize("text", [make_payload(3), OTPAUTH])
def test_mask_penalty_matches_qrcode(text):
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_H, border=0)
    qr.add_data(text, optimize=0)
    qr.best_fit()
    for mask in range(8):
        qr.makeImpl(True, mask)
        rows = [rendering._bits(row) for row in qr.modules]
        cols = [rendering._bits(col) for col in zip(*qr.modules, strict=True)]
        assert rendering._penalty(rows, cols, len(rows)) == qr_util.lost_point(qr.modules)


def test_matrix_quiet_zone_and_copies():
    matrix = qr_matrix("HELLO")
    assert not any(matrix[0] + matrix[3] + matrix[-1] + matrix[-4])
    assert not any(row[0] or row[3] or row[-1] or row[-4] for row in matrix)
    assert matrix[4][4] and matrix[4][10]  # finder pattern corners
    matrix[4][4] = False
    assert qr_matrix("HELLO")[4][4]  # callers get a fresh copy, not the cache
    assert len(qr_matrix("HELLO", border=0)) == 21


# --- SVG and PNG ---------------------------------------------------------------

def svg_to_matrix(svg):
    root = ET.fromstring(svg)
    width = int(root.get("viewBox").split()[2])
    cells = [[False] * width for _ in range(width)]
    (path,) = root.iter(f"{SVG_NS}path")
    d = path.get("d")
    runs = re.findall(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z", d)
    assert "".join(f"M{x} {y}h{n}v1h-{m}z" for x, y, n, m in runs) == d
    for x, y, n, _ in runs:
        for i in range(int(n)):
            cells[int(y)][int(x) + i] = True
    return cells


def test_svg_is_well_formed_accessible_and_inert():
    payload = make_payload()
    svg = qr_svg(payload, label='Ticket "K7M2QX-01" <for> Zoë & co', css_class="qr-code")
    assert not svg.startswith("<?xml")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == 'Ticket "K7M2QX-01" <for> Zoë & co'
    assert root.get("class") == "qr-code"
    assert root.get("viewBox") == "0 0 61 61"
    elements = list(root.iter())
    assert "script" not in svg.lower()
    assert all("style" not in element.attrib for element in elements)
    assert all(not name.lower().startswith("on") for e in elements for name in e.attrib)
    assert len(list(root.iter(f"{SVG_NS}path"))) == 1
    assert svg_to_matrix(svg) == qr_matrix(payload)


def test_svg_content_decodes_with_an_independent_decoder():
    payload = make_payload()
    matrix = svg_to_matrix(qr_svg(payload))
    image = Image.new("L", (len(matrix), len(matrix)), 255)
    image.putdata([0 if dark else 255 for row in matrix for dark in row])
    image = image.resize((len(matrix) * 6,) * 2, Image.Resampling.NEAREST)
    assert [r.text for r in read_qr_codes(image)] == [payload]


def test_png_data_uri_decodes(tmp_path):
    uri = qr_png_data_uri(OTPAUTH, box_size=5)
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    png = base64.b64decode(uri[len(prefix):], validate=True)
    (tmp_path / "otp.png").write_bytes(png)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == (len(qr_matrix(OTPAUTH)) * 5,) * 2
    assert [r.text for r in zxing(tmp_path / "otp.png")] == [OTPAUTH]
    assert zbar(tmp_path / "otp.png") == [OTPAUTH]


# --- PDF -----------------------------------------------------------------------

def test_pdf_qr_decodes_to_exactly_the_payload(tmp_path):
    ticket = make_ticket()
    png = pdf_page_png(render_ticket_pdf(ticket), tmp_path)
    assert zbar(png) == [ticket.payload]
    results = zxing(png)
    assert [r.text for r in results] == [ticket.payload]
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    corners = results[0].position
    side_px = max(abs(corners.top_right.x - corners.top_left.x),
                  abs(corners.bottom_left.y - corners.top_left.y))
    assert side_px / 150 * 25.4 >= 35  # printed symbol at least 35 mm wide


def test_pdf_qr_still_decodes_at_low_resolution(tmp_path):
    ticket = make_ticket()
    png = pdf_page_png(render_ticket_pdf(ticket), tmp_path, dpi=60)
    assert [r.text for r in zxing(png)] == [ticket.payload]


def test_pdf_shows_the_ticket_details_in_paris_time(tmp_path):
    ticket = make_ticket()
    text = pdf_text_of(render_ticket_pdf(ticket), tmp_path)
    for expected in ("Athletics - Men's 100m Final", "Stade de France, Saint-Denis",
                     "Sunday 4 August 2024", "20:30 Europe/Paris (CEST, UTC+02:00)",
                     "Category A", "2 persons", "Marie Curie", "K7M2QX", "K7M2QX-01",
                     "Show this QR code at the gate. One scan admits 2 persons."):
        assert expected in text, expected
    assert "18:30" not in text


def test_winter_event_uses_cet_and_other_zones_are_converted():
    aware = datetime(2025, 1, 15, 12, 0, tzinfo=timezone(timedelta(hours=-5)))  # 17:00 UTC
    assert paris_datetime_lines(aware) == ("Wednesday 15 January 2025",
                                           "18:00 Europe/Paris (CET, UTC+01:00)")
    late = datetime(2024, 7, 26, 23, 30, tzinfo=UTC)  # already the next day in Paris
    assert paris_datetime_lines(late)[0] == "Saturday 27 July 2024"


def test_naive_start_time_is_refused():
    with pytest.raises(ValueError):
        make_ticket(starts_at=datetime(2024, 8, 4, 20, 30))


def test_pdf_metadata_title():
    reader = PdfReader(io.BytesIO(render_ticket_pdf(make_ticket())))
    assert reader.metadata.title == "Ticket K7M2QX-01 - Athletics - Men's 100m Final"
    assert len(reader.pages) == 1
    assert reader.pages[0].mediabox.width == pytest.approx(595.2756, abs=0.01)  # A4


def test_one_admission_is_singular(tmp_path):
    text = pdf_text_of(render_ticket_pdf(make_ticket(persons_admitted=1)), tmp_path)
    assert "One scan admits 1 person." in text


@pytest.mark.parametrize("raw, printed", [
    ("Zoë Łukasz 王", "Zoë Lukasz ?"), ("Antonín Dvořák", "Antonín Dvorák"),
    ("Œdipe Müller-Straße €", "Œdipe Müller-Straße €"), ("Ayşe Yılmaz", "Ayse Yilmaz"),
    ("Иван", "????"), ("ｆｕｌｌ", "full"), ("tab\there\x00", "tab?here?"),
])
def test_pdf_text_folds_to_winansi(raw, printed):
    assert pdf_text(raw) == printed
    pdf_text(raw).encode("cp1252")


def test_non_latin_holder_name_renders(tmp_path):
    ticket = make_ticket(holder_name="Zoë Łukasz 王", venue="Paris La Défense Arena — 東京",
                         event_title="Natation — 決勝 " * 6)
    pdf = render_ticket_pdf(ticket)
    text = pdf_text_of(pdf, tmp_path)
    assert "Zoë Lukasz ?" in text
    assert "Natation" in text and "…" in text  # long title shrunk, then truncated
    assert zbar(pdf_page_png(pdf, tmp_path)) == [ticket.payload]


def test_all_tickets_of_an_order_one_page_each(tmp_path):
    tickets = [make_ticket(ticket_number=f"K7M2QX-0{i}", payload=make_payload(i)) for i in (1, 2, 3)]
    pdf = render_tickets_pdf(tickets)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 3
    assert reader.metadata.title == "Tickets - order K7M2QX"
    for page, ticket in zip(reader.pages, tickets, strict=True):
        assert ticket.ticket_number in page.extract_text()
    with pytest.raises(ValueError):
        render_tickets_pdf([])
