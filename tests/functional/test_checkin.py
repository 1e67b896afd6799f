"""The gate: scan page, JSON API (staff session with CSRF, or scanner token), public key, tokens, CLI."""
from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from app.extensions import cache, db, login_manager
from app.models import AuditEvent, CheckIn, ScannerToken, Ticket, User
from app.services.scanner_tokens import hash_token, token_cache_key
from app.services.signing import (
    double_key_digest,
    generate_private_key_pem,
    load_private_key,
    make_purchase_key,
    make_user_key,
    parse_payload,
    public_key_pem,
    sign_payload,
)
from app.services.tickets import rotate_user_key
from app.tickets.documents import ticket_payload
from app.tickets.keys import signing_key, ticket_keys
from tests.factories import OfferFactory, UserFactory, make_paid_order

pytestmark = pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)
API = "/tickets/api/check-in"
OTHER_KEY = load_private_key(generate_private_key_pem())


def login(auth, user):
    response = auth.login(user)
    assert response.status_code == 302 and "/auth/" not in response.headers["Location"]


@pytest.fixture
def staff(app):
    return UserFactory(role="staff", first_name="Sam", last_name="Steward")


@pytest.fixture
def customer(app):
    return UserFactory(first_name="Marie", last_name="Curie")


@pytest.fixture
def ticket(customer):
    offer = OfferFactory(kind="duo", name="Duo", persons=2, event__title="Judo — Mixed Team Final")
    order = make_paid_order(customer, (offer, 1))
    return db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id)).one()


@pytest.fixture
def payloads(ticket, customer):
    """One payload per verdict, all made against this app's signing key."""
    valid = ticket_payload(ticket)
    other_offer = OfferFactory()
    void_ticket = db.session.scalars(sa.select(Ticket).where(
        Ticket.order_id == make_paid_order(customer, (other_offer, 1)).id)).one()
    void_payload = ticket_payload(void_ticket)
    void_ticket.voided_at = datetime.now(UTC)
    rotated_owner = UserFactory()
    rotated_ticket = db.session.scalars(sa.select(Ticket).where(
        Ticket.order_id == make_paid_order(rotated_owner, (other_offer, 1)).id)).one()
    rotated_payload = ticket_payload(rotated_ticket)
    db.session.commit()
    rotate_user_key(db.session, rotated_owner, actor_id=None, now=datetime.now(UTC))
    return {
        "VALID": valid,
        "MALFORMED": valid[:-1] + "1",
        "FORGED": valid[:50] + ("A" if valid[50] != "A" else "B") + valid[51:],
        "FORGED_OTHER_KEY": sign_payload(OTHER_KEY, ticket.id, ticket.key_digest),
        "UNKNOWN_TICKET": sign_payload(signing_key(), 999_999, double_key_digest(make_user_key(), make_purchase_key())),
        "VOID": void_payload,
        "KEY_MISMATCH": rotated_payload,
    }


# --------------------------------------------------------------------------- scan page
def test_scan_page_is_for_staff_only(client, auth, customer):
    anonymous = client.get("/tickets/scan")
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]
    login(auth, customer)
    assert client.get("/tickets/scan").status_code == 403
    assert client.post("/tickets/scan", data={"payload": "x"}).status_code == 403


def test_scan_page_valid_then_already_used(client, auth, staff, ticket):
    login(auth, staff)
    page = client.get("/tickets/scan").get_data(as_text=True)
    assert 'name="payload"' in page and "autofocus" in page
    assert "vendor/jsqr/jsQR.js" in page and "js/scan.js" in page and "<script>" not in page

    payload = ticket_payload(ticket)
    first = client.post("/tickets/scan", data={"payload": payload}).get_data(as_text=True)
    assert 'class="verdict verdict-valid"' in first and ">VALID<" in first
    assert "Marie Curie" in first and "Duo" in first and "2 persons" in first
    assert f'value="{payload}"' not in first  # the field is emptied for the next ticket

    second = client.post("/tickets/scan", data={"payload": payload.lower()}).get_data(as_text=True)
    assert 'class="verdict verdict-used"' in second and "ALREADY USED" in second
    assert "by Sam Steward" in second


