"""PostgreSQL's wire protocol, as libpq traces it: what tests count when SQLAlchemy's events cannot
tell (psycopg sends BEGIN, COMMIT and ROLLBACK as round trips of their own, and its own statements
bypass those events)."""
from __future__ import annotations

import contextlib
import re
import tempfile

import sqlalchemy as sa

_MESSAGE = re.compile(r"([FB])\t\d+\t(\w+)(.*)")  # libpq trace: direction, length, type, details


class WireTrace:
    """The protocol messages of the connections the engine hands out while recording."""

    def __init__(self, engine: sa.Engine):
        self.engine, self.connections, self._file, self._text = engine, {}, None, ""

    def follow(self, connection: sa.Connection) -> None:
        """Trace this connection too (one the session already holds); new ones are traced from
        engine_connect: after the pool's checkout (and any ping), before their first statement."""
        self._trace(connection.connection.dbapi_connection)

    def follow_checkout(self, dbapi_connection, _record, _proxy) -> None:
        """A connection taken from the pool without a SQLAlchemy Connection (the scanner API's
        check-in statement): traced after the pool's other checkout listeners (and any ping)."""
        self._trace(dbapi_connection)

    def _trace(self, dbapi_connection) -> None:
        if id(dbapi_connection) not in self.connections:
            from psycopg import pq

            dbapi_connection.pgconn.trace(self._file.fileno())
            dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            self.connections[id(dbapi_connection)] = dbapi_connection

    @contextlib.contextmanager
    def recording(self):
        with tempfile.TemporaryFile() as self._file:
            sa.event.listen(self.engine, "engine_connect", self.follow)
            sa.event.listen(self.engine, "checkout", self.follow_checkout)
            try:
                yield self
            finally:
                sa.event.remove(self.engine, "engine_connect", self.follow)
                sa.event.remove(self.engine, "checkout", self.follow_checkout)
                for dbapi_connection in self.connections.values():
                    dbapi_connection.pgconn.untrace()
                self._file.seek(0)
                self._text = self._file.read().decode("utf-8", "replace")

    def messages(self) -> list[tuple[str, str, str]]:
        """After recording: (F or B, message type, details), e.g. ("F", "Query", ' "BEGIN"'). A statement's text may
        span lines: a line that does not start a message continues the previous one."""
        messages = []
        for line in self._text.splitlines():
            start = _MESSAGE.match(line)
            if start:
                messages.append(start.groups())
            elif messages:
                side, kind, details = messages[-1]
                messages[-1] = (side, kind, f"{details}\n{line}")
        return messages

    def round_trips(self) -> int:
        return sum(1 for side, kind, _ in self.messages() if side == "B" and kind == "ReadyForQuery")

    def sql(self) -> list[str]:
        """The first word of each statement sent (simple Query, or Parse of a parameterised one)."""
        words = []
        for side, kind, details in self.messages():
            if side == "F" and kind in ("Query", "Parse"):
                text = details.split('"')[3 if kind == "Parse" else 1]  # Parse: "name" "text" …
                words.append(text.split()[0].upper())
        return words
