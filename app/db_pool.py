"""Ping a pooled database connection on checkout only after it sat idle in the pool.

`pool_pre_ping` costs one round trip per checkout, several per request that commits and reads
again. A connection reused within seconds was just working; one that sat idle longer may have
been dropped meanwhile (a PostgreSQL restart, a proxy's idle timeout), so only that one is pinged.
"""
from __future__ import annotations

from time import monotonic

import sqlalchemy as sa
from sqlalchemy import exc

IDLE_SINCE = "guichet_idle_since"  # key in ConnectionPoolEntry.info, which is cleared on reconnect


def install_idle_ping(engine: sa.Engine, idle_seconds: float) -> None:
    """Ping on checkout a connection idle for `idle_seconds` or more (0: on every checkout).

    A failed ping raises DisconnectionError: the pool replaces the connection and checks out
    again, so the caller never sees the dead one. A connection opened for this checkout is not
    pinged (pool_pre_ping skips fresh connections too).
    """

    @sa.event.listens_for(engine, "checkin")
    def _remember_checkin(_dbapi_connection, connection_record):
        connection_record.info[IDLE_SINCE] = monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, connection_record, _connection_proxy):
        idle_since = connection_record.info.get(IDLE_SINCE)
        if idle_since is None or monotonic() - idle_since < idle_seconds:
            return
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # Like pool_pre_ping: the server likely went away, so every connection opened
                # before now is replaced on its next checkout instead of being pinged in turn.
                raise exc.InvalidatePoolError(f"idle connection failed its ping: {error}") from error
            raise exc.DisconnectionError(f"idle connection failed its ping: {error}") from error
