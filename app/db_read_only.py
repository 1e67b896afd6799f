"""A request whose transaction only read ends it with COMMIT, not ROLLBACK (PostgreSQL).

psycopg forgets every statement it has prepared on a connection at each ROLLBACK (in case the
rollback undid a CREATE or DROP), and the session ends every request that did not commit with
one, as a page that only reads does. Between two such pages a statement seldom reached the 5 runs
on one connection after which psycopg prepares it, so PostgreSQL parsed and planned nearly every
statement each time: about 6 % of the machine's CPU in an on-sale rush (perf, bench/README.md).

For a transaction that changed nothing, COMMIT and ROLLBACK do the same on the server, and COMMIT
keeps psycopg's prepared statements. So a transaction is noted as written as soon as it runs
anything but a SELECT (or a statement run by psycopg itself says so: `note_written`), and at the
end of a request that raised nothing, an unwritten transaction with nothing pending in the
session is committed. Everything else still ends with ROLLBACK, as before.
"""
from __future__ import annotations

import logging

import psycopg
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

WROTE = "guichet_transaction_wrote"  # key in the connection's info, reset when a transaction begins
log = logging.getLogger(__name__)


def note_written(connection: sa.Connection) -> None:
    """For a statement run on the connection's driver directly, unseen by SQLAlchemy's events."""
    connection.info[WROTE] = True


def install_read_only_commit(app: Flask, db: SQLAlchemy) -> None:
    """Watch the engine's statements and end read-only transactions with COMMIT at app-context
    teardown. Call after `db.init_app(app)`: teardown functions run in reverse order of
    registration, so this one runs before Flask-SQLAlchemy removes the session. Needs an app
    context, for `db.engine`."""
    engine = db.engine

    @sa.event.listens_for(engine, "begin")
    def _unwritten(connection: sa.Connection) -> None:
        connection.info[WROTE] = False

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note_write(connection, _cursor, statement: str, _parameters, _context, _executemany) -> None:
        if statement.lstrip()[:6].upper() != "SELECT":  # SELECT … FOR UPDATE: its locks go either way
            connection.info[WROTE] = True

    @app.teardown_appcontext
    def _commit_if_only_read(error: BaseException | None) -> None:
        if error is not None or not db.session.registry.has():
            return
        session = db.session()
        transaction = session.get_transaction()
        if transaction is None or not transaction.is_active or session.new or session.dirty or session.deleted:
            return
        connection = session.connection()
        if connection.info.get(WROTE, True):
            return
        # The driver's COMMIT, not the session's: nothing is pending, and the session's commit
        # (events, expiry) cost a signed-in page 2.5 % more instructions. The session's rollback
        # when Flask-SQLAlchemy removes it then finds no transaction left in psycopg: nothing is sent.
        try:
            connection.connection.driver_connection.commit()
        except psycopg.Error as failure:  # the connection dropped, say: the removal's rollback copes
            log.warning("ending a read-only transaction with COMMIT failed: %s", type(failure).__name__)
