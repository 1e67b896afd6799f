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
is VALID. It runs before the digest check (one statement instead of a read and a write); a replaced
code (KEY_MISMATCH) rolls it back. The other verdicts read the ticket after the UPDATE missed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import chain

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session, aliased

from app.models import AuditEvent, CheckIn, Event, Offer, Ticket, User
from app.models.base import utcnow
from app.services.signing import (
    AUTHENTIC,
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
    A valid scan is one commit after the conditional UPDATE … RETURNING (which also reads the
    owner's key, offer and event) and the audit and scan-record INSERTs: one statement on
    PostgreSQL, three elsewhere.
    """
    verdict, parsed = authenticate(public_key, text)
    if parsed is None:
        return _record(session, ScanResult(verdict, now), staff_id=staff_id, event_id=None)
    taken, recorded = _take_ticket(session, parsed.ticket_id, staff_id=staff_id, now=now, ip_address=ip_address)
    if taken is not None:
        if digest_matches(parsed, double_key_digest(taken.user_key, taken.purchase_key)):
            result = _result(VALID, now, taken, checked_in_at=now, checked_in_by=None)
            if recorded:
                session.commit()
                return result
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
_TAKE_TICKET = (
    sa.update(_tickets)
    .where(_tickets.c.id == sa.bindparam("ticket_id"), _tickets.c.checked_in_at.is_(None),
           _tickets.c.voided_at.is_(None))
    .values(checked_in_at=sa.bindparam("now", type_=_tickets.c.checked_in_at.type),
            checked_in_by_id=sa.bindparam("staff_id", type_=sa.Integer))
    .returning(
        _tickets.c.id, _tickets.c.number, _tickets.c.user_id, _tickets.c.event_id, _tickets.c.persons,
        _tickets.c.holder_name, _tickets.c.purchase_key,
        _of_ticket(_users.c.user_key, "user_id", "user_key"),
        _of_ticket(_offers.c.name, "offer_id", "offer_name"),
        _of_ticket(_events.c.title, "event_id", "event_title"),
        _of_ticket(_events.c.starts_at, "event_id", "event_starts_at"),
    )
)
_audit_events, _check_ins = AuditEvent.__table__, CheckIn.__table__
_INSERT_AUDIT = sa.insert(_audit_events)
_INSERT_SCAN = sa.insert(_check_ins)
_MAX_ID = 2**63 - 1  # a signed id we never issued; beyond BIGINT on PostgreSQL


def _take_and_record_statement():
    """PostgreSQL: the conditional UPDATE as a data-modifying WITH, feeding the audit event and
    the VALID scan record, in one statement (and one round trip) instead of three. It returns
    the UPDATE's row (nothing when it changed no row, and then nothing was inserted either).

    The statistics listener (app/services/stats.py) sees an INSERT into `check_ins`, one of the
    tables it watches, not the UPDATE inside; tests check that a valid scan still makes the
    cached statistics stale."""
    taken = _TAKE_TICKET.cte("taken")
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


def _take_ticket(session: Session, ticket_id: int, *, staff_id: int | None, now: datetime,
                 ip_address: str | None) -> tuple[sa.Row | None, bool]:
    """Check the ticket in if it is neither used nor void (not committed yet): (its row, whether the
    VALID scan record and audit event were written too), or (None, False)."""
    if ticket_id > _MAX_ID:
        return None, False
    params = {"ticket_id": ticket_id, "now": now, "staff_id": staff_id}
    if session.connection().dialect.name != "postgresql":
        return session.execute(_TAKE_TICKET, params).one_or_none(), False
    params |= {"ip_address": ip_address, "created_at": utcnow()}  # created_at: the audit default's clock
    return session.execute(_TAKE_AND_RECORD, params).one_or_none(), True


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
