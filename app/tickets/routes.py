"""HTTP views of the tickets blueprint: my tickets, PDF download, the gate's scan page and API."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import (
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup

from app.access import ADMIN, ANYONE, SIGNED_IN, STAFF, allow
from app.extensions import csrf, db
from app.flashes import flash
from app.messages import message_for
from app.models import Ticket
from app.services.checkin import check_in, check_in_by_token
from app.services.errors import DomainError, NotFound
from app.services.rendering import qr_svg
from app.services.scanner_tokens import (
    create_scanner_token,
    revoke_scanner_token,
    scanner_tokens_of,
)
from app.services.tickets import ticket_for_viewer, tickets_of_user
from app.tickets import bp
from app.tickets.documents import ticket_filename, ticket_payload, ticket_pdf
from app.tickets.forms import RevokeTokenForm, ScanForm, ScannerTokenForm
from app.tickets.keys import public_key, ticket_keys
from app.tickets.token_cache import staff_id_for_bearer


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TicketCard:
    ticket: Ticket
    qr: Markup | None  # only for a ticket that can still be used
    payload: str | None


@bp.get("/")
@allow(SIGNED_IN)
def my_tickets():
    now = utcnow()
    upcoming, past = [], []
    for ticket in tickets_of_user(db.session, current_user.id):
        usable = ticket.voided_at is None and ticket.checked_in_at is None
        payload = ticket_payload(ticket) if usable else None
        qr = Markup(qr_svg(payload, label=f"QR code of ticket {ticket.number}", css_class="ticket-qr")) \
            if payload else None
        (upcoming if ticket.event.starts_at > now else past).append(TicketCard(ticket, qr, payload))
    return render_template("tickets/my_tickets.html", upcoming=upcoming, past=past)


@bp.get("/<int:ticket_id>.pdf", endpoint="ticket_pdf")
@allow(SIGNED_IN)
def download_ticket_pdf(ticket_id: int):
    try:
        ticket = ticket_for_viewer(db.session, ticket_id, user_id=current_user.id,
                                   is_admin=current_user.is_admin)
    except NotFound:
        abort(404)
    response = Response(ticket_pdf(ticket), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{ticket_filename(ticket)}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/scan", methods=["GET", "POST"])
@allow(STAFF, ADMIN)
def scan():
    form = ScanForm()
    result = None
    if form.validate_on_submit():
        result = check_in(db.session, public_key(), form.payload.data, staff_id=current_user.id,
                          now=utcnow(), ip_address=request.remote_addr)
        form.payload.data = ""  # ready for the next ticket
    return render_template("tickets/scan.html", form=form, result=result,
                           api_url=url_for("tickets.api_check_in"))


@bp.post("/api/check-in")
@allow(ANYONE)  # authenticated below: a staff session (with CSRF) or a scanner token
@csrf.exempt
def api_check_in():
    data = request.get_json(silent=True)
    payload = data.get("payload") if isinstance(data, dict) else None
    token = _bearer_token()
    if token is not None and isinstance(payload, str):
        # A scanner app: on PostgreSQL the token is checked in the check-in's own statement.
        now = utcnow()
        result = check_in_by_token(db.session, public_key(), payload, token=token, now=now,
                                   ip_address=request.remote_addr,
                                   staff_id_for_token=lambda: staff_id_for_bearer(token, now=now))
        if result is None:
            return _invalid_token()
    else:
        staff_id, refusal = _api_caller()
        if refusal is not None:
            return refusal
        if not isinstance(payload, str):
            return jsonify(error="payload_required", message=message_for("api_payload_required")), 400
        result = check_in(db.session, public_key(), payload, staff_id=staff_id, now=utcnow(),
                          ip_address=request.remote_addr)
    body = result.as_json()
    body["message"] = message_for(f"scan_{result.verdict}")
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"  # a holder's name, never kept by a cache
    return response


def _bearer_token() -> str | None:
    """The token of an `Authorization: Bearer …` header ("" for another scheme), or None without
    the header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _invalid_token():
    response = jsonify(error="invalid_token", message=message_for("api_login_required"))
    response.headers["WWW-Authenticate"] = 'Bearer realm="guichet", error="invalid_token"'
    return response, 401


def _api_caller():
    """(staff user id, None) or (None, refusal response)."""
    token = _bearer_token()
    if token is not None:
        user_id = staff_id_for_bearer(token, now=utcnow())
        if user_id is None:
            return None, _invalid_token()
        return user_id, None
    if not current_user.is_authenticated:
        response = jsonify(error="login_required", message=message_for("api_login_required"))
        response.headers["WWW-Authenticate"] = 'Bearer realm="guichet"'
        return None, (response, 401)
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()  # cookies authenticate this request: it must carry X-CSRFToken
    if not current_user.is_staff:
        return None, (jsonify(error="forbidden", message=message_for("api_staff_only")), 403)
    if current_app.config.get("REQUIRE_2FA_FOR_STAFF") and not current_user.has_2fa:
        return None, (jsonify(error="2fa_required", message=message_for("2fa_required_for_staff")), 403)
    return current_user.id, None


@bp.get("/public-key.pem")
@allow(STAFF, ADMIN)
def public_key_pem():
    response = Response(ticket_keys().public_pem, mimetype="application/x-pem-file")
    response.headers["Content-Disposition"] = 'inline; filename="guichet-ticket-signing-key.pem"'
    return response


@bp.route("/scanner-tokens", methods=["GET", "POST"])
@allow(STAFF, ADMIN)
def scanner_tokens():
    form = ScannerTokenForm()
    new_token = None
    if form.validate_on_submit():
        try:
            _, new_token = create_scanner_token(
                db.session, current_user, name=form.name.data, now=utcnow(),
                valid_days=current_app.config["SCANNER_TOKEN_DAYS"],
                max_tokens=current_app.config["SCANNER_TOKENS_PER_USER"], ip_address=request.remote_addr)
        except DomainError as error:
            target = form.name.errors if error.field else form.form_errors
            target.append(message_for(error.code, **error.params))
        else:
            form.name.data = ""
    return render_template("tickets/scanner_tokens.html", form=form, new_token=new_token,
                           tokens=scanner_tokens_of(db.session, current_user.id), now=utcnow(),
                           revoke_form=RevokeTokenForm())


@bp.post("/scanner-tokens/<int:token_id>/revoke")
@allow(STAFF, ADMIN)
def revoke_token(token_id: int):
    if not RevokeTokenForm().validate_on_submit():
        abort(400)
    try:
        revoke_scanner_token(db.session, token_id, user_id=current_user.id, now=utcnow(),
                             ip_address=request.remote_addr)
    except NotFound:
        abort(404)
    flash(message_for("scanner_token_revoked"), "success")
    return redirect(url_for("tickets.scanner_tokens"))