@pytest.mark.parametrize("case, css, label", [
    ("MALFORMED", "verdict-forged", "FORGED / UNKNOWN"),
    ("FORGED", "verdict-forged", "FORGED / UNKNOWN"),
    ("FORGED_OTHER_KEY", "verdict-forged", "FORGED / UNKNOWN"),
    ("UNKNOWN_TICKET", "verdict-forged", "FORGED / UNKNOWN"),
    ("VOID", "verdict-void", "VOID"),
    ("KEY_MISMATCH", "verdict-void", "VOID"),
])
def test_scan_page_refusals(client, auth, staff, payloads, case, css, label):
    login(auth, staff)
    html = client.post("/tickets/scan", data={"payload": payloads[case]}).get_data(as_text=True)
    assert f'class="verdict {css}"' in html and f">{label}<" in html
    verdict = case.removesuffix("_OTHER_KEY")
    assert f'data-verdict="{verdict}"' in html


def test_scan_page_empty_input_shows_the_field_error(client, auth, staff):
    login(auth, staff)
    response = client.post("/tickets/scan", data={"payload": "   "})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Scan a ticket or type its code." in html and "is-invalid" in html
    assert 'class="verdict' not in html
    assert db.session.scalar(sa.select(sa.func.count(CheckIn.id))) == 0


def test_scan_page_too_long_input_keeps_the_text(client, auth, staff):
    login(auth, staff)
    html = client.post("/tickets/scan", data={"payload": "Z" * 600}).get_data(as_text=True)
    assert "far too long" in html and "Z" * 600 in html


# --------------------------------------------------------------------------- JSON API, staff session
def test_api_valid_then_already_used_for_a_staff_session(client, auth, staff, ticket):
    login(auth, staff)
    payload = ticket_payload(ticket)
    first = client.post(API, json={"payload": payload})
    assert first.status_code == 200
    body = first.json
    assert (body["verdict"], body["answer"], body["label"]) == ("VALID", "valid", "VALID")
    assert body["ticket"] == {
        "id": ticket.id, "number": ticket.number, "holder": "Marie Curie", "offer": "Duo", "persons": 2,
        "event": "Judo — Mixed Team Final", "starts_at": ticket.event.starts_at.isoformat()}
    assert body["message"] == "Let them in."

    second = client.post(API, json={"payload": payload}).json
    assert (second["verdict"], second["label"]) == ("ALREADY_USED", "ALREADY USED")
    assert second["checked_in_by"] == "Sam Steward" and second["checked_in_at"] == body["scanned_at"]


def test_api_gives_each_failure_its_own_verdict(client, auth, staff, payloads):
    login(auth, staff)
    for case, payload in payloads.items():
        if case == "VALID":
            continue
        body = client.post(API, json={"payload": payload}).json
        assert body["verdict"] == case.removesuffix("_OTHER_KEY"), case


def test_api_refuses_anonymous_and_customers(client, auth, customer, ticket):
    payload = ticket_payload(ticket)
    anonymous = client.post(API, json={"payload": payload})
    assert anonymous.status_code == 401 and anonymous.json["error"] == "login_required"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    login(auth, customer)
    refused = client.post(API, json={"payload": payload})
    assert refused.status_code == 403 and refused.json["error"] == "forbidden"
    assert db.session.get(Ticket, ticket.id).checked_in_at is None
    assert db.session.scalar(sa.select(sa.func.count(CheckIn.id))) == 0


@pytest.mark.parametrize("body", [None, {}, {"payload": 42}, ["AE"], {"code": "AE"}])
def test_api_bad_request_body(client, auth, staff, body):
    login(auth, staff)
    response = client.post(API, json=body) if body is not None else client.post(API, data="not json")
    assert response.status_code == 400 and response.json["error"] == "payload_required"


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=True)
def test_api_session_staff_without_2fa_is_refused_when_required(client, auth, staff, ticket):
    login(auth, staff)
    response = client.post(API, json={"payload": ticket_payload(ticket)})
    assert response.status_code == 403 and response.json["error"] == "2fa_required"


