"""The idle ping against a real PostgreSQL: reused connections are not pinged, idle ones are,
and a connection the server dropped while idle is replaced without the caller noticing."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from app import db_pool
from app.db_pool import install_idle_ping
from tests.conftest import TEST_DATABASE_URL

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="set TEST_DATABASE_URL: pings are a PostgreSQL matter")
IDLE = 10


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(db_pool, "monotonic", clock)
    return clock


@pytest.fixture
def engine():
    engine = sa.create_engine(TEST_DATABASE_URL, pool_size=2, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine, monkeypatch):
    """The connections the dialect pinged (pool_pre_ping calls the same do_ping)."""
    pinged = []
    real_ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection):
        pinged.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted_ping)
    return pinged


def backend_pid(engine) -> int:
    """One checkout, one statement, one checkin: what a request does with the pool."""
    with engine.connect() as conn:
        return conn.scalar(sa.text("SELECT pg_backend_pid()"))


def terminate(*pids: int) -> None:
    """What a PostgreSQL restart or a proxy's idle timeout does to pooled connections."""
    admin = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        for pid in pids:
            assert conn.scalar(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    admin.dispose()


def test_a_connection_reused_within_the_idle_window_is_not_pinged(engine, pings, clock):
    install_idle_ping(engine, IDLE)
    first = backend_pid(engine)
    for _ in range(5):
        clock.now += IDLE - 1
        assert backend_pid(engine) == first
    assert pings == []


def test_a_connection_idle_for_the_window_is_pinged_once(engine, pings, clock):
    install_idle_ping(engine, IDLE)
    first = backend_pid(engine)
    clock.now += IDLE
    assert backend_pid(engine) == first
    assert len(pings) == 1
    assert backend_pid(engine) == first  # just returned: not pinged again
    assert len(pings) == 1


def test_zero_pings_every_checkout_of_a_used_connection(engine, pings, clock):
    install_idle_ping(engine, 0)
    for _ in range(4):
        backend_pid(engine)
    assert len(pings) == 3  # the first checkout opened the connection: nothing to ping


def test_a_connection_killed_while_idle_is_replaced_on_the_next_checkout(engine, pings, clock):
    install_idle_ping(engine, IDLE)
    dead = backend_pid(engine)
    terminate(dead)
    clock.now += IDLE + 1
    assert backend_pid(engine) != dead  # no error for the caller: the pool reconnected
    assert len(pings) == 1


def test_a_failed_ping_replaces_the_other_idle_connections_without_pinging_them(engine, pings, clock):
    install_idle_ping(engine, IDLE)
    with engine.connect() as one, engine.connect() as two:
        dead = {conn.scalar(sa.text("SELECT pg_backend_pid()")) for conn in (one, two)}
    terminate(*dead)
    clock.now += IDLE + 1
    fresh = {backend_pid(engine), backend_pid(engine)}
    assert not fresh & dead
    assert len(pings) == 1  # the failed ping invalidated the pool, as pool_pre_ping does


def test_inside_the_window_one_caller_meets_a_dead_connection_then_the_pool_recovers(engine, pings, clock):
    """The trade-off documented with DATABASE_PING_IDLE_SECONDS (e.g. PostgreSQL restarted)."""
    install_idle_ping(engine, IDLE)
    with engine.connect() as one, engine.connect() as two:
        dead = {conn.scalar(sa.text("SELECT pg_backend_pid()")) for conn in (one, two)}
    terminate(*dead)
    clock.now += 1
    with pytest.raises(sa.exc.OperationalError) as failure:
        backend_pid(engine)
    assert failure.value.connection_invalidated
    assert backend_pid(engine) not in dead  # the other dead one was dropped with the pool
    assert backend_pid(engine) not in dead
    assert pings == []
