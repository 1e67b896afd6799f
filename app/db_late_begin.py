"""PostgreSQL: a transaction begins at its first statement that writes or locks, not at its first read.

psycopg sends BEGIN as a round trip of its own before a transaction's first statement, and the
session ends every request with COMMIT or ROLLBACK, another one. A page that only reads paid three
round trips for one SELECT: 96–108 µs of the app's CPU and 82–88 µs of PostgreSQL's per read on
this machine, against 40–43 and 30–33 µs in autocommit (bench/transaction_trips.py).

Under READ COMMITTED, PostgreSQL's default and the only level the app uses, every statement takes
a snapshot of its own, inside a transaction or not: a read gives the same rows in autocommit. So
each transaction starts in autocommit, its reads run alone, and the connection leaves autocommit
(psycopg then sends BEGIN) just before the first statement that needs a transaction: anything but
a plain SELECT, a SELECT that locks rows (… FOR UPDATE / SHARE), and a read through a server-side
cursor (DECLARE needs a transaction). The reads before it saw committed data, as they would have
inside it. A transaction that only read has nothing to end: psycopg sends neither COMMIT nor
ROLLBACK on an idle connection, and keeps its prepared statements (a ROLLBACK forgets them).

A transaction that locked rows without writing still ends with COMMIT at the end of a request that
raised nothing (it changed nothing, so COMMIT and ROLLBACK do the same on the server, and COMMIT
keeps the prepared statements). Anything that wrote, failed or left changes pending in the session
still ends with ROLLBACK.

Connections put in autocommit on purpose (`isolation_level="AUTOCOMMIT"`, the scanner API's
check-in) are left alone. A service whose whole change is one statement can say so (`only_write`):
that statement then runs in autocommit too, one round trip where BEGIN, it and COMMIT were three.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import re
from typing import TYPE_CHECKING

import psycopg
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy.orm import Session

if TYPE_CHECKING:  # services import this module, and services never import Flask
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

LATE = "guichet_late_begin"  # connection-record info: autocommit was set by us, until the first write
WROTE = "guichet_transaction_wrote"  # … and: the transaction has written (reset when one begins)
ALONE = "guichet_write_alone"  # … and: the next write is the transaction's only one, left in autocommit
CONNECTED = "guichet_connection"  # session info: the connection its transaction holds, once it has one
_LOCKING = re.compile(r"\bFOR\s+(?:UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b", re.IGNORECASE)
_IDLE = pq.TransactionStatus.IDLE
log = logging.getLogger(__name__)


@contextlib.contextmanager
def only_write(session: Session):
    """Run the one statement inside as the transaction's only write, in autocommit: one round trip,
    without BEGIN and COMMIT (a cart's one changed line). The caller commits after it as usual,
    which then sends nothing. Anywhere else (SQLite, a transaction that has begun, changes pending
    in the session) the statement simply joins the transaction."""
    connection = session.connection()
    info = connection.info
    alone = bool(info.get(LATE)) and not (session.new or session.dirty or session.deleted)
    if alone:
        info[ALONE] = True
    try:
        yield
    finally:
        info.pop(ALONE, None)


@functools.lru_cache(maxsize=2048)
def locks_rows(select: str) -> bool:
    """Whether a SELECT takes row locks, which last until the transaction ends. (The engine's
    statements are a few thousand distinct strings at most: their checks are cached.)"""
    return _LOCKING.search(select) is not None


def begin_now(connection: sa.Connection, *, writes: bool = True) -> None:
    """Leave autocommit before a statement that needs the transaction; psycopg sends BEGIN with it.
    Call it for a statement run on the driver directly, which the engine's events do not see."""
    info = connection.info
    if writes:
        info[WROTE] = True
    if info.get(LATE):
        info[LATE] = False
        driver = connection.connection.driver_connection
        if driver.pgconn.transaction_status == _IDLE:
            driver.autocommit = False


# A session's transaction begins before it has a connection (adding the signed-in user to the
# session begins one): at teardown, `session.connection()` would check one out of the pool, and
# begin it, only to find nothing to end. The session says when its transaction gets one.
def _note_connection(session: Session, _transaction, connection: sa.Connection) -> None:
    session.info[CONNECTED] = connection


def _forget_connection(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(CONNECTED, None)


def install_late_begin(app: Flask, db: SQLAlchemy) -> None:
    """Start each transaction of the engine in autocommit and begin it at its first write or lock;
    end one that only locked with COMMIT at app-context teardown. Call after `db.init_app(app)`
    (teardown functions run in reverse order of registration, so ours runs before Flask-SQLAlchemy
    removes the session), in an app context, for a psycopg engine. Transactions at another isolation
    level than READ COMMITTED (the server's default, or one asked for) begin as usual."""
    engine = db.engine

    @sa.event.listens_for(engine, "begin")
    def _start_in_autocommit(connection: sa.Connection) -> None:
        info = connection.info
        info[WROTE] = False
        level = connection.get_execution_options().get("isolation_level", connection.default_isolation_level)
        if level != "READ COMMITTED":  # in autocommit on purpose, or a level where a read's snapshot lasts
            info[LATE] = False
            return
        driver = connection.connection.driver_connection
        if driver.autocommit:  # ours, left on by a transaction that only read
            info[LATE] = True
        elif driver.pgconn.transaction_status == _IDLE:
            driver.autocommit = True
            info[LATE] = True

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _begin_before_first_write(connection, cursor, statement: str, _parameters, _context, _executemany) -> None:
        if statement.lstrip()[:6].upper() != "SELECT":
            info = connection.info
            if info.pop(ALONE, False) and info.get(LATE):
                info[WROTE] = True  # committed by itself; a second write would begin a transaction
                return
            begin_now(connection)
        elif isinstance(cursor, psycopg.ServerCursor) or locks_rows(statement):  # DECLARE needs a transaction
            begin_now(connection, writes=False)

    for name, listener in (("after_begin", _note_connection), ("after_transaction_end", _forget_connection)):
        if not sa.event.contains(db.session, name, listener):  # one Session class for every app
            sa.event.listen(db.session, name, listener)

    @app.teardown_appcontext
    def _commit_if_only_locked(error: BaseException | None) -> None:
        if error is not None or not db.session.registry.has():
            return
        session = db.session()
        transaction = session.get_transaction()
        if transaction is None or not transaction.is_active or session.new or session.dirty or session.deleted:
            return
        connection = session.info.get(CONNECTED)
        if connection is None or connection.info.get(WROTE, True):  # no statement ran: nothing to end
            return
        driver = connection.connection.driver_connection
        if driver.pgconn.transaction_status == _IDLE:
            return  # only read, in autocommit: nothing to end
        # The driver's COMMIT, not the session's: nothing is pending, and the session's commit
        # (events, expiry) costs more. The session's rollback when Flask-SQLAlchemy removes it then
        # finds no transaction left in psycopg: nothing is sent.
        try:
            driver.commit()
        except psycopg.Error as failure:  # the connection dropped, say: the removal's rollback copes
            log.warning("ending a transaction that only locked with COMMIT failed: %s", type(failure).__name__)
