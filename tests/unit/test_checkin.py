"""The gate's verification: each failure its own verdict, atomic check-in, offline agreement."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, CheckIn, Ticket
from app.services import checkin
from app.services.audit import AUDIT_TYPES
from app.services.checkin import (
    ALREADY_USED,
    ANSWER_OF,
    FORGED,
    KEY_MISMATCH,
    MALFORMED,
    UNKNOWN_TICKET,
    VALID,
    VOID,
    authenticate,
    check_in,
    verify_offline,
)
from app.services.signing import (
    AUTHENTIC,
    double_key_digest,
    generate_private_key_pem,
    load_private_key,
    make_purchase_key,
    make_user_key,
    sign_payload,
)
from app.services.tickets import rotate_user_key
from tests.factories import OfferFactory, UserFactory, make_paid_order

NOW = datetime(2030, 5, 1, 18, 0, tzinfo=UTC)
KEY = load_private_key(generate_private_key_pem())
OTHER_KEY = load_private_key(generate_private_key_pem())
PUBLIC = KEY.public_key()
OFFLINE_OF = {MALFORMED: MALFORMED, FORGED: FORGED}  # anything else is AUTHENTIC offline


def payload_of(ticket: Ticket, key=KEY) -> str:
    return sign_payload(key, ticket.id, ticket.key_digest)


@pytest.fixture
def staff(app):
    return UserFactory(role="staff", first_name="Sam", last_name="Steward")


@pytest.fixture
def duo_ticket(app):
    customer = UserFactory(first_name="Marie", last_name="Curie")
    offer = OfferFactory(kind="duo", name="Duo", persons=2, price_cents=9000,
                         event__title="Swimming — Finals", event__starts_at=NOW + timedelta(days=10))
    order = make_paid_order(customer, (offer, 1), now=NOW - timedelta(days=1))
    return db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id)).one()


def scan(text, staff_id=None, now=NOW):
    return check_in(db.session, PUBLIC, text, staff_id=staff_id, now=now)


def change_one_character(text: str, index: int) -> str:
    replacement = "B" if text[index] != "B" else "C"
    return text[:index] + replacement + text[index + 1:]


def test_valid_once_then_already_used(duo_ticket, staff):
    payload = payload_of(duo_ticket)

    first = scan(payload, staff.id)
    assert first.verdict == VALID and first.answer == "valid" and first.label == "VALID"
    assert (first.holder_name, first.offer_name, first.persons) == ("Marie Curie", "Duo", 2)
    assert first.event_title == "Swimming — Finals"

    later = NOW + timedelta(minutes=3)
    second = scan(payload, staff.id, now=later)
    assert second.verdict == ALREADY_USED and second.label == "ALREADY USED"
    assert second.checked_in_at == NOW and second.checked_in_by == "Sam Steward"

    db.session.expire_all()
    ticket = db.session.get(Ticket, duo_ticket.id)
    assert ticket.checked_in_at == NOW and ticket.checked_in_by_id == staff.id
    scans = db.session.scalars(sa.select(CheckIn).order_by(CheckIn.id)).all()
    assert [(s.verdict, s.ticket_id, s.staff_id) for s in scans] == [
        (VALID, ticket.id, staff.id), (ALREADY_USED, ticket.id, staff.id)]
    audits = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == "check_in")).all()
    assert len(audits) == 1
    assert audits[0].actor_id == staff.id and audits[0].subject_user_id == ticket.user_id
    assert audits[0].details["ticket_id"] == ticket.id


@pytest.mark.parametrize("index", [2, 3, 12, 20, 40, 60, 100, 141])
def test_one_character_changed_is_forged(duo_ticket, index):
    """Ticket id (2-15), digest prefix (15-40) or signature (40-142): the signature fails."""
    tampered = change_one_character(payload_of(duo_ticket), index)
    assert scan(tampered).verdict == FORGED
    assert verify_offline(PUBLIC, tampered) == FORGED


def test_a_changed_version_character_is_malformed(duo_ticket):
    tampered = change_one_character(payload_of(duo_ticket), 0)
    assert scan(tampered).verdict == MALFORMED
    assert verify_offline(PUBLIC, tampered) == MALFORMED


def test_no_single_character_change_anywhere_is_authentic(duo_ticket):
    payload = payload_of(duo_ticket)
    for index in range(len(payload)):
        for replacement in "A7Z":
            if payload[index] != replacement:
                changed = payload[:index] + replacement + payload[index + 1:]
                assert verify_offline(PUBLIC, changed) in (FORGED, MALFORMED), index


def test_signature_from_another_key_is_forged(duo_ticket):
    foreign = payload_of(duo_ticket, key=OTHER_KEY)
    result = scan(foreign)
    assert result.verdict == FORGED and result.answer == "forged" and result.label == "FORGED / UNKNOWN"
    assert result.ticket_id is None  # nothing about a real ticket is revealed for a forged code


@pytest.mark.parametrize("text", ["", "   ", "hello", "AE" * 200, "https://example.com/?t=1", "é" * 143,
                                  "AEAAAAAAAAAAA1", "x" * 5000])
def test_garbage_is_malformed(app, text):
    assert scan(text).verdict == MALFORMED
    assert verify_offline(PUBLIC, text) == MALFORMED


def test_unknown_ticket_id(duo_ticket):
    unknown = sign_payload(KEY, duo_ticket.id + 1000, double_key_digest(make_user_key(), make_purchase_key()))
    assert scan(unknown).verdict == UNKNOWN_TICKET
    assert verify_offline(PUBLIC, unknown) == AUTHENTIC
    huge = sign_payload(KEY, 2**64 - 1, bytes(32))  # beyond PostgreSQL's BIGINT
    assert scan(huge).verdict == UNKNOWN_TICKET


def test_voided_ticket(duo_ticket):
    duo_ticket.voided_at = NOW - timedelta(hours=1)
    db.session.commit()
    result = scan(payload_of(duo_ticket))
    assert result.verdict == VOID and result.answer == "void"
    assert db.session.get(Ticket, duo_ticket.id).checked_in_at is None


def test_rotated_user_key_voids_old_code_and_the_new_code_is_valid(duo_ticket):
    old_payload = payload_of(duo_ticket)
    rotation = rotate_user_key(db.session, duo_ticket.user, actor_id=None, now=NOW)
    assert rotation.reissued_ticket_ids == [duo_ticket.id]

    old = scan(old_payload)
    assert old.verdict == KEY_MISMATCH and old.answer == "void"
    assert verify_offline(PUBLIC, old_payload) == AUTHENTIC  # genuine, but replaced

    ticket = db.session.get(Ticket, duo_ticket.id)
    new_payload = payload_of(ticket)
    assert new_payload != old_payload
    assert scan(new_payload).verdict == VALID


def test_the_checks_run_in_the_specified_order(duo_ticket):
    """Digest before void before used: a replaced code says so even if the ticket is also void."""
    old_payload = payload_of(duo_ticket)
    rotate_user_key(db.session, duo_ticket.user, actor_id=None, now=NOW)
    ticket = db.session.get(Ticket, duo_ticket.id)
    ticket.voided_at = NOW
    ticket.checked_in_at = NOW
    db.session.commit()
    assert scan(old_payload).verdict == KEY_MISMATCH
    assert scan(payload_of(ticket)).verdict == VOID


def test_digest_is_recomputed_from_the_current_user_key(duo_ticket):
    """Changing only the owner's key (no re-issue) is enough to refuse every earlier code."""
    payload = payload_of(duo_ticket)
    duo_ticket.user.user_key = make_user_key()
    db.session.commit()
    assert scan(payload).verdict == KEY_MISMATCH


