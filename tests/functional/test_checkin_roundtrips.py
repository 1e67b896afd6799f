"""PostgreSQL: a valid scan is one round trip, seen on the wire (libpq's protocol trace).

psycopg sends BEGIN and COMMIT as round trips of their own, which SQLAlchemy's statement events
do not show (and its "begin"/"commit" events fire even in autocommit, where they send nothing).
So these tests count the server's ReadyForQuery messages: one per round trip.
"""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.extensions import cache, db
from app.models import AuditEvent, CheckIn, ScannerToken, Ticket, User
from app.services.checkin import KEY_MISMATCH, VALID, check_in
from app.services.scanner_tokens import (
    create_scanner_token,
    hash_token,
    token_cache_key,
)
from app.services.stats import stats_version
from app.services.tickets import rotate_user_key
from app.tickets.documents import ticket_payload
from app.tickets.keys import public_key
from tests.checkers import wait_for
from tests.conftest import TEST_DATABASE_URL
from tests.factories import OfferFactory, UserFactory, make_paid_order
from tests.wire_trace import WireTrace

pytestmark = [
    pytest.mark.skipif(not TEST_DATABASE_URL, reason="set TEST_DATABASE_URL: the one-round-trip scan is PostgreSQL's"),
    pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False),
]
API = "/tickets/api/check-in"


@pytest.fixture
def customer(app):
    return UserFactory(first_name="Marie", last_name="Curie")


@pytest.fixture
def staff(app):
    return UserFactory(role="staff", first_name="Sam", last_name="Steward")


def tickets_of(customer, count: int = 1) -> list[Ticket]:
    order = make_paid_order(customer, (OfferFactory(), count))
    return list(db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id)))


def scan(payload: str, staff_id: int):
    return check_in(db.session, public_key(), payload, staff_id=staff_id, now=datetime.now(UTC))


def test_a_valid_scan_is_one_round_trip_without_begin_or_commit(app, customer, staff):
    ticket, = tickets_of(customer)
    payload, staff_id, ticket_id = ticket_payload(ticket), staff.id, ticket.id
    db.session.commit()  # like a scanner-token call: no transaction open before the scan
    with WireTrace(db.engine).recording() as wire:
        result = scan(payload, staff_id)
    assert result.verdict == VALID
    assert wire.sql() == ["WITH"], wire.messages()
    assert wire.round_trips() == 1, wire.messages()
    assert db.session.get(Ticket, ticket_id).checked_in_by_id == staff_id
    assert db.session.scalars(sa.select(CheckIn.verdict)).all() == [VALID]
    audit = db.session.scalars(sa.select(AuditEvent)).one()
    assert (audit.type, audit.actor_id, audit.details["ticket_id"]) == ("check_in", staff_id, ticket_id)


def test_a_token_scan_is_one_round_trip_token_check_included_and_makes_the_statistics_stale(app, customer, staff):
    """The API path the gates use: the token's check and its last use are inside the scan's one
    statement, from the first scan on (no cache); the statistics listener still sees the scan."""
    first, second = (ticket_payload(t) for t in tickets_of(customer, 2))
    row, token = create_scanner_token(db.session, staff, name="Gate", now=datetime.now(UTC), valid_days=1,
                                      max_tokens=1)
    token_id, staff_id = row.id, staff.id
    db.session.commit()
    device, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    for payload in (first, second):
        before = stats_version(cache)
        with WireTrace(db.engine).recording() as wire:
            assert device.post(API, json={"payload": payload}, headers=headers).json["verdict"] == VALID
        assert wire.sql() == ["WITH"] and wire.round_trips() == 1, wire.messages()
        assert stats_version(cache) != before
    assert cache.get(token_cache_key(hash_token(token))) is None  # nothing cached on this path
    first_use = db.session.get(ScannerToken, token_id).last_used_at
    assert first_use is not None  # written by the first scan, kept by the second (TOUCH_EVERY)
    assert db.session.scalars(sa.select(CheckIn.staff_id)).all() == [staff_id, staff_id]


