"""PostgreSQL: a transaction begins at its first statement that writes or locks (app/db_late_begin.py).
Reads before it run in autocommit, one round trip each, with no BEGIN and nothing to end; anything
that wrote, failed or left changes pending still ends with ROLLBACK.

Each case runs in an app context of its own, as a request in production does: its teardown is
what ends the transaction (the tests' own context outlives their requests)."""
from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.db_late_begin import begin_now, locks_rows, only_write
from app.extensions import db
from app.models import Event
from tests.conftest import TEST_DATABASE_URL
from tests.factories import EventFactory
from tests.wire_trace import WireTrace

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="set TEST_DATABASE_URL: psycopg's transactions")

READ = sa.select(Event.title).where(Event.id == sa.bindparam("event_id"))
LOCK = READ.with_for_update()
RENAME = sa.update(Event).where(Event.id == sa.bindparam("event_id")).values(title=sa.bindparam("title"))


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


def test_reads_run_in_autocommit_one_round_trip_each_and_their_statement_gets_prepared(app, event_id):
    with WireTrace(db.engine).recording() as wire, app.app_context():
        for _ in range(2):
            assert db.session.execute(READ, {"event_id": event_id}).scalar_one() == "Athletics"
    assert wire.sql() == ["SELECT", "SELECT"], wire.messages()
    assert wire.round_trips() == 2
    for _ in range(6):  # psycopg prepares a statement at its 5th run on a connection
        title_in_a_new_context(app, event_id)
    with app.app_context():
        prepared = db.session.execute(sa.text("SELECT statement FROM pg_prepared_statements")).scalars().all()
    assert any("FROM events" in statement for statement in prepared), prepared


def test_the_first_write_begins_the_transaction_and_the_commit_ends_it(app, event_id):
    with WireTrace(db.engine).recording() as wire, app.app_context():
        db.session.execute(READ, {"event_id": event_id})
        db.session.execute(RENAME, {"event_id": event_id, "title": "Renamed"})
        db.session.execute(READ, {"event_id": event_id})
        db.session.commit()
    assert wire.sql() == ["SELECT", "BEGIN", "UPDATE", "SELECT", "COMMIT"], wire.messages()
    assert title_in_a_new_context(app, event_id) == "Renamed"


def test_the_next_transaction_on_the_same_connection_starts_in_autocommit_again(app, event_id):
    with WireTrace(db.engine).recording() as wire, app.app_context():
        db.session.execute(RENAME, {"event_id": event_id, "title": "Renamed"})
        db.session.commit()
        db.session.execute(READ, {"event_id": event_id})
    assert wire.sql() == ["BEGIN", "UPDATE", "COMMIT", "SELECT"], wire.messages()


def test_a_transaction_that_wrote_without_committing_still_rolls_back(app, event_id):
    with WireTrace(db.engine).recording() as wire, app.app_context():
        db.session.execute(RENAME, {"event_id": event_id, "title": "Changed"})
    assert ends_with(wire) == "ROLLBACK", wire.messages()
    assert title_in_a_new_context(app, event_id) == "Athletics"


def test_a_rollback_undoes_the_writes_made_after_the_reads(app, event_id):
    with app.app_context():
        db.session.execute(READ, {"event_id": event_id})
        db.session.execute(RENAME, {"event_id": event_id, "title": "Changed"})
        db.session.rollback()
    assert title_in_a_new_context(app, event_id) == "Athletics"


def test_a_locking_read_begins_the_transaction_and_holds_its_lock_to_the_end(app, event_id):
    """Without BEGIN, the row lock would end with its statement, and a second buyer would not wait."""
    locked, waited = threading.Event(), []

    def other_buyer():
        with app.app_context():
            locked.wait(5)
            db.session.execute(LOCK.with_for_update(nowait=True), {"event_id": event_id})

    with WireTrace(db.engine).recording() as wire, app.app_context():
        db.session.execute(LOCK, {"event_id": event_id})
        thread = threading.Thread(target=lambda: waited.append(_refused(other_buyer)))
        thread.start()
        locked.set()
        thread.join(10)
    assert wire.sql()[:2] == ["BEGIN", "SELECT"], wire.messages()
    assert ends_with(wire) == "COMMIT"  # it only locked: COMMIT keeps psycopg's prepared statements
    assert waited == [True], "the lock must still be held after its statement"


def _refused(work) -> bool:
    from sqlalchemy.exc import OperationalError

    try:
        work()
    except OperationalError as error:  # could not obtain lock on row (NOWAIT)
        return "lock" in str(error.orig)
    return False


