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

`check_in_by_token` is the scanner apps' API: on PostgreSQL the bearer token's check is part of
that one statement too, so a valid scan costs one round trip and no Redis command (the
statistics bump that follows is shared by the scans of a moment: app/admin/dashboard.py).
Those statements are run by psycopg itself (`_DriverStatement`), measured in bench/README.md.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from psycopg.rows import namedtuple_row
from sqlalchemy.orm import Session, aliased, scoped_session

from app.db_late_begin import begin_now
from app.models import AuditEvent, CheckIn, Event, Offer, Ticket, User
from app.models.base import utcnow
from app.services.scanner_tokens import (
    TOUCH_EVERY,
    touch_statement,
    usable_token_query,
    well_formed_token_hash,
)
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
from app.services.stats import note_stats_change, stats_changed_outside

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
    return _check_in_authenticated(session, verdict, parsed, staff_id=staff_id, now=now, ip_address=ip_address)


def check_in_by_token(session: Session, public_key: Ed25519PublicKey, text: str, *, token: str | None,
                      now: datetime, ip_address: str | None = None,
                      staff_id_for_token: Callable[[], int | None]) -> ScanResult | None:
    """`check_in` for the staff member a scanner app's bearer token acts for; None, with nothing
    recorded, when the token is not usable (app/services/scanner_tokens.py).

    PostgreSQL, an authentic code and no transaction open yet (the scanner API): the token is
    checked inside the check-in's one statement, run in autocommit on a pooled connection of its
    own, so a valid scan is one round trip in all and never touches the session, and a
    revocation counts from its commit. Otherwise `staff_id_for_token()` (the check with the
    shared cache, app/tickets/token_cache.py) says whom the token acts for."""
    token_hash = well_formed_token_hash(token)
    if token_hash is None:
        return None
    verdict, parsed = authenticate(public_key, text)
    if parsed is not None and _one_statement_scan(session, parsed.ticket_id):
        with _pooled_autocommit_connection(session) as connection:
            row = _TAKE_AND_RECORD_BY_TOKEN.first_row_on(connection, session.get_bind().dialect, {
                **_take_params(parsed, staff_id=None, now=now, ip_address=ip_address),
                "bearer_token_hash": token_hash, "stale_before": now - TOUCH_EVERY})
        if row.staff_id is None:
            return None
        if row.id is not None:
            stats_changed_outside(session, soon=True)
            return _result(VALID, now, row, checked_in_at=now, checked_in_by=None)
        session.connection(execution_options=_AUTOCOMMIT)  # the refusal's read and record: one round trip each
        return _refusal(session, parsed, staff_id=row.staff_id, now=now)
    staff_id = staff_id_for_token()
    if staff_id is None:
        return None
    return _check_in_authenticated(session, verdict, parsed, staff_id=staff_id, now=now, ip_address=ip_address)


def _check_in_authenticated(session: Session, verdict: str, parsed: ParsedPayload | None, *,
                            staff_id: int | None, now: datetime, ip_address: str | None) -> ScanResult:
    if parsed is None:
        return _record(session, ScanResult(verdict, now), staff_id=staff_id, event_id=None)
    taken, recorded = _take_ticket(session, parsed, staff_id=staff_id, now=now, ip_address=ip_address)
    if taken is not None:
        if recorded:
            return _taken_in_one_statement(session, taken, now)
        result = _result(VALID, now, taken, checked_in_at=now, checked_in_by=None)
        if digest_matches(parsed, double_key_digest(taken.user_key, taken.purchase_key)):
            session.execute(_INSERT_AUDIT, _audit_values(taken, staff_id=staff_id, ip_address=ip_address))
            return _record(session, result, staff_id=staff_id, event_id=taken.event_id)
        session.rollback()  # a replaced code (rotated user key): the ticket stays unused, nothing recorded
        result = _result(KEY_MISMATCH, now, taken, checked_in_at=None, checked_in_by=None)
        return _record(session, result, staff_id=staff_id, event_id=taken.event_id)
    return _refusal(session, parsed, staff_id=staff_id, now=now)


def _taken_in_one_statement(session: Session, row, now: datetime) -> ScanResult:
    """PostgreSQL: digest, check-in, audit event and scan record were one statement."""
    note_stats_change(session, soon=True)  # a statement the session's listeners do not read
    session.commit()  # no round trip in autocommit; runs the session's listeners
    return _result(VALID, now, row, checked_in_at=now, checked_in_by=None)


