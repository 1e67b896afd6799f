"""The lazy cursor description against a real PostgreSQL: the same columns as psycopg's own, built
only when read, kept from the statement they describe; and SQLAlchemy does not read them once a
statement's result map is cached (app/db_cursor.py)."""
from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from app import db_cursor
from app.db_cursor import LazyDescription, LazyDescriptionCursor
from tests.conftest import TEST_DATABASE_URL

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="set TEST_DATABASE_URL: a psycopg cursor needs PostgreSQL")
QUERY = "SELECT 1 AS id, 'x'::varchar(12) AS name, now() AS at, 2.5::numeric(6, 2) AS price, NULL::int[] AS ids"


def _psycopg_url() -> str:
    return sa.engine.make_url(TEST_DATABASE_URL).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def connection():
    with psycopg.connect(_psycopg_url(), cursor_factory=LazyDescriptionCursor) as conn:
        yield conn


@pytest.fixture
def built(monkeypatch):
    """How many psycopg Column objects the lazy description has built."""
    counter = {"columns": 0}
    real = db_cursor.Column

    def counting(*args):
        counter["columns"] += 1
        return real(*args)

    monkeypatch.setattr(db_cursor, "Column", counting)
    return counter


def test_the_same_columns_as_psycopgs_own_description(connection):
    lazy = connection.cursor().execute(QUERY).description
    plain = psycopg.Cursor(connection).execute(QUERY).description
    assert isinstance(lazy, LazyDescription) and len(lazy) == len(plain) == 5
    assert [tuple(c) for c in lazy] == [tuple(c) for c in plain]
    assert [c.name for c in lazy] == ["id", "name", "at", "price", "ids"]
    assert lazy[1].type_code == plain[1].type_code and lazy[-1].name == "ids"
    assert [c.name for c in lazy[1:3]] == ["name", "at"]


def test_columns_are_built_only_when_read(connection, built):
    description = connection.cursor().execute(QUERY).description
    assert len(description) == 5 and built["columns"] == 0
    assert description[0].name == "id" and built["columns"] == 5
    list(description)
    assert built["columns"] == 5  # once per description


def test_a_description_keeps_describing_its_own_statement(connection):
    cursor = connection.cursor()
    description = cursor.execute(QUERY).description
    cursor.execute("SELECT 'other' AS other")
    assert [c.name for c in description] == ["id", "name", "at", "price", "ids"]


def test_no_description_without_a_result_and_one_for_an_empty_select(connection):
    cursor = connection.cursor()
    assert cursor.execute("CREATE TEMPORARY TABLE lazy_t (n int)").description is None
    assert cursor.execute("INSERT INTO lazy_t VALUES (1)").description is None
    empty = cursor.execute("SELECT n FROM lazy_t WHERE false").description
    assert [c.name for c in empty] == ["n"]


def test_sqlalchemy_reads_no_column_once_a_statement_has_run(built):
    engine = sa.create_engine(TEST_DATABASE_URL, connect_args={"cursor_factory": LazyDescriptionCursor})
    statement = sa.select(sa.literal(1).label("a"), sa.literal("b").label("b")).where(sa.bindparam("p") == 1)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1")).one()  # the dialect's own first queries
            built["columns"] = 0
            first = conn.execute(statement, {"p": 1}).one()
            columns_for_the_first_run = built["columns"]
            for _ in range(3):
                row = conn.execute(statement, {"p": 1}).one()
            assert row._mapping["b"] == first.b == "b"
    finally:
        engine.dispose()
    assert columns_for_the_first_run == 2  # SQLAlchemy maps the result's columns once...
    assert built["columns"] == 2  # ...and never reads them again: psycopg's list was built for nothing