def test_a_server_side_cursor_read_begins_the_transaction(app, event_id):
    """DECLARE … CURSOR needs a transaction block; without BEGIN PostgreSQL refuses it."""
    with WireTrace(db.engine).recording() as wire, app.app_context():
        rows = db.session.execute(sa.select(Event.title).execution_options(yield_per=10)).scalars().all()
    assert rows == ["Athletics"]
    assert "BEGIN" in wire.sql() and "DECLARE" in wire.sql(), wire.messages()


def test_a_statement_psycopg_ran_itself_begins_the_transaction_when_noted(app, event_id):
    with WireTrace(db.engine).recording() as wire, app.app_context():
        connection = db.session.connection()
        db.session.execute(READ, {"event_id": event_id})
        begin_now(connection)
        connection.connection.driver_connection.execute("UPDATE events SET title = 'Changed' WHERE id = %s",
                                                        (event_id,))
    assert wire.sql() == ["SELECT", "BEGIN", "UPDATE", "ROLLBACK"], wire.messages()
    assert title_in_a_new_context(app, event_id) == "Athletics"


def test_objects_pending_in_the_session_are_never_committed_at_teardown(app, event_id):
    with app.app_context():
        db.session.get(Event, event_id).title = "Changed"  # dirty, never flushed
        db.session.add(EventFactory.build(title="Never saved"))
    assert title_in_a_new_context(app, event_id) == "Athletics"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Event.title == "Never saved")) == 0


def test_a_request_that_failed_after_locking_rolls_back(app, event_id):
    with WireTrace(db.engine).recording() as wire, pytest.raises(RuntimeError), app.app_context():
        db.session.execute(LOCK, {"event_id": event_id})
        raise RuntimeError("the view failed")
    assert ends_with(wire) == "ROLLBACK", wire.messages()


def test_a_connection_in_autocommit_on_purpose_stays_in_autocommit(app, event_id):
    with WireTrace(db.engine).recording() as wire, app.app_context():
        connection = db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        connection.execute(RENAME, {"event_id": event_id, "title": "At once"})
        db.session.rollback()
    assert "BEGIN" not in wire.sql(), wire.messages()
    assert title_in_a_new_context(app, event_id) == "At once"


def test_a_transaction_that_ran_no_statement_checks_out_no_connection_at_its_end(app, event_id):
    """A signed-in page served from the cache adds its user to the session, which begins a
    transaction without a connection: the teardown has nothing to end, and no connection to take."""
    checkouts = []

    def on_checkout(*_):
        checkouts.append(1)

    with app.app_context():
        event = db.session.get(Event, event_id)
        db.session.expunge(event)
    sa.event.listen(db.engine, "checkout", on_checkout)
    try:
        with WireTrace(db.engine).recording() as wire, app.app_context():
            db.session.add(event)  # as the signed-in user is added: the session's transaction begins
            assert db.session().in_transaction()
        assert checkouts == [] and wire.sql() == [], wire.messages()
        with WireTrace(db.engine).recording() as wire, app.app_context():  # a lock taken: ended at teardown
            db.session.add(event)
            db.session.execute(LOCK, {"event_id": event_id})
        assert checkouts == [1] and ends_with(wire) == "COMMIT", wire.messages()
    finally:
        sa.event.remove(db.engine, "checkout", on_checkout)


def test_the_session_listeners_are_installed_once_for_every_app(make_app):
    from app.db_late_begin import _forget_connection, _note_connection

    make_app()
    with make_app().app_context():
        for name, listener in (("after_begin", _note_connection), ("after_transaction_end", _forget_connection)):
            assert list(getattr(db.session().dispatch, name)).count(listener) == 1


def test_a_page_that_only_reads_sends_neither_begin_nor_commit(make_app, event_id):
    """Through a real request, on another instance of the app: its requests get app contexts of
    their own (the tests' context belongs to the first instance)."""
    other = make_app()
    with other.app_context():
        engine, slug = db.engine, db.session.get(Event, event_id).slug
    with WireTrace(engine).recording() as wire:
        response = other.test_client().get(f"/events/{slug}")
    assert response.status_code == 200
    words = wire.sql()
    assert "SELECT" in words and not {"BEGIN", "COMMIT", "ROLLBACK"} & set(words), wire.messages()


@pytest.mark.parametrize(("statement", "locks"), [
    ("SELECT id FROM events WHERE id = %(id)s", False),
    ("SELECT events.id FROM events WHERE events.id = %(id)s FOR UPDATE", True),
    ("SELECT orders.id FROM orders ORDER BY orders.id LIMIT %(n)s FOR UPDATE SKIP LOCKED", True),
    ("SELECT id FROM users FOR NO KEY UPDATE", True),
    ("SELECT id FROM users\nFOR SHARE", True),
    ("SELECT id FROM users FOR KEY SHARE", True),
    ("SELECT format FROM reports", False),
])
def test_locks_rows(statement, locks):
    assert locks_rows(statement) is locks