def test_a_token_scan_leaves_the_session_alone_and_its_connection_out_of_autocommit(app, customer, staff):
    """The statement runs on a connection of its own from the pool (app/services/checkin.py
    _pooled_autocommit_connection): the session begins nothing, and the connection goes back
    to the pool with transactions on again, so its next user's rollback undoes."""
    ticket, other = tickets_of(customer, 2)
    payload, other_id = ticket_payload(ticket), other.id
    _, token = create_scanner_token(db.session, staff, name="Gate", now=datetime.now(UTC), valid_days=1,
                                    max_tokens=1)
    db.session.commit()
    with WireTrace(db.engine).recording() as wire:
        assert app.test_client().post(API, json={"payload": payload},
                                      headers={"Authorization": f"Bearer {token}"}).json["verdict"] == VALID
    assert not db.session().in_transaction()
    assert wire.connections and all(not c.autocommit for c in wire.connections.values())
    with db.engine.connect() as connection:  # the pool's connection, as the next request gets it
        connection.execute(sa.update(Ticket).where(Ticket.id == other_id).values(holder_name="Changed"))
        connection.rollback()
    assert db.session.get(Ticket, other_id).holder_name != "Changed"


def test_a_token_scan_whose_statement_fails_drops_its_connection(app, customer, staff, monkeypatch):
    """A connection that failed mid-statement (in autocommit, perhaps broken) never serves again;
    the next scan gets a sound one."""
    import psycopg

    from app.services import checkin

    payload = ticket_payload(tickets_of(customer)[0])
    _, token = create_scanner_token(db.session, staff, name="Gate", now=datetime.now(UTC), valid_days=1,
                                    max_tokens=1)
    db.session.commit()
    used = []

    def server_gone(connection, dialect, params):
        used.append(connection)
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(checkin._TAKE_AND_RECORD_BY_TOKEN, "first_row_on", server_gone)
    with pytest.raises(psycopg.OperationalError):
        checkin.check_in_by_token(db.session, public_key(), payload, token=token, now=datetime.now(UTC),
                                  staff_id_for_token=lambda: None)
    assert used and used[0].closed  # invalidated by the pool: closed, not given back
    monkeypatch.undo()
    assert scan_by_token(app, token, payload).json["verdict"] == VALID


def scan_by_token(app, token: str, payload: str):
    db.session.commit()  # a scanner app's request: no transaction open before the scan
    return app.test_client().post(API, json={"payload": payload}, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("stop", ["revoked", "expired", "demoted", "disabled", "bulk_demoted"])
def test_the_scan_statement_refuses_a_token_that_stopped_and_records_nothing(app, customer, staff, stop):
    """What staff_id_for_token refuses, the statement refuses too, at once: nothing is cached on
    this path, so even a bulk UPDATE counts from its commit."""
    first, second = (ticket_payload(t) for t in tickets_of(customer, 2))
    _, token = create_scanner_token(db.session, staff, name="Gate", now=datetime.now(UTC), valid_days=1, max_tokens=1)
    assert scan_by_token(app, token, first).json["verdict"] == VALID
    if stop == "revoked":
        db.session.execute(sa.update(ScannerToken).values(revoked_at=datetime.now(UTC)))
    elif stop == "expired":
        db.session.execute(sa.update(ScannerToken).values(expires_at=datetime.now(UTC)))
    elif stop == "demoted":
        db.session.execute(sa.update(User).where(User.role == "staff").values(role="customer"))
    elif stop == "disabled":
        db.session.execute(sa.update(User).where(User.role == "staff").values(disabled_at=datetime.now(UTC)))
    else:
        db.session.execute(sa.text("UPDATE users SET role = 'customer' WHERE role = 'staff'"))
    refused = scan_by_token(app, token, second)
    assert refused.status_code == 401 and refused.json["error"] == "invalid_token"
    assert db.session.scalar(sa.select(sa.func.count(CheckIn.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id)).where(Ticket.checked_in_at.is_not(None))) == 1
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.type == "check_in")) == 1


def test_the_scan_statement_records_refusals_for_the_tokens_owner(app, customer, staff):
    ticket, = tickets_of(customer)
    payload, staff_id = ticket_payload(ticket), staff.id
    _, token = create_scanner_token(db.session, staff, name="Gate", now=datetime.now(UTC), valid_days=1, max_tokens=1)
    assert scan_by_token(app, token, payload).json["verdict"] == VALID
    again = scan_by_token(app, token, payload).json
    assert again["verdict"] == "ALREADY_USED" and again["checked_in_by"] == "Sam Steward"
    assert scan_by_token(app, token, "G1" + "A" * 141).json["verdict"] == "MALFORMED"  # the cached check
    assert scan_by_token(app, "gchs_" + "x" * 43, payload).status_code == 401
    scans = db.session.execute(sa.select(CheckIn.verdict, CheckIn.staff_id).order_by(CheckIn.id)).all()
    assert [tuple(s) for s in scans] == [(VALID, staff_id), ("ALREADY_USED", staff_id), ("MALFORMED", staff_id)]


