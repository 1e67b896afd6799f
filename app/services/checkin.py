"""Checking a scanned QR code at the gate.

`check_in` is the one verification used by the scan page and the JSON API; its first step,
`authenticate`, is also the offline verifier (public key only, no database). The checks run in
the order of SPEC §6, each failure with its own verdict:

    MALFORMED       not a readable Guichet payload
    FORGED          the Ed25519 signature does not verify with our public key
    UNKNOWN_TICKET  signed by us, but no such ticket (e.g. a deleted order)
    KEY_MISMATCH    the digest is not SHA-256(owner's current user key ‖ purchase key):
                    the code was replaced when the owner's key was rotated
    VOID            the ticket was cancelled
    ALREADY_USED    the ticket was checked in before
    VALID           let them in; the ticket is now checked in

Staff see four answers (VALID, ALREADY USED, VOID, FORGED / UNKNOWN): KEY_MISMATCH shows as
VOID, because the code is genuine (the offline verifier says AUTHENTIC) but has been replaced,
and the person at the gate may well be the owner holding an old printout.

Checking in is one conditional UPDATE (`... WHERE checked_in_at IS NULL AND voided_at IS NULL
RETURNING ...`): of any number of simultaneous scans of one ticket, exactly one changes a row and
is VALID. On PostgreSQL the digest check is in that WHERE too, so the UPDATE (with the audit event
and the scan record) is the whole valid scan, one statement run in autocommit: one round trip, no
BEGIN or COMMIT. Elsewhere the digest is checked in Python after the UPDATE, and a replaced code
(KEY_MISMATCH) rolls it back. The other verdicts read the ticket after the UPDATE missed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import chain

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session, aliased, scoped_session

from app.models import AuditEvent, CheckIn, Event, Offer, Ticket, User
from app.models.base import utcnow
from app.services.signing import (
    AUTHENTIC,
    DIGEST_PREFIX_BYTES,
    FORGED,
    MALFORMED,
    ParsedPayload,
    PayloadError,
    digest_matches,
    double_key_digest,
    parse_payload,
    verify_signature,
)

UNKNOWN_TICKET = "UNKNOWN_TICKET"
KEY_MISMATCH = "KEY_MISMATCH"
VOID = "VOID"
ALREADY_USED = "ALREADY_USED"
VALID = "VALID"
CHECK_IN_AUDIT = "check_in"  # an audit type (app/services/audit.py AUDIT_TYPES)
VERDICTS = (MALFORMED, FORGED, UNKNOWN_TICKET, KEY_MISMATCH, VOID, ALREADY_USED, VALID)

# The four answers staff see (SPEC §6), and the verdicts behind each.
ANSWER_VALID, ANSWER_USED, ANSWER_VOID, ANSWER_FORGED = "valid", "used", "void", "forged"
ANSWER_OF = {
    VALID: ANSWER_VALID,
    ALREADY_USED: ANSWER_USED,
    VOID: ANSWER_VOID,
    KEY_MISMATCH: ANSWER_VOID,
    UNKNOWN_TICKET: ANSWER_FORGED,
    FORGED: ANSWER_FORGED,
    MALFORMED: ANSWER_FORGED,
}
ANSWER_LABELS = {
    ANSWER_VALID: "VALID",
    ANSWER_USED: "ALREADY USED",
    ANSWER_VOID: "VOID",
    ANSWER_FORGED: "FORGED / UNKNOWN",
}


@dataclass(frozen=True)
class ScanResult:
    """The answer to one scan, as plain values (the page and the JSON API both show it)."""

    verdict: str
    scanned_at: datetime
    ticket_id: int | None = None
    ticket_number: str | None = None
    holder_name: str | None = None
    offer_name: str | None = None
    persons: int | None = None
    event_title: str | None = None
    event_starts_at: datetime | None = None
    checked_in_at: datetime | None = None
    checked_in_by: str | None = None

    @property
    def answer(self) -> str:
        return ANSWER_OF[self.verdict]

    @property
    def label(self) -> str:
        return ANSWER_LABELS[self.answer]

    @property
    def is_valid(self) -> bool:
        return self.verdict == VALID

    def as_json(self) -> dict:
        ticket = None
        if self.ticket_id is not None:
            ticket = {
                "id": self.ticket_id,
                "number": self.ticket_number,
                "holder": self.holder_name,
                "offer": self.offer_name,
                "persons": self.persons,
                "event": self.event_title,
                "starts_at": _iso(self.event_starts_at),
            }
        return {
            "verdict": self.verdict,
            "answer": self.answer,
            "label": self.label,
            "ticket": ticket,
            "checked_in_at": _iso(self.checked_in_at),
            "checked_in_by": self.checked_in_by,
            "scanned_at": _iso(self.scanned_at),
        }


def authenticate(public_key: Ed25519PublicKey, text: str) -> tuple[str, ParsedPayload | None]:
    """(AUTHENTIC, parsed), (MALFORMED, None) or (FORGED, None), from the public key alone."""
    try:
        parsed = parse_payload(text)
    except PayloadError:
        return MALFORMED, None
    if not verify_signature(public_key, parsed):
        return FORGED, None
    return AUTHENTIC, parsed


def verify_offline(public_key: Ed25519PublicKey, text: str) -> str:
    """AUTHENTIC, MALFORMED or FORGED: what a scanner without network can know."""
    return authenticate(public_key, text)[0]


def check_in(session: Session, public_key: Ed25519PublicKey, text: str, *, staff_id: int | None,
             now: datetime, ip_address: str | None = None) -> ScanResult:
    """Verify a scanned payload and, when it is admissible, check the ticket in. Commits.

    Every scan is recorded in `check_ins` with its verdict; a successful one is also audited.
    A valid scan is the conditional UPDATE … RETURNING (which also reads the offer and event) and
    the audit and scan-record INSERTs: on PostgreSQL one autocommitted statement that also checks
    the digest, elsewhere three statements and a commit.
    """
    verdict, parsed = authenticate(public_key, text)
    if parsed is None:
        return _record(session, ScanResult(verdict, now), staff_id=staff_id, event_id=None)
    taken, recorded = _take_ticket(session, parsed.ticket_id, digest_prefix=parsed.digest_prefix,
                                   staff_id=staff_id, now=now, ip_address=ip_address)
    if taken is not None:
        result = _result(VALID, now, taken, checked_in_at=now, checked_in_by=None)
        if recorded:  # PostgreSQL: digest, check-in, audit and scan record were one statement
            session.commit()  # no round trip in autocommit; the session's listeners see the scan
            return result
        if digest_matches(parsed, double_key_digest(taken.user_key, taken.purchase_key)):
            session.execute(_INSERT_AUDIT, _audit_values(taken, staff_id=staff_id, ip_address=ip_address))
            return _record(session, result, staff_id=staff_id, event_id=taken.event_id)
        session.rollback()  # a replaced code (rotated user key): the ticket stays unused, nothing recorded
        result = _result(KEY_MISMATCH, now, taken, checked_in_at=None, checked_in_by=None)
        return _record(session, result, staff_id=staff_id, event_id=taken.event_id)
    row = _ticket_row(session, parsed.ticket_id)  # unknown, void, used, or someone else won the race
    if row is None:
        return _record(session, ScanResult(UNKNOWN_TICKET, now), staff_id=staff_id, event_id=None)
    verdict = _judge(parsed, row) or ALREADY_USED
    result = _result(verdict, now, row, checked_in_at=row.checked_in_at,
                     checked_in_by=_staff_name(row) if verdict == ALREADY_USED else None)
    return _record(session, result, staff_id=staff_id, event_id=row.event_id)


def _judge(parsed: ParsedPayload, row) -> str | None:
    """The verdict for an authentic payload and its ticket row, or None when admissible."""
    if not digest_matches(parsed, double_key_digest(row.user_key, row.purchase_key)):
        return KEY_MISMATCH
    if row.voided_at is not None:
        return VOID
    if row.checked_in_at is not None:
        return ALREADY_USED
    return None


# Core statements built once (no per-scan statement building or ORM flush: the check-in API
# is the hottest write path). They still run through the Session, so its listeners see them:
# the statistics cache is invalidated by the UPDATE of `tickets` or the INSERT into `check_ins`.
_tickets, _users, _offers, _events = Ticket.__table__, User.__table__, Offer.__table__, Event.__table__


def _of_ticket(column, foreign_key: str, label: str):
    """`(SELECT column FROM its table WHERE id = tickets.<foreign_key>)`, for RETURNING (SQLite's
    RETURNING cannot name a joined table). The outer column is written out in full because
    SQLAlchemy drops table names inside RETURNING on SQLite, where `id = user_id` could then
    resolve both names to the inner table."""
    inner = column.table
    return (sa.select(column).where(inner.c.id == sa.literal_column(f"tickets.{foreign_key}"))
            .scalar_subquery().label(label))


# The atomic check-in: of simultaneous scans, exactly one changes the row and gets it back.
def _conditional_take(*conditions):
    return (
        sa.update(_tickets)
        .where(_tickets.c.id == sa.bindparam("ticket_id"), _tickets.c.checked_in_at.is_(None),
               _tickets.c.voided_at.is_(None), *conditions)
        .values(checked_in_at=sa.bindparam("now", type_=_tickets.c.checked_in_at.type),
                checked_in_by_id=sa.bindparam("staff_id", type_=sa.Integer))
    )


_TICKET_DETAILS = (
    _tickets.c.id, _tickets.c.number, _tickets.c.user_id, _tickets.c.event_id, _tickets.c.persons,
    _tickets.c.holder_name,
    _of_ticket(_offers.c.name, "offer_id", "offer_name"),
    _of_ticket(_events.c.title, "event_id", "event_title"),
    _of_ticket(_events.c.starts_at, "event_id", "event_starts_at"),
)
# SQLite: the keys come back for the digest check in Python (a mismatch rolls the UPDATE back).
_TAKE_TICKET = _conditional_take().returning(
    *_TICKET_DETAILS, _tickets.c.purchase_key, _of_ticket(_users.c.user_key, "user_id", "user_key"))
# PostgreSQL: SHA-256(owner's current user key ‖ purchase key) must start with the scanned prefix,
# so a replaced code changes no row. Not a constant-time comparison, but the prefix is covered by
# the signature checked before: a scanner cannot vary it to time the comparison.
_OWNER_DIGEST_PREFIX = (
    sa.select(sa.func.substring(sa.func.sha256(_users.c.user_key.concat(_tickets.c.purchase_key)),
                                sa.literal_column("1"), sa.literal_column(str(DIGEST_PREFIX_BYTES))))
    .where(_users.c.id == _tickets.c.user_id)
    .scalar_subquery()
)
_TAKE_CURRENT_CODE = _conditional_take(
    _OWNER_DIGEST_PREFIX == sa.bindparam("digest_prefix", type_=sa.LargeBinary)).returning(*_TICKET_DETAILS)
_audit_events, _check_ins = AuditEvent.__table__, CheckIn.__table__
_INSERT_AUDIT = sa.insert(_audit_events)
_INSERT_SCAN = sa.insert(_check_ins)
_MAX_ID = 2**63 - 1  # a signed id we never issued; beyond BIGINT on PostgreSQL
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}  # reset when the connection goes back to the pool


def _take_and_record_statement():
    """PostgreSQL: the conditional UPDATE (digest included) as a data-modifying WITH, feeding the
    audit event and the VALID scan record, in one statement (and one round trip) instead of three.
    It returns the UPDATE's row (nothing when it changed no row, and then nothing was inserted
    either).

    The statistics listener (app/services/stats.py) sees an INSERT into `check_ins`, one of the
    tables it watches, not the UPDATE inside; tests check that a valid scan still makes the
    cached statistics stale."""
    taken = _TAKE_CURRENT_CODE.cte("taken")
    details = sa.func.json_build_object(*chain.from_iterable(
        (sa.literal_column(f"'{name}'"), column) for name, column in
        (("ticket_id", taken.c.id), ("ticket_number", taken.c.number), ("event_id", taken.c.event_id),
         ("persons", taken.c.persons))))
    audit = sa.insert(_audit_events).from_select(
        ["type", "actor_id", "subject_user_id", "ip_address", "details", "created_at"],
        sa.select(sa.literal(CHECK_IN_AUDIT), sa.bindparam("staff_id", type_=sa.Integer), taken.c.user_id,
                  sa.bindparam("ip_address", type_=_audit_events.c.ip_address.type), details,
                  sa.bindparam("created_at", type_=_audit_events.c.created_at.type)),
    ).cte("audit")
    return (
        sa.insert(_check_ins).from_select(
            ["ticket_id", "event_id", "staff_id", "verdict", "scanned_at"],
            sa.select(taken.c.id, taken.c.event_id, sa.bindparam("staff_id", type_=sa.Integer), sa.literal(VALID),
                      sa.bindparam("now", type_=_check_ins.c.scanned_at.type)))
        .returning(*(sa.select(column).scalar_subquery().label(column.key) for column in taken.c))
        .add_cte(audit)
    )


_TAKE_AND_RECORD = _take_and_record_statement()


def _take_ticket(session: Session, ticket_id: int, *, digest_prefix: bytes, staff_id: int | None,
                 now: datetime, ip_address: str | None) -> tuple[sa.Row | None, bool]:
    """Check the ticket in if it is neither used nor void: (its row, whether the audit event and
    the VALID scan record were written too), or (None, False). On SQLite the digest is not checked
    yet and nothing is committed.

    PostgreSQL: when the session holds no transaction yet (a scanner-token call), its connection is
    put in autocommit, so the one statement is one round trip, without BEGIN or COMMIT. It still
    goes through the session (its listeners see it, its commit() runs them); the refusals that
    follow a miss are then single statements too. A session already in a transaction keeps it."""
    if ticket_id > _MAX_ID:
        return None, False
    params = {"ticket_id": ticket_id, "now": now, "staff_id": staff_id}
    if session.get_bind().dialect.name != "postgresql":
        return session.execute(_TAKE_TICKET, params).one_or_none(), False
    if not _in_transaction(session):
        session.connection(execution_options=_AUTOCOMMIT)
    params |= {"digest_prefix": digest_prefix, "ip_address": ip_address,
               "created_at": utcnow()}  # created_at: the audit default's clock
    taken = session.execute(_TAKE_AND_RECORD, params).one_or_none()
    return taken, taken is not None


def _in_transaction(session: Session | scoped_session) -> bool:
    # scoped_session (Flask-SQLAlchemy's db.session) does not proxy in_transaction()
    return (session() if isinstance(session, scoped_session) else session).in_transaction()


def _audit_values(row, *, staff_id: int | None, ip_address: str | None) -> dict:
    """The `check_in` audit event (what audit.record would add), as INSERT values."""
    return {"type": CHECK_IN_AUDIT, "actor_id": staff_id, "subject_user_id": row.user_id, "ip_address": ip_address,
            "details": {"ticket_id": row.id, "ticket_number": row.number, "event_id": row.event_id,
                        "persons": row.persons}}


_checker = aliased(User, name="checker")
_TICKET_ROW = (
    sa.select(
        Ticket.id, Ticket.number, Ticket.user_id, Ticket.event_id, Ticket.persons, Ticket.holder_name,
        Ticket.purchase_key, Ticket.voided_at, Ticket.checked_in_at, User.user_key,
        Offer.name.label("offer_name"), Event.title.label("event_title"),
        Event.starts_at.label("event_starts_at"),
        _checker.first_name.label("checker_first_name"), _checker.last_name.label("checker_last_name"),
    )
    .join(User, User.id == Ticket.user_id)
    .join(Offer, Offer.id == Ticket.offer_id)
    .join(Event, Event.id == Ticket.event_id)
    .outerjoin(_checker, _checker.id == Ticket.checked_in_by_id)
    .where(Ticket.id == sa.bindparam("ticket_id"))
)


def _ticket_row(session: Session, ticket_id: int):
    if ticket_id > _MAX_ID:
        return None
    return session.execute(_TICKET_ROW, {"ticket_id": ticket_id}).one_or_none()


def _staff_name(row) -> str | None:
    if row.checker_first_name is None and row.checker_last_name is None:
        return None
    return f"{row.checker_first_name or ''} {row.checker_last_name or ''}".strip()


def _result(verdict: str, now: datetime, row, *, checked_in_at, checked_in_by) -> ScanResult:
    return ScanResult(
        verdict=verdict, scanned_at=now, ticket_id=row.id, ticket_number=row.number,
        holder_name=row.holder_name, offer_name=row.offer_name, persons=row.persons,
        event_title=row.event_title, event_starts_at=row.event_starts_at,
        checked_in_at=checked_in_at, checked_in_by=checked_in_by,
    )


def _record(session: Session, result: ScanResult, *, staff_id: int | None, event_id: int | None) -> ScanResult:
    session.execute(_INSERT_SCAN, {"ticket_id": result.ticket_id, "event_id": event_id, "staff_id": staff_id,
                                   "verdict": result.verdict, "scanned_at": result.scanned_at})
    session.commit()
    return result


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