# --------------------------------------------------------------------------- a change of one statement
def test_a_write_said_to_be_the_only_one_runs_alone_without_begin_or_commit(app, event_id):
    with WireTrace(db.engine).recording() as wire, app.app_context():
        db.session.execute(READ, {"event_id": event_id})
        with only_write(db.session):
            db.session.execute(RENAME, {"event_id": event_id, "title": "Alone"})
        db.session.commit()
    assert wire.sql() == ["SELECT", "UPDATE"], wire.messages()
    assert title_in_a_new_context(app, event_id) == "Alone"


def test_the_only_write_joins_a_transaction_that_has_begun(app, event_id):
    other = EventFactory(title="Swimming")
    db.session.commit()
    with app.app_context():
        db.session.execute(RENAME, {"event_id": other.id, "title": "Changed"})
        with only_write(db.session):
            db.session.execute(RENAME, {"event_id": event_id, "title": "Changed"})
        db.session.rollback()
    assert title_in_a_new_context(app, event_id) == "Athletics"
    assert title_in_a_new_context(app, other.id) == "Swimming"


def test_the_only_write_begins_when_changes_wait_in_the_session(app, event_id):
    with WireTrace(db.engine).recording() as wire, app.app_context():
        db.session.add(EventFactory.build(title="Pending"))
        with only_write(db.session):
            db.session.execute(RENAME, {"event_id": event_id, "title": "Changed"})
        db.session.rollback()
    assert wire.sql()[0] == "BEGIN", wire.messages()
    assert title_in_a_new_context(app, event_id) == "Athletics"


def test_adding_one_offer_to_a_stored_cart_is_one_round_trip_and_two_changes_one_transaction(app):
    from app.models import CartItem
    from app.services.cart import load_user_cart, save_user_cart
    from tests.factories import OfferFactory, UserFactory

    user, first, second = UserFactory(), OfferFactory(), OfferFactory()
    db.session.commit()
    user_id, first_id, second_id = user.id, first.id, second.id
    now = datetime.now(UTC)
    with WireTrace(db.engine).recording() as wire, app.app_context():
        save_user_cart(db.session, user_id, {first_id: 1}, now=now, stored={})
    assert wire.sql() == ["INSERT"], wire.messages()
    with WireTrace(db.engine).recording() as wire, app.app_context():
        save_user_cart(db.session, user_id, {first_id: 2, second_id: 1}, now=now, stored={first_id: 1})
    words = wire.sql()
    assert words[0] == "BEGIN" and words[-1] == "COMMIT", wire.messages()
    with app.app_context():
        assert load_user_cart(db.session, user_id) == {first_id: 2, second_id: 1}
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CartItem)) == 2


def test_marking_an_email_sent_is_one_round_trip(app):
    from app.models import EmailJob
    from app.services import email_jobs
    from tests.factories import OfferFactory, UserFactory, make_paid_order

    order = make_paid_order(UserFactory(), (OfferFactory(), 1))
    now = datetime.now(UTC)
    email_jobs.enqueue_new(db.session, email_jobs.ORDER_CONFIRMATION, order.id, now)
    db.session.commit()
    with app.app_context():
        [job] = email_jobs.claim_due(db.session, now, 1)
        with WireTrace(db.engine).recording() as wire:
            wire.follow(db.session.connection())
            email_jobs.mark_sent(db.session, job, now)
        assert wire.sql() == ["UPDATE"], wire.messages()
    with app.app_context():
        assert db.session.scalar(sa.select(EmailJob.status)) == "sent"


def test_the_orders_list_only_reads_when_no_hold_has_lapsed(make_app):
    """Through a real signed-in request, on another instance of the app (see above)."""
    from tests.conftest import AuthActions
    from tests.factories import OfferFactory, UserFactory, make_paid_order

    other = make_app()
    with other.app_context():
        buyer = UserFactory()
        make_paid_order(buyer, (OfferFactory(), 1))
        db.session.commit()
        engine, email = db.engine, buyer.email
    client = other.test_client()
    AuthActions(client).login(email)
    with WireTrace(engine).recording() as wire:
        response = client.get("/orders/")
    assert response.status_code == 200
    words = wire.sql()
    assert "SELECT" in words and not {"BEGIN", "COMMIT", "ROLLBACK"} & set(words), wire.messages()