@pytest.mark.app_config(WTF_CSRF_ENABLED=True, REQUIRE_2FA_FOR_STAFF=False)
def test_api_session_needs_the_csrf_header(client, staff, ticket):
    login_page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    assert client.post("/auth/login", data={"email": staff.email, "password": "Correct-Horse-Battery-42",
                                            "csrf_token": token}).status_code == 302
    page = client.get("/tickets/scan").get_data(as_text=True)
    csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)
    payload = ticket_payload(ticket)

    missing = client.post(API, json={"payload": payload})
    assert missing.status_code == 400
    assert db.session.get(Ticket, ticket.id).checked_in_at is None
    wrong = client.post(API, json={"payload": payload}, headers={"X-CSRFToken": "nope"})
    assert wrong.status_code == 400

    ok = client.post(API, json={"payload": payload}, headers={"X-CSRFToken": csrf})
    assert ok.status_code == 200 and ok.json["verdict"] == "VALID"


# --------------------------------------------------------------------------- scanner tokens
def create_token(client, name="Gate 3 phone") -> str:
    html = client.post("/tickets/scanner-tokens", data={"name": name}).get_data(as_text=True)
    return re.search(r'<code id="new-token"[^>]*>(gchs_[A-Za-z0-9_-]+)</code>', html).group(1)


@pytest.mark.app_config(WTF_CSRF_ENABLED=True, REQUIRE_2FA_FOR_STAFF=False)
def test_scanner_token_works_without_session_or_csrf(app, staff, ticket):
    from app.services.scanner_tokens import create_scanner_token

    _, token = create_scanner_token(db.session, staff, name="Gate 1", now=datetime.now(UTC), valid_days=30,
                                    max_tokens=5)
    device = app.test_client()  # no cookies at all
    headers = {"Authorization": f"Bearer {token}"}
    first = device.post(API, json={"payload": ticket_payload(ticket)}, headers=headers)
    assert first.status_code == 200 and first.json["verdict"] == "VALID"
    assert device.post(API, json={"payload": ticket_payload(ticket)}, headers=headers).json["verdict"] == "ALREADY_USED"
    assert "Set-Cookie" not in first.headers
    assert db.session.get(Ticket, ticket.id).checked_in_by_id == staff.id
    assert db.session.scalars(sa.select(ScannerToken)).one().last_used_at is not None


def test_scanner_token_page_creates_shows_once_and_stores_only_a_hash(client, auth, staff, ticket):
    login(auth, staff)
    token = create_token(client)
    row = db.session.scalars(sa.select(ScannerToken)).one()
    assert row.token_hash == hash_token(token) and token not in (row.token_hash, row.hint)
    assert row.user_id == staff.id and row.name == "Gate 3 phone"
    listing = client.get("/tickets/scanner-tokens").get_data(as_text=True)
    assert token not in listing and row.hint in listing and "Gate 3 phone" in listing
    audit = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == "scanner_token_created")).one()
    assert token not in str(audit.details)

    device = client.application.test_client()
    response = device.post(API, json={"payload": ticket_payload(ticket)}, headers={"Authorization": f"Bearer {token}"})
    assert response.json["verdict"] == "VALID"


def test_scanner_token_needs_a_name(client, auth, staff):
    login(auth, staff)
    html = client.post("/tickets/scanner-tokens", data={"name": "  "}).get_data(as_text=True)
    assert "Give the device a name" in html
    assert db.session.scalar(sa.select(sa.func.count(ScannerToken.id))) == 0


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False, SCANNER_TOKENS_PER_USER=1)
def test_scanner_token_limit(client, auth, staff):
    login(auth, staff)
    create_token(client)
    html = client.post("/tickets/scanner-tokens", data={"name": "Second"}).get_data(as_text=True)
    assert "You already have 1 active scanner tokens" in html
    assert 'value="Second"' in html  # what was typed is kept


