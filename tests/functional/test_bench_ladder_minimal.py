"""The check-in ladder's "minimal" rung (bench/ladder_app.py) does all the work of a valid scan,
so its figures bound what any version of the check-in API can reach: the token and its owner
are checked, the double-key digest too, and the ticket, the audit event and the scan record are
written, in its one hand-written statement. PostgreSQL only, like the bench."""
from __future__ import annotations

import importlib
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from app.extensions import db
from app.models import AuditEvent, CheckIn, Ticket
from app.services.scanner_tokens import create_scanner_token, revoke_scanner_token
from app.services.tickets import rotate_user_key
from app.tickets.documents import ticket_payload
from app.tickets.keys import signing_key
from bench.common import close_thread_connection
from tests.conftest import TEST_DATABASE_URL
from tests.factories import OfferFactory, UserFactory, make_paid_order

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="set TEST_DATABASE_URL: the bench runs on PostgreSQL")
API = "/tickets/api/check-in"


@pytest.fixture
def minimal_rung(app, monkeypatch):
    pem = signing_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()
    monkeypatch.setenv("LADDER_RUNG", "minimal")
    monkeypatch.setenv("DATABASE_URL", app.config["SQLALCHEMY_DATABASE_URI"])
    monkeypatch.setenv("TICKET_SIGNING_KEY", pem)
    monkeypatch.delitem(sys.modules, "bench.ladder_app", raising=False)
    module = importlib.import_module("bench.ladder_app")
    yield module.app.test_client()
    close_thread_connection()


def test_the_minimal_rung_does_a_valid_scans_whole_work(app, minimal_rung):
    customer, staff = UserFactory(), UserFactory(role="staff")
    order = make_paid_order(customer, (OfferFactory(), 3))
    first, second, replaced = db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id)
                                                 .order_by(Ticket.id)).all()
    payloads = [ticket_payload(t) for t in (first, second, replaced)]
    token_row, token = create_scanner_token(db.session, staff, name="Gate", now=datetime.now(UTC), valid_days=1,
                                            max_tokens=2)
    ids, staff_id, token_id = [first.id, second.id, replaced.id], staff.id, token_row.id
    db.session.commit()

    def scan(payload: str, bearer: str = token):
        return minimal_rung.post(API, json={"payload": payload}, headers={"Authorization": f"Bearer {bearer}"})

    answer = scan(payloads[0])
    assert answer.status_code == 200 and answer.json["verdict"] == "VALID"
    assert answer.json["ticket"]["number"] == first.number
    assert scan(payloads[0]).json["verdict"] == "NOT_TAKEN"  # already used
    assert scan(payloads[1], "gchs_" + "x" * 43).status_code == 401
    rotate_user_key(db.session, customer, actor_id=None, now=datetime.now(UTC))
    db.session.commit()
    assert scan(payloads[2]).json["verdict"] == "NOT_TAKEN"  # the digest of a replaced code
    revoke_scanner_token(db.session, token_id, user_id=staff_id, now=datetime.now(UTC))
    assert scan(payloads[1]).status_code == 401

    db.session.expire_all()
    checked = {t.id: t.checked_in_by_id for t in db.session.scalars(sa.select(Ticket).where(Ticket.id.in_(ids)))}
    assert checked == {ids[0]: staff_id, ids[1]: None, ids[2]: None}
    assert db.session.scalars(sa.select(CheckIn.ticket_id)).all() == [ids[0]]
    audit = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == "check_in")).one()
    assert (audit.actor_id, audit.details["ticket_id"]) == (staff_id, ids[0])