def _refusal(session: Session, parsed: ParsedPayload, *, staff_id: int | None, now: datetime) -> ScanResult:
    """The conditional UPDATE changed nothing: record and return why."""
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
def _conditional_take(*conditions, staff=None, now=None):
    return (
        sa.update(_tickets)
        .where(_tickets.c.id == sa.bindparam("ticket_id"), _tickets.c.checked_in_at.is_(None),
               _tickets.c.voided_at.is_(None), *conditions)
        .values(checked_in_at=sa.bindparam("now", type_=_tickets.c.checked_in_at.type) if now is None else now,
                checked_in_by_id=sa.bindparam("staff_id", type_=sa.Integer) if staff is None else staff)
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
_audit_events, _check_ins = AuditEvent.__table__, CheckIn.__table__
_INSERT_AUDIT = sa.insert(_audit_events)
_INSERT_SCAN = sa.insert(_check_ins)
_MAX_ID = 2**63 - 1  # a signed id we never issued; beyond BIGINT on PostgreSQL
_DRIVER_DATETIME = sa.DateTime(timezone=True)  # bound as given (aware): see _DriverStatement
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}  # reset when the connection goes back to the pool


def _take_and_record_statement(*, by_token: bool):
    """PostgreSQL: the conditional UPDATE (digest included) as a data-modifying WITH, feeding the
    audit event and the VALID scan record, in one statement (and one round trip) instead of three.

    It returns one row: `staff_id`, then the taken ticket's details, all NULL when no row changed
    (and then nothing was inserted either). The staff member is the bind parameter `staff_id`,
    or, `by_token`, the owner of the usable scanner token hashed as `bearer_token_hash`
    (scanner_tokens.usable_token_query), whose last use is refreshed in the same statement; with
    no such token nothing changes and `staff_id` is NULL.

    No bind parameter is named after a column of a table the statement updates: SQLAlchemy would
    make it part of that UPDATE's SET clause."""
    now = sa.bindparam("now", type_=_DRIVER_DATETIME)
    side_effects = []
    if by_token:
        caller = usable_token_query(now).cte("caller")
        staff = sa.select(caller.c.user_id).scalar_subquery()
        stale_before = sa.bindparam("stale_before", type_=_DRIVER_DATETIME)
        side_effects.append(touch_statement(sa.select(caller.c.token_id).scalar_subquery(), now, stale_before)
                            .cte("touch"))
        caller_conditions = [sa.exists(sa.select(caller.c.token_id))]
    else:
        staff = sa.bindparam("staff_id", type_=sa.Integer)
        caller_conditions = []
    taken = _conditional_take(_OWNER_DIGEST_PREFIX == sa.bindparam("digest_prefix", type_=sa.LargeBinary),
                              *caller_conditions, staff=staff, now=now).returning(*_TICKET_DETAILS).cte("taken")
    details = sa.func.json_build_object(*chain.from_iterable(
        (sa.literal_column(f"'{name}'"), column) for name, column in
        (("ticket_id", taken.c.id), ("ticket_number", taken.c.number), ("event_id", taken.c.event_id),
         ("persons", taken.c.persons))))
    side_effects.append(sa.insert(_audit_events).from_select(
        ["type", "actor_id", "subject_user_id", "ip_address", "details", "created_at"],
        sa.select(sa.literal(CHECK_IN_AUDIT), staff, taken.c.user_id,
                  sa.bindparam("ip_address", type_=_audit_events.c.ip_address.type), details,
                  sa.bindparam("audit_created_at", type_=_DRIVER_DATETIME)),
    ).cte("audit"))
    side_effects.append(sa.insert(_check_ins).from_select(
        ["ticket_id", "event_id", "staff_id", "verdict", "scanned_at"],
        sa.select(taken.c.id, taken.c.event_id, staff, sa.literal(VALID), now)).cte("scan"))
    return (sa.select(staff.label("staff_id"), *(sa.select(column).scalar_subquery().label(column.key)
                                                  for column in taken.c))
            .add_cte(*side_effects))