def test_revoked_expired_and_bogus_tokens_are_refused(app, client, auth, staff, ticket):
    login(auth, staff)
    token = create_token(client)
    row = db.session.scalars(sa.select(ScannerToken)).one()
    assert client.post(f"/tickets/scanner-tokens/{row.id}/revoke").status_code == 302
    device = app.test_client()
    payload = {"payload": ticket_payload(ticket)}
    for header in (f"Bearer {token}", "Bearer gchs_" + "A" * 43, "Bearer nonsense", f"Basic {token}", "Bearer "):
        response = device.post(API, json=payload, headers={"Authorization": header})
        assert response.status_code == 401 and response.json["error"] == "invalid_token", header

    expiring = create_token(client, "Old phone")
    db.session.execute(sa.update(ScannerToken).where(ScannerToken.token_hash == hash_token(expiring))
                       .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()
    assert device.post(API, json=payload, headers={"Authorization": f"Bearer {expiring}"}).status_code == 401
    assert db.session.get(Ticket, ticket.id).checked_in_at is None


@pytest.mark.parametrize("change", ["demoted", "disabled"])
def test_a_token_stops_working_when_its_owner_is_no_longer_active_staff(app, client, auth, staff, ticket, change):
    login(auth, staff)
    token = create_token(client)
    if change == "demoted":
        staff.role = "customer"
    else:
        staff.disabled_at = datetime.now(UTC)
    db.session.commit()
    response = app.test_client().post(API, json={"payload": ticket_payload(ticket)},
                                      headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_staff_cannot_revoke_someone_elses_token(client, auth, staff):
    from app.services.scanner_tokens import create_scanner_token

    other = UserFactory(role="staff")
    row, _ = create_scanner_token(db.session, other, name="Theirs", now=datetime.now(UTC), valid_days=30,
                                  max_tokens=5)
    login(auth, staff)
    assert client.post(f"/tickets/scanner-tokens/{row.id}/revoke").status_code == 404
    assert db.session.get(ScannerToken, row.id).revoked_at is None


def test_customers_cannot_create_tokens(client, auth, customer):
    login(auth, customer)
    assert client.get("/tickets/scanner-tokens").status_code == 403
    assert client.post("/tickets/scanner-tokens", data={"name": "x"}).status_code == 403


# --------------------------------------------------------------------------- public key
def test_public_key_for_staff_only(client, auth, staff, customer):
    assert client.get("/tickets/public-key.pem").status_code == 302
    login(auth, customer)
    assert client.get("/tickets/public-key.pem").status_code == 403
    auth.logout()
    login(auth, staff)
    response = client.get("/tickets/public-key.pem")
    assert response.status_code == 200 and response.mimetype == "application/x-pem-file"
    assert response.data == public_key_pem(signing_key())
    assert b"PRIVATE" not in response.data


# --------------------------------------------------------------------------- CLI
def test_cli_export_public_key(runner, tmp_path):
    result = runner.invoke(args=["tickets", "export-public-key"])
    assert result.exit_code == 0 and result.output.encode() == ticket_keys().public_pem
    out = tmp_path / "key.pem"
    assert runner.invoke(args=["tickets", "export-public-key", "-o", str(out)]).exit_code == 0
    assert out.read_bytes() == ticket_keys().public_pem


def test_offline_verifier_agrees_with_the_server_on_every_case(client, auth, staff, runner, payloads, tmp_path):
    """The CLI, with only the public key file and no database, against the server's verdicts."""
    key_file = tmp_path / "public.pem"
    key_file.write_bytes(ticket_keys().public_pem)
    login(auth, staff)
    statements = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    offline = {case: runner.invoke(args=["tickets", "verify", text, "--public-key", str(key_file)])
               for case, text in payloads.items()}
    assert statements == []  # offline means offline
    offline["ALREADY_USED"] = offline["VALID"]

    server = {case: client.post(API, json={"payload": text}).json["verdict"] for case, text in payloads.items()}
    server["ALREADY_USED"] = client.post(API, json={"payload": payloads["VALID"]}).json["verdict"]
    assert server == {case: case.removesuffix("_OTHER_KEY") for case in server}

    for case, result in offline.items():
        word = result.output.split()[0]
        if server[case] in ("MALFORMED", "FORGED"):
            assert (word, result.exit_code) == (server[case], 1), case
        else:
            assert (word, result.exit_code) == ("AUTHENTIC", 0), case
    assert offline["VALID"].output.strip() == f"AUTHENTIC ticket {parse_payload(payloads['VALID']).ticket_id}"


def test_cli_verify_with_a_bad_key_file(runner, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    result = runner.invoke(args=["tickets", "verify", "AE", "--public-key", str(bad)])
    assert result.exit_code == 2 and "unreadable PEM public key" in result.output


def test_cli_create_token(runner, staff, customer):
    result = runner.invoke(args=["tickets", "create-token", staff.email, "--name", "Gate 9"])
    assert result.exit_code == 0
    token = result.stdout.strip().splitlines()[-1]
    assert db.session.scalars(sa.select(ScannerToken)).one().token_hash == hash_token(token)
    refused = runner.invoke(args=["tickets", "create-token", customer.email, "--name", "x"])
    assert refused.exit_code == 1 and "Only staff members" in refused.output
    assert runner.invoke(args=["tickets", "create-token", "nobody@example.test", "--name", "x"]).exit_code == 1


def test_cli_users_rotate_key(runner, customer, ticket, outbox):
    old = ticket_payload(ticket)
    assert runner.invoke(args=["users", "rotate-key", customer.email], input="n\n").exit_code == 1
    db.session.expire_all()
    assert ticket_payload(db.session.get(Ticket, ticket.id)) == old

    result = runner.invoke(args=["users", "rotate-key", customer.email, "--yes"])
    assert result.exit_code == 0 and "1 ticket(s) re-issued" in result.output
    db.session.expire_all()
    assert ticket_payload(db.session.get(Ticket, ticket.id)) != old
    [message] = outbox
    assert message.recipients == [customer.email]
    assert [a.filename for a in message.attachments] == [f"guichet-ticket-{ticket.number}.pdf"]
    assert "/tickets/" in message.body


def test_a_token_check_in_costs_one_statement_on_postgresql_three_after_the_cached_check_elsewhere(
        app, staff, customer):
    """PostgreSQL: the token check (and its last use), the conditional UPDATE (which also reads
    owner key, offer and event), the audit event and the scan record are one statement, a
    data-modifying WITH, from the first scan on; psycopg runs it, unseen by SQLAlchemy's events
    (tests/functional/test_checkin_roundtrips.py sees it on the wire). Elsewhere the token's state
    is read and cached on the first scan; then three statements."""
    from app.services.scanner_tokens import create_scanner_token

    offer = OfferFactory()
    order = make_paid_order(customer, (offer, 2))
    first, second = db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id))
    payloads = [ticket_payload(first), ticket_payload(second)]
    _, token = create_scanner_token(db.session, staff, name="Gate", now=datetime.now(UTC), valid_days=1,
                                    max_tokens=1)
    device = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    statements = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    on_postgresql = db.engine.dialect.name == "postgresql"
    scan = [] if on_postgresql else ["UPDATE", "INSERT", "INSERT"]
    db.session.commit()  # like a scanner app's request: no transaction open before the scan
    assert device.post(API, json={"payload": payloads[0]}, headers=headers).json["verdict"] == "VALID"
    kinds = [s.split()[0].upper() for s in statements]
    # elsewhere: the token lookup, its last_used_at, then the scan
    assert kinds == (scan if on_postgresql else ["SELECT", "UPDATE", *scan]), statements

    statements.clear()
    assert device.post(API, json={"payload": payloads[1]}, headers=headers).json["verdict"] == "VALID"
    kinds = [s.split()[0].upper() for s in statements]
    assert kinds == scan, statements


# --------------------------------------------------------------------------- cached scanner tokens
def make_token(user, **options) -> str:
    from app.services.scanner_tokens import create_scanner_token

    options = {"name": "Gate 5", "now": datetime.now(UTC), "valid_days": 30, "max_tokens": 5} | options
    return create_scanner_token(db.session, user, **options)[1]


def more_tickets(customer, count: int) -> list[str]:
    order = make_paid_order(customer, (OfferFactory(), count))
    return [ticket_payload(t) for t in db.session.scalars(
        sa.select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id))]


