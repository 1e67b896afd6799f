"""The app's engine: on PostgreSQL an idle ping (DATABASE_PING_IDLE_SECONDS) instead of
pool_pre_ping, so a busy request pays no ping, and cursors whose description is built only when
read (app/db_cursor.py); SQLite keeps its own set-up."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import db_pool
from app.db_cursor import LazyDescriptionCursor
from app.extensions import db
from tests.conftest import TEST_DATABASE_URL

on_postgres = pytest.mark.skipif(not TEST_DATABASE_URL, reason="set TEST_DATABASE_URL: pings are a PostgreSQL matter")


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(db_pool, "monotonic", lambda: now[0])
    return now


def count_pings(app, monkeypatch) -> list:
    """The connections the app's engine pinged (pool_pre_ping and the idle ping both call do_ping)."""
    pinged = []
    with app.app_context():
        dialect = db.engine.dialect
    real_ping = dialect.do_ping

    def counted_ping(dbapi_connection):
        pinged.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted_ping)
    return pinged


def count_checkouts(app) -> list:
    checkouts = []
    with app.app_context():
        sa.event.listen(db.engine, "checkout", lambda *args: checkouts.append(args[0]))
    return checkouts


def use_the_database(app) -> None:
    """What a request does: its app context checks a connection out and returns it at teardown."""
    with app.app_context():
        assert db.session.scalar(sa.select(sa.literal(1))) == 1


@on_postgres
def test_a_postgres_app_pings_only_connections_idle_for_the_setting(make_app, clock, monkeypatch):
    app = make_app(DATABASE_PING_IDLE_SECONDS=30)
    pings, checkouts = count_pings(app, monkeypatch), count_checkouts(app)
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
        assert db.engine.pool._pre_ping is False
    use_the_database(app)
    for _ in range(3):
        clock[0] += 29
        use_the_database(app)
    assert len(checkouts) == 4 and pings == []
    clock[0] += 30
    use_the_database(app)
    use_the_database(app)
    assert len(pings) == 1  # the idle connection; in use again, it is not pinged on its next checkout


@on_postgres
def test_zero_restores_a_ping_on_every_checkout(make_app, monkeypatch):
    app = make_app(DATABASE_PING_IDLE_SECONDS=0)
    pings, checkouts = count_pings(app, monkeypatch), count_checkouts(app)
    for _ in range(4):
        use_the_database(app)
    assert len(checkouts) == 4
    assert len(pings) == 3  # all but the first checkout, which opened the connection


def test_a_sqlite_app_keeps_its_engine_options(make_app, tmp_path):
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'pool.sqlite'}")
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert "pool_pre_ping" not in options and "cursor_factory" not in options["connect_args"]
    assert options["connect_args"]["check_same_thread"] is False
    with app.app_context():
        assert db.engine.pool._pre_ping is False
        assert not db.engine.pool.dispatch.checkout  # no idle ping: SQLite has no server to lose
        assert db.engine.pool.dispatch.connect  # tune_sqlite's pragmas


def test_a_postgres_app_gets_lazy_description_cursors(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["cursor_factory"] is LazyDescriptionCursor


@on_postgres
def test_the_app_reads_through_lazy_description_cursors(make_app):
    app = make_app()
    with app.app_context():
        cursor = db.session.connection().connection.dbapi_connection.cursor()
        assert isinstance(cursor, LazyDescriptionCursor)
        assert db.session.execute(sa.select(sa.literal(7).label("seven"))).one().seven == 7


@on_postgres
def test_a_postgres_app_keeps_its_connections_and_makes_extra_requests_wait(make_app):
    """No overflow by default: a pool that opened connections beyond its size would close each
    one as it came back, so under load connections (PostgreSQL backends) came and went."""
    app = make_app(DATABASE_POOL_SIZE=2, SQLALCHEMY_ENGINE_OPTIONS={"pool_timeout": 0.2})
    with app.app_context():
        engine = db.engine
    opened = []
    sa.event.listen(engine, "connect", lambda *args: opened.append(args[0]))
    first, second = engine.connect(), engine.connect()
    with pytest.raises(sa.exc.TimeoutError):
        engine.connect()  # a third request waits for one of the two, here 0.2 s in vain
    first.close()
    with engine.connect() as third:
        assert third.scalar(sa.select(sa.literal(1))) == 1
    second.close()
    assert len(opened) == 2 and engine.pool.checkedin() == 2  # both kept, none closed
