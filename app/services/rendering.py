"""QR codes (matrix, inline SVG, PNG data URI) and the PDF ticket.

The PDF draws the QR code as vector rectangles: sharper when printed and much
faster than embedding a raster image. Text uses ReportLab's built-in Helvetica,
which only covers WinAnsi (cp1252); see `pdf_text` for what happens to other
characters.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import qrcode
from PIL import Image
from qrcode import util as qr_util
from qrcode.constants import ERROR_CORRECT_H
from reportlab import rl_config
from reportlab.lib.colors import HexColor, black, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

QUIET_ZONE = 4  # modules of light margin the QR standard asks for
PARIS = ZoneInfo("Europe/Paris")
# Guichet is ReportLab's only user in the process. Plain Flate streams instead of
# ASCII85-over-Flate: 15 % smaller and ~1 ms faster per ticket; 7-bit-safe PDF
# streams have been unnecessary for decades (email attachments are base64 anyway).
rl_config.useA85 = 0
QR_SYMBOL_MM = 45  # symbol without quiet zone; ~0.85 mm modules at version 9

_INK = HexColor("#14213d")
_MUTED = HexColor("#5c6370")
_RULE = HexColor("#c8ccd4")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December")
_BINARY_DIGITS = bytes.maketrans(b"\x00\x01", b"01")
# Letters NFKD does not decompose into a Latin base letter.
_FOLD = str.maketrans({"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h",
                       "ı": "i", "Ŀ": "L", "ŀ": "l", "Ŧ": "T", "ŧ": "t", "ſ": "s",
                       "Ŋ": "N", "ŋ": "n", "ĸ": "k", "Ɖ": "D", "ɖ": "d"})


@dataclass(frozen=True)
class TicketView:
    """Everything printed on a ticket, as plain values (no model objects)."""

    event_title: str
    sport: str
    venue: str
    starts_at: datetime
    offer_name: str
    persons_admitted: int
    holder_name: str
    order_code: str
    ticket_number: str
    payload: str

    def __post_init__(self):
        if self.starts_at.tzinfo is None or self.starts_at.utcoffset() is None:
            raise ValueError("starts_at must be timezone-aware")


# --- QR matrix ---------------------------------------------------------------

def qr_matrix(text: str, border: int = QUIET_ZONE) -> list[list[bool]]:
    """Dark (True) / light modules at error correction H, quiet zone included."""
    symbol = _symbol(text)
    width = len(symbol) + 2 * border
    blank = [False] * width
    pad = [False] * border
    return ([blank[:] for _ in range(border)]
            + [pad + list(row) + pad for row in symbol]
            + [blank[:] for _ in range(border)])


def qr_version(text: str) -> int:
    return (len(_symbol(text)) - 17) // 4


@functools.lru_cache(maxsize=128)  # ~25 kB per version-9 symbol
def _symbol(text: str) -> tuple[tuple[bool, ...], ...]:
    """The same symbol as qrcode's make(fit=True), about 4x faster.

    qrcode scores its 8 masks by rebuilding the matrix and walking it in pure
    Python for each (~13 ms at version 9); we build once and score the masks
    with integer bit operations. Cached: Ed25519 signatures are deterministic,
    so a ticket's payload, and its QR code, never change.
    """
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_H, border=0)
    qr.add_data(text, optimize=0)  # one segment: alphanumeric mode for base32 text
    qr.best_fit()
    qr.makeImpl(True, 0)  # qrcode scores masks on this "test" layout
    n = len(qr.modules)
    width = n + _PAD
    rows = _pack([_bits(row) for row in qr.modules], width)
    cols = _pack([_bits(col) for col in zip(*qr.modules)], width)
    row_deltas, col_deltas = _mask_deltas(qr.version)
    scores = [_packed_penalty(rows ^ row_deltas[k], cols ^ col_deltas[k], n) for k in range(8)]
    mask = scores.index(min(scores))
    # The final symbol is the test layout with mask `mask` instead of 0 on the data modules (the
    # deltas), then the format and version bits written for real: the same modules as a second
    # makeImpl(False, mask), without placing the data again.
    masked = rows ^ row_deltas[mask]
    line, order = (1 << n) - 1, f"0{n}b"
    qr.modules = [[bit == "1" for bit in reversed(format(masked >> (r * width) & line, order))] for r in range(n)]
    qr.setup_type_info(False, mask)
    if qr.version >= 7:
        qr.setup_type_number(False)
    return tuple(tuple(row) for row in qr.modules)


def _bits(line) -> int:
    """A row or column as an int whose bit i is module i."""
    return int(bytes(reversed(line)).translate(_BINARY_DIGITS), 2)


# Every row (or column) of a symbol packed in one integer, line i at bit i * (n + _PAD): the
# penalty's bit operations then run once per mask on the whole symbol instead of once per line.
# The masks below keep each line's bits to its own n positions (no run crosses into the next).
_PAD = 16


def _pack(lines: list[int], width: int) -> int:
    packed = 0
    for line in reversed(lines):
        packed = packed << width | line
    return packed


@functools.lru_cache(maxsize=8)
def _line_masks(n: int) -> tuple[int, int, int]:
    """Positions 0..n-2 of every line (a module and its right neighbour), 0..n-11 of every line
    (room for a finder-like run), and 0..n-2 of every line but the last (a 2x2 block with the
    line below)."""
    width = n + _PAD
    return (_pack([(1 << (n - 1)) - 1] * n, width), _pack([(1 << (n - 10)) - 1] * n, width),
            _pack([(1 << (n - 1)) - 1] * (n - 1), width))


@functools.lru_cache(maxsize=8)
def _mask_deltas(version: int):
    """Per mask k, the data modules that differ from mask 0 (rows and columns, packed)."""
    qr = qrcode.QRCode(version=version, error_correction=ERROR_CORRECT_H, border=0)
    n = qr.modules_count = version * 4 + 17
    qr.modules = [[None] * n for _ in range(n)]
    for row, col in ((0, 0), (n - 7, 0), (0, n - 7)):
        qr.setup_position_probe_pattern(row, col)
    qr.setup_position_adjust_pattern()
    qr.setup_timing_pattern()
    qr.setup_type_info(True, 0)
    if version >= 7:
        qr.setup_type_number(True)
    is_data = [[m is None for m in row] for row in qr.modules]
    masks = [qr_util.mask_func(k) for k in range(8)]
    deltas = [[[is_data[r][c] and masks[k](r, c) != masks[0](r, c) for c in range(n)]
               for r in range(n)] for k in range(8)]
    width = n + _PAD
    return ([_pack([_bits(row) for row in d], width) for d in deltas],
            [_pack([_bits(col) for col in zip(*d)], width) for d in deltas])


def _penalty(rows: list[int], cols: list[int], n: int) -> int:
    """ISO 18004 mask penalty of the symbol whose rows and columns are given as lists of bits."""
    return _packed_penalty(_pack(rows, n + _PAD), _pack(cols, n + _PAD), n)


def _packed_penalty(rows: int, cols: int, n: int) -> int:
    """ISO 18004 mask penalty, computed exactly like qrcode.util.lost_point, on packed lines."""
    span, finder_span, block_span = _line_masks(n)
    points = 0
    for lines in (rows, cols):
        same = ~(lines ^ (lines >> 1)) & span  # bit i: module i == module i+1
        five = same & (same >> 1) & (same >> 2) & (same >> 3)
        if five:  # a run of L >= 5 scores L - 2
            points += five.bit_count() + 2 * (five & ~(five << 1)).bit_count()
        inverse = ~lines  # finder-like 1:1:3:1:1 runs next to 4 light modules
        core = inverse >> 1 & lines >> 4 & inverse >> 5 & lines >> 6 & inverse >> 9 & finder_span
        if core:
            before = core & lines & lines >> 2 & lines >> 3 & inverse >> 7 & inverse >> 8 & inverse >> 10
            after = core & inverse & inverse >> 2 & inverse >> 3 & lines >> 7 & lines >> 8 & lines >> 10
            points += 40 * (before.bit_count() + after.bit_count())
    vertical = ~(rows ^ (rows >> (n + _PAD)))  # each line against the one below it
    points += 3 * (vertical & (vertical >> 1) & ~(rows ^ (rows >> 1)) & block_span).bit_count()
    dark = rows.bit_count()
    return points + 10 * int(abs(dark / n**2 * 100 - 50) / 5)


# --- SVG and PNG -------------------------------------------------------------

def qr_svg(text: str, label: str = "QR code", css_class: str | None = None,
           size: int | None = None) -> str:
    """Inline SVG: one path of dark modules on a white square (no styles, no script).

    The white background keeps the quiet zone light on dark themes. Returned as
    plain text: the caller marks it safe for the template.
    """
    matrix = qr_matrix(text)
    width = len(matrix)
    parts = []
    for y, row in enumerate(matrix):
        x = 0
        while x < width:
            if row[x]:
                start = x
                while x < width and row[x]:
                    x += 1
                parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            x += 1
    attrs = [f'viewBox="0 0 {width} {width}"', 'role="img"',
             f'aria-label="{html.escape(label, quote=True)}"', 'shape-rendering="crispEdges"']
    if css_class:
        attrs.append(f'class="{html.escape(css_class, quote=True)}"')
    if size:
        attrs.append(f'width="{int(size)}" height="{int(size)}"')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" {" ".join(attrs)}>'
            f'<rect width="{width}" height="{width}" fill="#fff"/>'
            f'<path fill="#000" d="{"".join(parts)}"/></svg>')


def qr_png_data_uri(text: str, box_size: int = 6) -> str:
    """A PNG QR code as a data: URI (e.g. the otpauth:// link when enabling 2FA)."""
    matrix = qr_matrix(text)
    width = len(matrix)
    image = Image.new("1", (width, width), 1)
    image.putdata([0 if dark else 1 for row in matrix for dark in row])
    image = image.resize((width * box_size, width * box_size), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


# --- PDF ---------------------------------------------------------------------

def pdf_text(text: str) -> str:
    """Make text printable with Helvetica (WinAnsi) instead of drawing black boxes.

    Characters cp1252 has are kept (é, ë, ß, Œ, €); others lose their accents
    when Unicode can split them off (ą→a, Ł→L, ş→s); anything else (e.g. Chinese,
    Cyrillic, Arabic) becomes "?". The gate relies on the signed QR code and the
    server's record, not on this printed name.
    """
    out = []
    for char in text.translate(_FOLD):
        if _in_winansi(char):
            out.append(char)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", char)
                       if not unicodedata.combining(c) and _in_winansi(c))
        out.append(base or "?")
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _in_winansi(char: str) -> bool:
    if not char.isprintable():
        return False
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def paris_datetime_lines(starts_at: datetime) -> tuple[str, str]:
    """('Sunday 4 August 2024', '20:30 Europe/Paris (CEST, UTC+02:00)'), locale-free."""
    local = starts_at.astimezone(PARIS)
    offset = local.strftime("%z")
    date_line = f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}"
    time_line = f"{local:%H:%M} Europe/Paris ({local.tzname()}, UTC{offset[:3]}:{offset[3:]})"
    return date_line, time_line