def scan_with(device, token: str, payload: str):
    return device.post(API, json={"payload": payload}, headers={"Authorization": f"Bearer {token}"})


def test_a_valid_scan_makes_the_cached_statistics_stale(app, staff, customer):
    """The admin statistics count check-ins: the one-statement check-in must still be seen by the
    session listener that replaces the statistics version (app/services/stats.py)."""
    from app.services.stats import stats_version

    first, = more_tickets(customer, 1)
    token = make_token(staff)
    before = stats_version(cache)
    assert scan_with(app.test_client(), token, first).json["verdict"] == "VALID"
    assert stats_version(cache) != before


def test_a_token_revoked_right_after_a_cached_scan_is_refused(app, client, auth, staff, customer):
    first, second = more_tickets(customer, 2)
    login(auth, staff)
    token = create_token(client)
    device = app.test_client()
    assert scan_with(device, token, first).json["verdict"] == "VALID"  # the token's state is now cached
    assert cache.get(token_cache_key(hash_token(token))) is not None
    row = db.session.scalars(sa.select(ScannerToken)).one()
    assert client.post(f"/tickets/scanner-tokens/{row.id}/revoke").status_code == 302
    assert cache.get(token_cache_key(hash_token(token))) is None
    refused = scan_with(device, token, second)
    assert refused.status_code == 401 and refused.json["error"] == "invalid_token"
    assert db.session.scalar(sa.select(sa.func.count(CheckIn.id))) == 1


