"""PostgreSQL: a transaction that only read ends with COMMIT, so psycopg keeps its prepared
statements (app/db_read_only.py); anything that wrote, failed or left changes pending still ends
with ROLLBACK.

Each case runs in an app context of its own, as a request in production does: its teardown is
what ends the transaction (the tests' own context outlives their requests)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.db_read_only import note_written
from app.extensions import db
from app.models import Event
from tests.conftest import TEST_DATABASE_URL
from tests.factories import EventFactory
from tests.wire_trace import WireTrace

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="set TEST_DATABASE_URL: psycopg's prepared statements")

READ = sa.select(Event.title).where(Event.id == sa.bindparam("event_id"))


@pytest.fixture
def event_id(app):
    event = EventFactory(title="Athletics")
    db.session.commit()
    return event.id


def ends_with(wire: WireTrace) -> str:
    return [word for word in wire.sql() if word in ("COMMIT", "ROLLBACK")][-1]


def title_in_a_new_context(app, event_id: int) -> str:
    with app.app_context():
        return db.session.execute(READ, {"event_id": event_id}).scalar_one()


def test_a_transaction_that_only_read_ends_with_commit_and_its_statement_gets_prepared(app, event_id):
    with WireTrace(db.engine).recording() as wire:
        assert title_in_a_new_context(app, event_id) == "Athletics"
    assert wire.sql() == ["BEGIN", "SELECT", "COMMIT"], wire.messages()
    for _ in range(6):  # psycopg prepares a statement at its 5th run on a connection
        title_in_a_new_context(app, event_id)
    with app.app_context():
        prepared = db.session.execute(sa.text("SELECT statement FROM pg_prepared_statements")).scalars().all()
    assert any("FROM events" in statement for statement in prepared), prepared


def test_a_transaction_that_wrote_without_committing_still_rolls_back(app, event_id):
    with WireTrace(db.engine).recording() as wire, app.app_context():
        db.session.execute(sa.update(Event).where(Event.id == event_id).values(title="Changed"))
    assert ends_with(wire) == "ROLLBACK", wire.messages()
    assert title_in_a_new_context(app, event_id) == "Athletics"


def test_a_statement_psycopg_ran_itself_counts_as_a_write_when_noted(app, event_id):
    with app.app_context():
        connection = db.session.connection()
        connection.connection.driver_connection.execute("UPDATE events SET title = 'Changed' WHERE id = %s",
                                                        (event_id,))
        note_written(connection)
    assert title_in_a_new_context(app, event_id) == "Athletics"


def test_objects_pending_in_the_session_are_never_committed_at_teardown(app, event_id):
    with app.app_context():
        db.session.get(Event, event_id).title = "Changed"  # dirty, never flushed
        db.session.add(EventFactory.build(title="Never saved"))
    assert title_in_a_new_context(app, event_id) == "Athletics"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Event.title == "Never saved")) == 0


def test_a_request_that_failed_rolls_back_even_if_it_only_read(app, event_id):
    with WireTrace(db.engine).recording() as wire, pytest.raises(RuntimeError), app.app_context():
        db.session.execute(READ, {"event_id": event_id})
        raise RuntimeError("the view failed")
    assert ends_with(wire) == "ROLLBACK", wire.messages()


def test_a_page_that_only_reads_ends_with_commit(make_app, event_id):
    """Through a real request, on another instance of the app: its requests get app contexts of
    their own (the tests' context belongs to the first instance)."""
    other = make_app()
    with other.app_context():
        engine, slug = db.engine, db.session.get(Event, event_id).slug
    with WireTrace(engine).recording() as wire:
        response = other.test_client().get(f"/events/{slug}")
    assert response.status_code == 200
    assert "SELECT" in wire.sql() and ends_with(wire) == "COMMIT", wire.messages()