def render_ticket_pdf(ticket: TicketView) -> bytes:
    return render_tickets_pdf([ticket])


def render_tickets_pdf(tickets: list[TicketView]) -> bytes:
    """One A4 page per ticket: A4 prints at 100 % at home, so the QR keeps its size."""
    if not tickets:
        raise ValueError("no tickets to render")
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, pageCompression=1)
    first = tickets[0]
    if len(tickets) == 1:
        canvas.setTitle(f"Ticket {first.ticket_number} - {first.event_title}")
    else:
        canvas.setTitle(f"Tickets - order {first.order_code}")
    canvas.setAuthor("Guichet")
    canvas.setCreator("Guichet")
    canvas.setSubject(f"E-ticket, order {first.order_code}")
    for ticket in tickets:
        _draw_ticket(canvas, ticket)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def _draw_ticket(canvas: Canvas, t: TicketView) -> None:
    """A 180 x 118 mm ticket at the top of the page: header, details, QR, footer."""
    page_w, page_h = A4
    left, right, top = 15 * mm, page_w - 15 * mm, page_h - 15 * mm
    bottom = top - 118 * mm
    canvas.setStrokeColor(_RULE)
    canvas.setLineWidth(0.8)
    canvas.roundRect(left, bottom, right - left, top - bottom, 3 * mm, stroke=1, fill=0)
    canvas.setFillColor(_INK)
    canvas.rect(left, top - 14 * mm, right - left, 14 * mm, stroke=0, fill=1)
    canvas.setFillColor(white)
    canvas.setFont("Helvetica-Bold", 13)
    canvas.drawString(left + 7 * mm, top - 9 * mm, "GUICHET  ·  E-TICKET")
    canvas.setFont("Helvetica", 11)
    canvas.drawRightString(right - 7 * mm, top - 9 * mm, pdf_text(f"Ticket {t.ticket_number}"))

    qr_side = QR_SYMBOL_MM * mm * len(qr_matrix(t.payload)) / len(_symbol(t.payload))
    qr_x, qr_y = right - 5 * mm - qr_side, top - 19 * mm - qr_side
    _draw_qr(canvas, t.payload, qr_x, qr_y, qr_side)
    canvas.setFillColor(_MUTED)
    canvas.setFont("Helvetica", 8)
    canvas.drawCentredString(qr_x + qr_side / 2, qr_y - 4 * mm, pdf_text(f"Ticket {t.ticket_number}"))

    persons = f"{t.persons_admitted} person" + ("s" if t.persons_admitted != 1 else "")
    _draw_details(canvas, t, persons, left + 7 * mm, top - 25 * mm, qr_x - left - 12 * mm)
    canvas.setStrokeColor(_RULE)
    canvas.line(left + 7 * mm, bottom + 14 * mm, right - 7 * mm, bottom + 14 * mm)
    one_scan = f"Show this QR code at the gate. One scan admits {persons}."
    _draw_fitted(canvas, one_scan, "Helvetica-Bold", 11, left + 7 * mm, bottom + 7 * mm,
                 right - left - 14 * mm, _INK)
    canvas.setFillColor(_MUTED)
    canvas.setFont("Helvetica", 8)
    canvas.drawString(left, bottom - 6 * mm, "This ticket is personal. The QR code is valid "
                      "for one entry: once scanned, copies are refused.")
    canvas.drawString(left, bottom - 10 * mm, "Have an identity document with you; staff may "
                      "check it against the holder name.")