@pytest.mark.parametrize("change", ["demoted", "disabled", "demoted_by_admin", "disabled_by_admin"])
def test_a_token_stops_right_after_a_cached_scan_when_its_owner_stops_being_staff(app, staff, customer, change):
    from app.services import users_admin

    first, second = more_tickets(customer, 2)
    token = make_token(staff)
    device = app.test_client()
    assert scan_with(device, token, first).json["verdict"] == "VALID"
    admin = UserFactory(role="admin")
    if change == "demoted":
        staff.role = "customer"
        db.session.commit()
    elif change == "disabled":
        staff.disabled_at = datetime.now(UTC)
        db.session.commit()
    elif change == "demoted_by_admin":
        users_admin.change_role(db.session, staff.id, "customer", actor_id=admin.id, now=datetime.now(UTC))
    else:
        users_admin.disable_user(db.session, staff.id, actor_id=admin.id, now=datetime.now(UTC))
    assert scan_with(device, token, second).status_code == 401
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id)).where(Ticket.checked_in_at.is_not(None))) == 1


def token_checked_in_the_scan_statement() -> bool:
    """PostgreSQL checks a scanner token inside the scan's own statement when no transaction is
    open (app/services/checkin.py check_in_by_token), and caches nothing; the tests' shared
    session is often in one, and then the cached check runs, as on SQLite."""
    return db.engine.dialect.name == "postgresql" and not db.session().in_transaction()


def test_a_cached_token_still_expires_on_time(app, staff, customer):
    first, second = more_tickets(customer, 2)
    start = datetime.now(UTC)
    token = make_token(staff, now=start, valid_days=1)
    device = app.test_client()
    cached = not token_checked_in_the_scan_statement()
    with freeze_time(start + timedelta(days=1, seconds=-3)) as frozen:
        assert scan_with(device, token, first).json["verdict"] == "VALID"
        assert (cache.get(token_cache_key(hash_token(token))) is not None) == cached
        frozen.tick(timedelta(seconds=3))  # now == expires_at; a cached state is 3 s old
        assert scan_with(device, token, second).status_code == 401


def test_other_changes_to_the_owner_keep_the_cached_token(app, staff, customer):
    """Only what can stop a token (role, disabled, revoked, deleted) clears its cached state."""
    first, second = more_tickets(customer, 2)
    token = make_token(staff)
    device = app.test_client()
    cached = not token_checked_in_the_scan_statement()
    assert scan_with(device, token, first).json["verdict"] == "VALID"
    staff.first_name = "Samuel"
    db.session.commit()
    assert (cache.get(token_cache_key(hash_token(token))) is not None) == cached
    assert scan_with(device, token, second).json["verdict"] == "VALID"