def test_offline_verifier_agrees_with_the_server_on_every_verdict(duo_ticket, staff):
    valid_payload = payload_of(duo_ticket)
    cases = {
        MALFORMED: "NOT-A-TICKET",
        FORGED: payload_of(duo_ticket, key=OTHER_KEY),
        UNKNOWN_TICKET: sign_payload(KEY, 987654, bytes(32)),
    }
    server = {expected: scan(text).verdict for expected, text in cases.items()}
    server[VALID] = scan(valid_payload, staff.id).verdict
    server[ALREADY_USED] = scan(valid_payload, staff.id).verdict
    cases[VALID] = cases[ALREADY_USED] = valid_payload
    assert server == {key: key for key in server}
    for verdict, text in cases.items():
        assert verify_offline(PUBLIC, text) == OFFLINE_OF.get(verdict, AUTHENTIC), verdict


def test_authenticate_returns_the_parsed_ticket_id(duo_ticket):
    verdict, parsed = authenticate(PUBLIC, payload_of(duo_ticket).lower() + "\n")
    assert verdict == AUTHENTIC and parsed.ticket_id == duo_ticket.id


def test_every_verdict_maps_to_one_of_the_four_answers():
    assert set(ANSWER_OF) == set(checkin.VERDICTS)
    assert set(ANSWER_OF.values()) == {"valid", "used", "void", "forged"}