@pytest.mark.app_config(STATS_REFRESH_DELAY_SECONDS=1.0)
def test_check_ins_replace_the_statistics_version_together_a_moment_later_and_other_changes_at_once(
        app, customer, staff, monkeypatch):
    """STATS_REFRESH_DELAY_SECONDS: valid scans ask for a version bump that a background thread
    makes a moment later, one for all the scans of that moment; an order paid outside the shop
    (an import, say) still bumps at once."""
    from app.admin import dashboard

    payloads = [ticket_payload(t) for t in tickets_of(customer, 6)]
    _, token = create_scanner_token(db.session, staff, name="Gate", now=datetime.now(UTC), valid_days=1, max_tokens=1)
    bumps = []
    real_bump = dashboard.bump_stats_version
    monkeypatch.setattr(dashboard, "bump_stats_version", lambda c: (bumps.append(1), real_bump(c))[1])
    before = stats_version(cache)
    assert scan_by_token(app, token, payloads[0]).json["verdict"] == VALID
    assert bumps == [] and stats_version(cache) == before  # not in the scan's request
    for payload in payloads[1:]:
        assert scan_by_token(app, token, payload).json["verdict"] == VALID
    assert wait_for(lambda: stats_version(cache) != before)
    assert wait_for(lambda: not app.extensions["guichet_stats_bump_soon"]._pending.is_set())
    assert 1 <= len(bumps) < len(payloads)

    before = stats_version(cache)
    make_paid_order(customer, (OfferFactory(), 1))  # not a customer's payment: at once
    assert stats_version(cache) != before and len(bumps) > 1


def test_a_replaced_code_never_takes_the_ticket(app, customer, staff):
    """The digest is checked in the UPDATE's WHERE: nothing to roll back, the ticket stays unused
    and only the refusal is recorded; the reissued code then checks it in."""
    ticket, = tickets_of(customer)
    old_payload, ticket_id, staff_id = ticket_payload(ticket), ticket.id, staff.id
    rotate_user_key(db.session, customer, actor_id=None, now=datetime.now(UTC))
    db.session.commit()
    with WireTrace(db.engine).recording() as wire:
        result = scan(old_payload, staff_id)
    assert result.verdict == KEY_MISMATCH and result.ticket_id == ticket_id
    assert not {"BEGIN", "ROLLBACK", "COMMIT"} & set(wire.sql()), wire.messages()
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket.checked_in_at is None and ticket.checked_in_by_id is None
    assert db.session.scalars(sa.select(CheckIn.verdict)).all() == [KEY_MISMATCH]
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.type == "check_in")) == 0

    assert scan(ticket_payload(ticket), staff_id).verdict == VALID
    assert db.session.scalars(sa.select(CheckIn.verdict).order_by(CheckIn.id)).all() == [KEY_MISMATCH, VALID]


def test_the_connection_leaves_autocommit_when_it_goes_back_to_the_pool(app, customer, staff):
    """The next user of the pooled connection gets transactions again: a rollback undoes."""
    ticket, other = tickets_of(customer, 2)
    payload, staff_id, other_id = ticket_payload(ticket), staff.id, other.id
    db.session.commit()
    with WireTrace(db.engine).recording() as wire:
        assert scan(payload, staff_id).verdict == VALID
    assert wire.connections and all(not c.autocommit for c in wire.connections.values())
    db.session.execute(sa.update(Ticket).where(Ticket.id == other_id).values(holder_name="Changed"))
    db.session.rollback()
    assert db.session.get(Ticket, other_id).holder_name != "Changed"


def test_a_session_already_in_a_transaction_keeps_it(app, customer, staff):
    """E.g. a request that read something first: the scan joins its transaction and commits it. (The
    reads ran in autocommit, app/db_late_begin.py, so the transaction begins with the scan.)"""
    ticket, = tickets_of(customer)  # leaves the session's transaction open
    payload, staff_id, ticket_id = ticket_payload(ticket), staff.id, ticket.id
    with WireTrace(db.engine).recording() as wire:
        wire.follow(db.session.connection())
        assert scan(payload, staff_id).verdict == VALID
    assert wire.sql() == ["BEGIN", "WITH", "COMMIT"], wire.messages()
    assert db.session.get(Ticket, ticket_id).checked_in_at is not None