class _DriverStatement:
    """A statement compiled once per dialect and run on the session's connection by psycopg
    itself: for the check-in API, the hottest write path, SQLAlchemy's execution and result
    layers cost about as much CPU as the rest of the scan's work in the app (bench/README.md).

    Its bind parameters must need no conversion (`_DRIVER_DATETIME`, not the models'
    UTCDateTime; a unit test checks), and the session's listeners do not see it: the caller
    tells them (`note_stats_change`, or `stats_changed_outside` when it ran outside the session).
    It returns the first row as a named tuple, its datetimes in UTC."""

    def __init__(self, statement: sa.Select):
        self.statement = statement
        self._compiled: dict[type, tuple[str, dict]] = {}

    def compiled(self, dialect) -> tuple[str, dict]:
        """(SQL text, default parameters: the literals the statement carries)."""
        key = type(dialect)
        if key not in self._compiled:
            compiled = self.statement.compile(dialect=dialect)
            self._compiled[key] = (compiled.string, dict(compiled.params))
        return self._compiled[key]

    def first_row(self, connection: sa.Connection, params: dict):
        begin_now(connection)  # app/db_late_begin.py: this statement writes, unseen by the engine's events
        return self.first_row_on(connection.connection.driver_connection, connection.dialect, params)

    def first_row_on(self, driver_connection, dialect, params: dict):
        """`first_row` on a psycopg connection (compiled for `dialect`)."""
        sql, defaults = self.compiled(dialect)
        with driver_connection.cursor(row_factory=namedtuple_row) as cursor:
            row = cursor.execute(sql, defaults | params).fetchone()
        return row._replace(**{name: value.astimezone(UTC) for name, value in row._asdict().items()
                               if isinstance(value, datetime)})


_TAKE_AND_RECORD = _DriverStatement(_take_and_record_statement(by_token=False))
_TAKE_AND_RECORD_BY_TOKEN = _DriverStatement(_take_and_record_statement(by_token=True))


def _take_params(parsed: ParsedPayload, *, staff_id: int | None, now: datetime, ip_address: str | None) -> dict:
    return {"ticket_id": parsed.ticket_id, "now": now, "staff_id": staff_id, "digest_prefix": parsed.digest_prefix,
            "ip_address": ip_address, "audit_created_at": utcnow()}  # the audit default's clock


def _take_ticket(session: Session, parsed: ParsedPayload, *, staff_id: int | None, now: datetime,
                 ip_address: str | None) -> tuple[sa.Row | None, bool]:
    """Check the ticket in if it is neither used nor void: (its row, whether the audit event and
    the VALID scan record were written too), or (None, False). On SQLite the digest is not checked
    yet and nothing is committed.

    PostgreSQL: when the session holds no transaction yet (a scanner-token call), its connection is
    put in autocommit, so the one statement is one round trip, without BEGIN or COMMIT; the
    refusals that follow a miss are then single statements too. A session already in a
    transaction keeps it."""
    if parsed.ticket_id > _MAX_ID:
        return None, False
    if not _is_postgresql(session):
        params = {"ticket_id": parsed.ticket_id, "now": now, "staff_id": staff_id}
        return session.execute(_TAKE_TICKET, params).one_or_none(), False
    connection = session.connection(execution_options={} if _in_transaction(session) else _AUTOCOMMIT)
    row = _TAKE_AND_RECORD.first_row(connection, _take_params(parsed, staff_id=staff_id, now=now,
                                                              ip_address=ip_address))
    return (row, True) if row.id is not None else (None, False)


@contextmanager
def _pooled_autocommit_connection(session: Session | scoped_session):
    """A psycopg connection from the session's engine pool, in autocommit, for one statement
    outside the session: checking one out through the session and committing the session after
    took about 12 % of the instructions of a whole scan (bench/README.md). The pool's checkout
    events (the idle ping) run as usual. It goes back with transactions on again; one whose
    statement failed (perhaps broken, still in autocommit) is invalidated instead."""
    pooled = session.get_bind().raw_connection()
    connection = pooled.driver_connection
    try:
        connection.autocommit = True
        yield connection
    except BaseException:
        pooled.invalidate()  # whatever state it was left in (autocommit on), it never serves again
        raise
    else:
        connection.autocommit = False
    finally:
        pooled.close()


def _is_postgresql(session: Session | scoped_session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _one_statement_scan(session: Session | scoped_session, ticket_id: int) -> bool:
    """PostgreSQL with no transaction open yet (a scanner-token call): the valid scan is one
    statement in autocommit, one round trip without BEGIN or COMMIT. (A session already in a
    transaction keeps it: the statement joins it, and the commit sends COMMIT.)"""
    return _is_postgresql(session) and not _in_transaction(session) and ticket_id <= _MAX_ID


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