def test_a_bulk_update_needs_forget_cached_tokens(app, staff, customer):
    """The ORM listener cannot see a bulk UPDATE; its caller clears the cache (else the TTL does)."""
    from app.tickets.token_cache import forget_cached_tokens

    first, second = more_tickets(customer, 2)
    token = make_token(staff)
    device = app.test_client()
    cached = not token_checked_in_the_scan_statement()
    assert scan_with(device, token, first).json["verdict"] == "VALID"
    db.session.execute(sa.update(User).where(User.id == staff.id).values(role="customer"))
    db.session.commit()
    assert (cache.get(token_cache_key(hash_token(token))) is not None) == cached  # else nothing to forget
    forget_cached_tokens(user_ids=[staff.id])
    assert scan_with(device, token, second).status_code == 401


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False, SCANNER_TOKEN_CACHE_SECONDS=1)
def test_the_cache_lifetime_is_the_backstop(app, staff, customer):
    first, second = more_tickets(customer, 2)
    token = make_token(staff)
    device = app.test_client()
    assert scan_with(device, token, first).json["verdict"] == "VALID"
    db.session.execute(sa.update(ScannerToken).values(revoked_at=datetime.now(UTC)))  # unseen by the listener
    db.session.commit()
    time.sleep(1.2)
    assert scan_with(device, token, second).status_code == 401


def test_the_token_check_works_without_the_cache(app, staff, customer, monkeypatch):
    """An unreachable cache (Redis down) means asking the database, not refusing the gate."""
    first, second = more_tickets(customer, 2)
    token = make_token(staff)

    def unavailable(*_args, **_kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", unavailable)
    monkeypatch.setattr(cache, "set", unavailable)
    device = app.test_client()
    assert scan_with(device, token, first).json["verdict"] == "VALID"
    db.session.execute(sa.update(ScannerToken).values(revoked_at=datetime.now(UTC)))
    db.session.commit()
    assert scan_with(device, token, second).status_code == 401


# --------------------------------------------------------------------------- no session for scanner apps
def test_a_bearer_call_ignores_cookies_loads_no_session_and_sets_none(app, client, auth, staff, customer, monkeypatch):
    """A scanner app that also sends a session cookie (e.g. a web app on this site) is judged by its
    token alone: the server-side session is not read or written, no cookie comes back."""
    first, second = more_tickets(customer, 2)
    token = make_token(staff)
    login(auth, customer)  # this client now holds a logged-in customer's session cookie
    assert client.get_cookie("guichet_session") is not None
    interface = app.session_interface
    reads, writes = [], []
    read, write = interface._retrieve_session_data, interface._upsert_session
    monkeypatch.setattr(interface, "_retrieve_session_data", lambda *a: (reads.append(a), read(*a))[1])
    monkeypatch.setattr(interface, "_upsert_session", lambda *a: (writes.append(a), write(*a))[1])
    loads = []
    user_loader = login_manager._user_callback
    monkeypatch.setattr(login_manager, "_user_callback", lambda user_id: (loads.append(user_id), user_loader(user_id))[1])

    response = scan_with(client, token, first)
    assert response.status_code == 200 and response.json["verdict"] == "VALID"
    assert (reads, writes, loads) == ([], [], [])
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    db.session.expire_all()
    assert db.session.scalars(sa.select(Ticket).where(Ticket.checked_in_at.is_not(None))).one().checked_in_by_id \
        == staff.id

    # Without the Authorization header the same client is its logged-in customer again.
    refused = client.post(API, json={"payload": second})
    assert refused.status_code == 403 and refused.json["error"] == "forbidden"
    assert reads and loads


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="two instances share a cache only through Redis")
def test_a_revocation_on_one_instance_stops_the_token_on_the_other(app, make_app, staff, customer):
    from app.services.scanner_tokens import revoke_scanner_token

    other = make_app()
    first, second = more_tickets(customer, 2)
    token = make_token(staff)
    assert scan_with(other.test_client(), token, first).json["verdict"] == "VALID"  # cached by instance B
    row = db.session.scalars(sa.select(ScannerToken)).one()
    revoke_scanner_token(db.session, row.id, user_id=staff.id, now=datetime.now(UTC))  # on instance A
    assert scan_with(other.test_client(), token, second).status_code == 401