def _draw_details(canvas: Canvas, t: TicketView, persons: str, x: float, y: float,
                  width: float) -> None:
    title, size = _fit(pdf_text(t.event_title), "Helvetica-Bold", 20, 11, width)
    canvas.setFillColor(_INK)
    canvas.setFont("Helvetica-Bold", size)
    canvas.drawString(x, y, title)
    _draw_fitted(canvas, t.sport, "Helvetica", 12, x, y - 7 * mm, width, _MUTED)
    date_line, time_line = paris_datetime_lines(t.starts_at)
    rows = (("Date", date_line), ("Time", time_line), ("Venue", t.venue),
            ("Offer", t.offer_name), ("Admits", persons), ("Holder", t.holder_name),
            ("Order", t.order_code), ("Ticket", t.ticket_number))
    y -= 11 * mm
    for label, value in rows:
        y -= 7.5 * mm
        canvas.setFillColor(_MUTED)
        canvas.setFont("Helvetica", 8)
        canvas.drawString(x, y, label.upper())
        font = "Helvetica-Bold" if label in ("Holder", "Time") else "Helvetica"
        _draw_fitted(canvas, value, font, 11, x + 20 * mm, y, width - 20 * mm, _INK)


def _draw_qr(canvas: Canvas, text: str, x: float, y: float, side: float) -> None:
    """Dark modules as one filled path of horizontal runs, on a white square.

    Written as raw PDF operators in module units: ReportLab's per-number
    formatting of ~600 rectangles would otherwise dominate the render time.
    """
    matrix = qr_matrix(text)
    width = len(matrix)
    ops = []
    for r, row in enumerate(matrix):
        c = 0
        while c < width:
            if row[c]:
                start = c
                while c < width and row[c]:
                    c += 1
                ops.append(f"{start} {width - 1 - r} {c - start} 1 re")
            c += 1
    canvas.saveState()
    canvas.translate(x, y)
    canvas.scale(side / width, side / width)
    canvas.setFillColor(white)
    canvas.rect(0, 0, width, width, stroke=0, fill=1)
    canvas.setFillColor(black)
    canvas.addLiteral("\n".join(ops) + "\nf")
    canvas.restoreState()


def _draw_fitted(canvas, text, font, size, x, y, width, color) -> None:
    fitted, fitted_size = _fit(pdf_text(text), font, size, 7, width)
    canvas.setFillColor(color)
    canvas.setFont(font, fitted_size)
    canvas.drawString(x, y, fitted)


def _fit(text: str, font: str, size: float, min_size: float, width: float):
    """Shrink to fit `width`, then truncate with an ellipsis as a last resort."""
    while size > min_size and stringWidth(text, font, size) > width:
        size -= 0.5
    if stringWidth(text, font, size) <= width:
        return text, size
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…", size