def test_json_shape(duo_ticket, staff):
    body = scan(payload_of(duo_ticket), staff.id).as_json()
    assert body["verdict"] == "VALID" and body["answer"] == "valid" and body["label"] == "VALID"
    assert body["ticket"]["holder"] == "Marie Curie" and body["ticket"]["persons"] == 2
    assert body["ticket"]["number"] == duo_ticket.number
    assert body["scanned_at"] == NOW.isoformat()
    assert scan("junk").as_json()["ticket"] is None


def test_losing_the_race_to_another_gate_gives_already_used(duo_ticket, staff, monkeypatch):
    """Another gate checks the ticket in just before our UPDATE: we must not say VALID."""
    other = UserFactory(role="staff", first_name="Other", last_name="Gate")
    real_take = checkin._take_ticket
    calls = []

    def someone_else_checks_in_first(session, parsed, **kwargs):
        session.execute(sa.update(Ticket).where(Ticket.id == parsed.ticket_id)
                        .values(checked_in_at=NOW - timedelta(seconds=1), checked_in_by_id=other.id))
        calls.append(parsed.ticket_id)
        return real_take(session, parsed, **kwargs)

    monkeypatch.setattr(checkin, "_take_ticket", someone_else_checks_in_first)
    result = scan(payload_of(duo_ticket), staff.id)
    assert result.verdict == ALREADY_USED and result.checked_in_by == "Other Gate"
    assert result.checked_in_at == NOW - timedelta(seconds=1)
    assert calls == [duo_ticket.id]
    db.session.expire_all()
    assert db.session.get(Ticket, duo_ticket.id).checked_in_by_id == other.id
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == 0


def test_a_replaced_code_undoes_its_check_in(duo_ticket, staff):
    """A replaced code must leave the ticket unused: on PostgreSQL the UPDATE's WHERE checks the
    digest (its scan is autocommitted), elsewhere the UPDATE that took the ticket is rolled back."""
    old_payload = payload_of(duo_ticket)
    duo_ticket.user.user_key = make_user_key()
    db.session.commit()
    result = scan(old_payload, staff.id)
    assert result.verdict == KEY_MISMATCH and result.checked_in_at is None and result.checked_in_by is None
    assert (result.ticket_id, result.holder_name, result.offer_name) == (duo_ticket.id, "Marie Curie", "Duo")
    db.session.expire_all()
    ticket = db.session.get(Ticket, duo_ticket.id)
    assert ticket.checked_in_at is None and ticket.checked_in_by_id is None
    scans = db.session.scalars(sa.select(CheckIn)).all()
    assert [(s.verdict, s.ticket_id, s.event_id) for s in scans] == [(KEY_MISMATCH, ticket.id, ticket.event_id)]
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))) == 0


def test_the_check_in_audit_event(duo_ticket, staff):
    before = datetime.now(UTC)
    scan(payload_of(duo_ticket), staff.id)
    event = db.session.scalars(sa.select(AuditEvent)).one()
    assert event.type == checkin.CHECK_IN_AUDIT == "check_in" and event.type in AUDIT_TYPES
    assert (event.actor_id, event.subject_user_id) == (staff.id, duo_ticket.user_id)
    assert event.details == {"ticket_id": duo_ticket.id, "ticket_number": duo_ticket.number,
                             "event_id": duo_ticket.event_id, "persons": 2}
    assert event.created_at >= before - timedelta(seconds=1)


def test_a_valid_scan_is_one_commit_after_one_statement_on_postgresql_three_elsewhere(duo_ticket, staff):
    """The conditional UPDATE … RETURNING reads what the answer needs: no SELECT before it. On
    PostgreSQL it also writes the audit event and the scan record (a data-modifying WITH), run by
    psycopg itself, unseen by SQLAlchemy's statement events; the session's commit sends nothing in
    autocommit. Both are checked on the wire in tests/functional/test_checkin_roundtrips.py."""
    payload, staff_id = payload_of(duo_ticket), staff.id
    statements, commits = [], []

    def on_statement(_conn, _cursor, statement, *_args):
        statements.append(statement.split()[0].upper())

    def on_commit(_conn):
        commits.append(1)

    sa.event.listen(db.engine, "before_cursor_execute", on_statement)
    sa.event.listen(db.engine, "commit", on_commit)
    try:
        result = scan(payload, staff_id)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", on_statement)
        sa.event.remove(db.engine, "commit", on_commit)
    assert result.verdict == VALID and result.event_title == "Swimming — Finals"
    assert result.event_starts_at == NOW + timedelta(days=10)
    expected = [] if db.engine.dialect.name == "postgresql" else ["UPDATE", "INSERT", "INSERT"]
    assert statements == expected and commits == [1]
    audit = db.session.scalars(sa.select(AuditEvent)).one()
    assert (audit.type, audit.actor_id, audit.details["ticket_id"]) == ("check_in", staff_id, duo_ticket.id)
    assert db.session.scalars(sa.select(CheckIn.verdict)).all() == [VALID]


def test_simultaneous_scans_of_one_ticket_admit_exactly_once(app, duo_ticket, staff):
    """24 threads, each with its own session and connection, released together."""
    payload = payload_of(duo_ticket)
    threads_count = 24
    barrier = threading.Barrier(threads_count)
    verdicts, errors = [], []

    def gate():
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                verdicts.append(check_in(db.session, PUBLIC, payload, staff_id=staff.id, now=NOW).verdict)
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - any failure in a thread is reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=gate) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(verdicts).count(VALID) == 1
    assert verdicts.count(ALREADY_USED) == threads_count - 1
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(CheckIn.id))) == threads_count
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.type == "check_in")) == 1


@pytest.mark.parametrize("name", ["_TAKE_AND_RECORD", "_TAKE_AND_RECORD_BY_TOKEN"])
def test_the_driver_statements_need_no_bind_conversion(name):
    """psycopg runs the PostgreSQL check-in statements with their parameters as given: none may
    depend on a SQLAlchemy bind processor (e.g. the models' UTCDateTime), and none may carry an
    IN list expanded at each execution."""
    from sqlalchemy.dialects.postgresql import psycopg

    statement = getattr(checkin, name)
    compiled = statement.statement.compile(dialect=psycopg.dialect())
    assert compiled._bind_processors == {}
    assert "POSTCOMPILE" not in compiled.string
    sql, defaults = statement.compiled(psycopg.dialect())
    assert sql.startswith("WITH ") and set(defaults.values()) >= {"check_in", "VALID"}
