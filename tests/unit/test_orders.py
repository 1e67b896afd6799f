"""Order services without HTTP: placing (seats, total, limit, codes), expiry, payment, cancellation."""
from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import (
    AuditEvent,
    CartItem,
    EmailJob,
    Event,
    Order,
    OrderLine,
    Payment,
    Ticket,
    User,
)
from app.services import checkout, orders
from app.services.codes import ORDER_CODE_RE
from app.services.errors import Conflict, DomainError, Forbidden, NotFound
from app.services.payments import CardDetails, MockProvider
from tests.checkers import orm_flushes, orm_loads, sql_statements, wait_for
from tests.conftest import TEST_DATABASE_URL
from tests.shop import customer, make_event, offer_of, seats_taken
from tests.wire_trace import WireTrace

HOLD = 15
LIMIT = 10


def now() -> datetime:
    return datetime.now(UTC)


def place(user, items, *, total=None, at=None, **kwargs) -> Order:
    if total is None:
        total = sum(db.session.get(type(offer), offer.id).price_cents * quantity for offer, quantity in items.items())
    return orders.place_order(db.session, user=user, items={offer.id: q for offer, q in items.items()},
                              expected_total_cents=total, now=at or now(), hold_minutes=HOLD,
                              max_tickets_per_event=kwargs.pop("limit", LIMIT), **kwargs)


def card(number="4242424242424242") -> CardDetails:
    return CardDetails(number=number, exp_month=12, exp_year=now().year + 2, cvv="731", holder="Ada Lovelace")


def payable(order: Order) -> checkout.PayableOrder:
    """The order as the payment view reads it."""
    return checkout.payable_order_of_user(db.session, order.code, order.user_id)


def pay(order, provider, number="4242424242424242", at=None):
    if not isinstance(order, checkout.PayableOrder):
        order = payable(order)
    return checkout.pay_order(db.session, order, card(number), provider=provider, now=at or now())


# --------------------------------------------------------------------------- placing
def test_place_order_takes_seats_and_holds_them(app):
    event = make_event(capacity=20)
    user = customer()
    duo, family = offer_of(event, "duo"), offer_of(event, "family")
    db.session.add(CartItem(user_id=user.id, offer_id=duo.id, quantity=1))
    db.session.commit()
    t0 = now()
    order = place(user, {duo: 1, family: 2}, at=t0)

    assert ORDER_CODE_RE.fullmatch(order.code)
    assert order.status == "pending"
    assert order.total_cents == 9500 + 2 * 17000
    assert order.expires_at == t0 + timedelta(minutes=HOLD)
    assert sorted((line.persons, line.quantity) for line in order.lines) == [(2, 1), (4, 2)]
    assert seats_taken(event.id) == 2 + 8
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CartItem)) == 0  # ordered lines leave the cart


def test_order_across_two_events_takes_seats_in_each(app):
    first, second = make_event(capacity=10), make_event(capacity=10)
    order = place(customer(), {offer_of(second, "family"): 1, offer_of(first, "duo"): 2})
    assert seats_taken(first.id) == 4 and seats_taken(second.id) == 4
    assert {line.event_id for line in order.lines} == {first.id, second.id}


def test_changed_total_is_refused_and_takes_nothing(app):
    event = make_event()
    solo = offer_of(event, "solo")
    with pytest.raises(Conflict) as error:
        place(customer(), {solo: 2}, total=2 * 5000 - 100)
    assert error.value.code == "price_changed"
    assert error.value.params["total_cents"] == 10000
    assert seats_taken(event.id) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_unverified_customer_cannot_place(app):
    event = make_event()
    with pytest.raises(Forbidden) as error:
        place(customer(email_verified_at=None), {offer_of(event, "solo"): 1})
    assert error.value.code == "email_not_verified"
    assert seats_taken(event.id) == 0


def test_sold_out_is_refused_without_partial_seats(app):
    roomy, full = make_event(capacity=50), make_event(capacity=10, seats_taken=8)
    with pytest.raises(Conflict) as error:
        place(customer(), {offer_of(roomy, "family"): 1, offer_of(full, "family"): 1})
    assert error.value.code == "sold_out"
    assert seats_taken(roomy.id) == 0 and seats_taken(full.id) == 8  # the first event's seats were given back


def test_exactly_the_last_seats_can_be_sold(app):
    event = make_event(capacity=10, seats_taken=6)
    place(customer(), {offer_of(event, "family"): 1})
    assert seats_taken(event.id) == 10


@pytest.mark.parametrize(("kind", "reason"), [("unpublished", "offer_unavailable"), ("started", "event_started")])
def test_offers_not_on_sale_are_refused(app, kind, reason):
    event = make_event()
    solo = offer_of(event, "solo")
    if kind == "unpublished":
        solo.published = False
    else:
        event.starts_at = now() - timedelta(minutes=1)
    db.session.commit()
    with pytest.raises(Conflict) as error:
        place(customer(), {solo: 1})
    assert error.value.code == reason


def test_quantities_outside_1_to_10_are_refused(app):
    event = make_event()
    for quantity in (0, 11):
        with pytest.raises(DomainError) as error:
            place(customer(), {offer_of(event, "solo"): quantity}, total=quantity * 5000)
        assert error.value.code == "quantity_invalid"


def test_limit_counts_ticket_units_across_pending_and_paid_orders(app):
    event, other = make_event(), make_event()
    user = customer()
    solo, family = offer_of(event, "solo"), offer_of(event, "family")
    paid = place(user, {family: 4})  # 4 tickets for 16 persons
    pay(paid, MockProvider())
    place(user, {solo: 5})  # pending: 9 tickets held
    with pytest.raises(Conflict) as error:
        place(user, {solo: 2})
    assert error.value.code == "ticket_limit_reached"
    assert error.value.params == {"limit": 10, "held": 9, "left": 1, "event": event.title}
    assert seats_taken(event.id) == 16 + 5
    place(user, {solo: 1})  # the tenth ticket is fine
    place(user, {offer_of(other, "solo"): 10})  # and the limit is per event
    place(customer(), {solo: 10})  # and per account


def test_cancelled_and_expired_orders_do_not_count_towards_the_limit(app):
    event = make_event()
    user = customer()
    solo = offer_of(event, "solo")
    t0 = now()
    place(user, {solo: 10}, at=t0)
    with pytest.raises(Conflict):
        place(user, {solo: 1}, at=t0)
    place(user, {solo: 10}, at=t0 + timedelta(minutes=HOLD + 1))  # the first hold lapsed and is released
    assert seats_taken(event.id) == 10


def test_a_placement_looks_for_the_buyers_lapsed_holds_with_its_lock(app):
    """No statement of its own for the buyer's lapsed holds: the lock answers whether there are any
    (on SQLite, a read after the write lock); a lapsed hold is then expired before placing."""
    event = make_event()
    user = customer()
    solo = offer_of(event, "solo")
    t0 = now()
    with sql_statements(db.engine) as statements:
        place(user, {solo: 4}, at=t0)
    assert not [s for s in statements if s.startswith(("SELECT orders.id", "UPDATE orders"))]  # no expiry pass
    with sql_statements(db.engine) as statements:
        place(user, {solo: 8}, at=t0 + timedelta(minutes=HOLD + 1))  # 4 + 8 > 10 unless the first expired
    expiring = [s for s in statements if s.startswith("UPDATE orders")]
    assert len(expiring) == 1 and seats_taken(event.id) == 8


def test_order_code_collision_draws_another_code(app):
    event = make_event()
    solo = offer_of(event, "solo")
    first = place(customer(), {solo: 1})
    codes = iter([first.code, "GCH-ABCDEF"])
    second = place(customer(), {solo: 1}, code_factory=lambda: next(codes))
    assert second.code == "GCH-ABCDEF"
    assert seats_taken(event.id) == 2


def test_offers_read_with_the_cart_serve_the_first_try_only(app):
    from app.services.cart import load_user_cart_with_offers

    event = make_event()
    solo = offer_of(event, "solo")
    user = customer()
    db.session.add(CartItem(user_id=user.id, offer_id=solo.id, quantity=2))
    db.session.commit()
    items, offers = load_user_cart_with_offers(db.session, user.id)
    assert items == {solo.id: 2} and offers[solo.id].event.id == event.id
    taken = place(customer(), {solo: 1}).code
    codes = iter([taken, "GCH-ABCDEF"])
    total = 2 * offers[solo.id].price_cents
    with sql_statements(db.engine) as statements:
        order = place(user, {solo: 2}, total=total, offers=offers, code_factory=lambda: next(codes))
    offer_reads = [i for i, s in enumerate(statements) if s.startswith("SELECT offers.") and "offers.id IN (" in s]
    first_insert = next(i for i, s in enumerate(statements) if "INSERT INTO orders" in s)
    assert order.code == "GCH-ABCDEF" and len(offer_reads) == 1 and offer_reads[0] > first_insert


def test_order_codes_that_keep_colliding_give_up_after_three_draws(app):
    from sqlalchemy.exc import IntegrityError

    event = make_event()
    solo = offer_of(event, "solo")
    taken = place(customer(), {solo: 1}).code
    drawn = []

    def same_code():
        drawn.append(taken)
        assert len(drawn) <= orders.CODE_ATTEMPTS, "kept drawing"
        return taken

    with pytest.raises(IntegrityError):
        place(customer(), {solo: 1}, code_factory=same_code)
    assert len(drawn) == orders.CODE_ATTEMPTS and seats_taken(event.id) == 1


def test_sold_out_frees_lapsed_holds_of_other_buyers_first(app):
    event = make_event(capacity=4)
    t0 = now()
    stale = place(customer(), {offer_of(event, "family"): 1}, at=t0)
    later = t0 + timedelta(minutes=HOLD + 1)
    order = place(customer(), {offer_of(event, "duo"): 2}, at=later)
    assert order.status == "pending"
    db.session.refresh(stale)
    assert stale.status == "expired"
    assert seats_taken(event.id) == 4


# --------------------------------------------------------------------------- expiry
def test_expiry_releases_the_seats_once(app):
    event = make_event(capacity=30)
    t0 = now()
    stale = place(customer(), {offer_of(event, "family"): 2}, at=t0)
    fresh = place(customer(), {offer_of(event, "duo"): 1}, at=t0 + timedelta(minutes=10))
    assert seats_taken(event.id) == 10

    assert orders.expire_stale_orders(db.session, now=t0 + timedelta(minutes=HOLD - 1)) == 0
    assert orders.expire_stale_orders(db.session, now=t0 + timedelta(minutes=HOLD)) == 1
    assert orders.expire_stale_orders(db.session, now=t0 + timedelta(minutes=HOLD)) == 0  # idempotent
    db.session.refresh(stale)
    db.session.refresh(fresh)
    assert (stale.status, fresh.status) == ("expired", "pending")
    assert seats_taken(event.id) == 2


def test_expiry_works_in_batches(app):
    event = make_event(capacity=100)
    t0 = now()
    for _ in range(7):
        place(customer(), {offer_of(event, "duo"): 1}, at=t0)
    assert orders.expire_stale_orders(db.session, now=t0 + timedelta(hours=1), batch_size=3) == 7
    assert seats_taken(event.id) == 0


def test_paid_orders_never_expire(app):
    event = make_event()
    t0 = now()
    order = place(customer(), {offer_of(event, "duo"): 1}, at=t0)
    pay(order, MockProvider(), at=t0)
    assert orders.expire_stale_orders(db.session, now=t0 + timedelta(days=1)) == 0
    assert seats_taken(event.id) == 2


def test_the_event_row_is_taken_last_just_before_the_commit(app):
    """Every buyer of an event waits for its row: it is held for one statement and the commit."""
    event = make_event(capacity=20)
    user, solo = customer(), offer_of(event, "solo")
    with sql_statements(db.engine) as seen:
        order = place(user, {solo: 2})
    if db.engine.dialect.name == "postgresql":  # one statement: its last CTE takes the row (module doc)
        written = [i for i, statement in enumerate(seen) if statement.lstrip().startswith("WITH held_by_event")]
        assert len(written) == 1 and seen[written[0] + 1] == "COMMIT"
        statement = seen[written[0]]
        last_cte = statement[statement.index("taken AS ("):statement.index("SELECT (SELECT tickets FROM held)")]
        assert "UPDATE events" in last_cte and "new_lines" in last_cte and "emptied" in last_cte
        assert statement.index("INSERT INTO orders") < statement.index("UPDATE events")
    else:
        taken = [i for i, statement in enumerate(seen) if statement.lstrip().upper().startswith("UPDATE EVENTS")]
        assert len(taken) == 1 and seen[taken[0] + 1] == "COMMIT"
        assert [s for s in seen[:taken[0]] if s.lstrip().upper().startswith("INSERT INTO ORDERS")]
    assert order.status == "pending" and seats_taken(event.id) == 2


def test_a_placed_order_needs_no_second_read(app):
    """The view shows the order it just placed: its commit does not expire what it wrote."""
    event, user = make_event(), customer()
    order = place(user, {offer_of(event, "duo"): 1})
    with sql_statements(db.engine) as seen:
        shown = (order.code, order.status, order.total_cents, [line.quantity for line in order.lines])
        assert user.email  # the buyer, shown in the navbar
    assert seen == []
    assert shown[1:] == ("pending", 9500, [1]) and ORDER_CODE_RE.fullmatch(shown[0])
    assert event.seats_taken == 2  # what the seat UPDATE changed behind the ORM's back is not kept


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="set TEST_DATABASE_URL: row locks are PostgreSQL's")
def test_placing_for_one_event_writes_the_order_before_it_waits_for_the_events_row(app):
    """In the one statement, the order and its lines are written before the seat UPDATE waits for
    the event's row (held here by another buyer's transaction): their ids are drawn meanwhile."""
    import threading

    event = make_event(capacity=20)
    user, solo = customer(), offer_of(event, "solo")
    event_id, user_id, solo_id, price = event.id, user.id, solo.id, solo.price_cents
    db.session.commit()

    def last_ids() -> tuple:  # (last value, whether it was drawn) of each id sequence
        return tuple(tuple(db.session.execute(sa.text(f"SELECT last_value, is_called FROM {name}")).one())
                     for name in ("orders_id_seq", "order_lines_id_seq"))

    before = last_ids()
    db.session.rollback()
    other_buyer = db.engine.connect()
    transaction = other_buyer.begin()
    other_buyer.execute(sa.text("UPDATE events SET seats_taken = seats_taken WHERE id = :id"), {"id": event_id})
    placed = []

    def place_meanwhile() -> None:
        with app.app_context():
            buyer = db.session.get(type(user), user_id)
            placed.append(orders.place_order(db.session, user=buyer, items={solo_id: 1}, expected_total_cents=price,
                                             now=now(), hold_minutes=HOLD, max_tickets_per_event=LIMIT).code)
            db.session.remove()

    worker = threading.Thread(target=place_meanwhile)
    worker.start()
    try:
        waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                          "AND query LIKE '%WITH held_by_event%'")
        assert wait_for(lambda: db.session.execute(waiting).scalar_one() == 1 and db.session.rollback() is None)
        during = last_ids()
        db.session.rollback()
        assert placed == [] and during[0] != before[0] and during[1] != before[1]
    finally:
        transaction.rollback()
        other_buyer.close()
        worker.join(10)
    assert len(placed) == 1 and seats_taken(event_id) == 1


def test_placing_writes_the_order_and_its_lines_with_two_inserts_and_no_orm_flush(app):
    """What it hands back is persistent and clean: nothing left for a later flush to write."""
    event, user = make_event(), customer()
    with orm_flushes(db.session) as flushes, sql_statements(db.engine) as seen:
        order = place(user, {offer_of(event, "duo"): 1, offer_of(event, "solo"): 3})
    if db.engine.dialect.name == "postgresql":  # one event: in the one statement that places
        written, = [s for s in seen if s.lstrip().startswith("WITH held_by_event")]
        inserts = re.findall(r"INSERT INTO (\w+)", written)
    else:
        inserts = [s.split()[2] for s in seen if s.lstrip().upper().startswith("INSERT")]
    assert inserts[0] == "orders" and set(inserts[1:]) == {"order_lines"} and flushes == []
    assert sa.inspect(order).persistent and not db.session.new and not db.session.dirty
    assert all(sa.inspect(line).persistent and line.order_id == order.id for line in order.lines)
    db.session.expunge_all()
    stored = orders.get_order_for_user(db.session, order.code, user.id)
    assert sorted((line.id, line.quantity) for line in stored.lines) == sorted(
        (line.id, line.quantity) for line in order.lines)


def test_an_order_is_read_with_its_lines_and_payments_in_one_statement(app):
    event = make_event()
    user = customer()
    placed = place(user, {offer_of(event, "duo"): 1, offer_of(event, "solo"): 2})
    pay(placed, MockProvider())
    code, user_id, title = placed.code, user.id, event.title
    db.session.expunge_all()  # nothing loaded before
    with sql_statements(db.engine) as seen:
        order = orders.get_order_for_user(db.session, code, user_id)
        lines = sorted((line.offer.name, line.event.title, line.quantity) for line in order.lines)
        payments = [(payment.kind, payment.card_last4) for payment in order.payments]
    assert len(seen) == 1
    assert lines == [("Duo", title, 1), ("Solo", title, 2)]
    assert payments == [("charge", "4242")]
    listed = orders.list_orders_for_user(db.session, user_id)
    assert [o.code for o in listed] == [code] and len(listed[0].lines) == 2  # one row per order


# --------------------------------------------------------------------------- payment
def test_successful_payment_marks_paid_issues_tickets_and_audits(app):
    event = make_event()
    user = customer()
    order = place(user, {offer_of(event, "duo"): 2, offer_of(event, "solo"): 1})
    provider = MockProvider()
    outcome = pay(order, provider)

    assert outcome.paid_now and outcome.order.status == "paid" and outcome.order.paid_at is not None
    tickets = db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id)).all()
    assert len(tickets) == 3 and sorted(t.persons for t in tickets) == [1, 2, 2]
    [payment] = order.payments
    assert (payment.succeeded, payment.card_brand, payment.card_last4) == (True, "Visa", "4242")
    assert payment.transaction_id.startswith("mock_ch_")
    audit = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.type == "order_paid"))
    assert audit.subject_user_id == user.id and audit.details["order"] == order.code
    assert provider.charge_count == 1


def as_paid_with(order) -> dict:
    """What paying uses of an order, whichever way it was read."""
    return {
        "order": (order.id, order.code, order.user_id, order.status, order.expires_at, order.paid_at,
                  order.total_cents, order.currency, order.idempotency_key, order.is_pending, order.is_paid),
        "lines": [(line.id, line.event_id, line.offer_id, line.quantity, line.persons) for line in order.lines],
        "buyer": (order.user.user_key, order.user.full_name),
    }


def test_the_payment_reads_the_order_as_the_orm_reads_it_in_one_statement_of_rows(app):
    first, second = make_event(title="Judo"), make_event(title="Fencing")
    user = customer(first_name="Ada", last_name="Lovelace")
    order = place(user, {offer_of(first, "duo"): 1, offer_of(first, "solo"): 2, offer_of(second, "family"): 1})
    code, user_id = order.code, user.id
    db.session.expunge_all()
    with sql_statements(db.engine) as seen, orm_loads(Order, OrderLine, User) as loaded:
        read = checkout.payable_order_of_user(db.session, f" {code.lower()} ", user_id)  # typed as a customer may
    assert len(seen) == 1 and loaded == [] and len(db.session.identity_map) == 0
    orm = orders.get_order_for_user(db.session, code, user_id)
    assert as_paid_with(read) == as_paid_with(orm)
    assert [line.id for line in read.lines] == sorted(line.id for line in read.lines)  # as written
    assert read.user.full_name == "Ada Lovelace" and len(read.user.user_key) == 32 and len(read.lines) == 3


@pytest.mark.parametrize("code", ["", "not a code", "GCH-ZZZZZZ", "GCH-0OOOOO", "' OR 1=1 --"])
def test_the_payment_read_finds_nothing_for_malformed_or_unknown_codes(app, code):
    with pytest.raises(NotFound):
        checkout.payable_order_of_user(db.session, code, customer().id)


def test_the_payment_read_finds_nothing_in_another_customers_order(app):
    order = place(customer(), {offer_of(make_event(), "solo"): 1})
    with pytest.raises(NotFound):
        checkout.payable_order_of_user(db.session, order.code, customer().id)
    assert checkout.payable_order_of_user(db.session, order.code, order.user_id).code == order.code


def test_a_charge_for_an_order_another_charge_paid_meanwhile_is_refunded(app):
    """Told apart from a double submit by its transaction id: this charge is not the one recorded."""
    event = make_event()
    order = place(customer(), {offer_of(event, "solo"): 1})
    payable_order = payable(order)

    class PaidMeanwhileProvider(MockProvider):
        def charge(self, **kwargs):  # another tab's payment, with another key, lands first
            pay(payable_order, MockProvider())
            return super().charge(**kwargs)

    provider = PaidMeanwhileProvider()
    outcome = pay(payable_order, provider)
    assert not outcome.paid_now and outcome.order.is_paid and outcome.order.paid_at is not None
    assert provider.refund_count == 1
    db.session.expire_all()
    payments = sorted((p.kind, p.succeeded) for p in db.session.get(Order, order.id).payments)
    assert payments == [("charge", True), ("charge", True), ("refund", True)]
    refund = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.type == "order_refunded"))
    assert refund.details["reason"] == "duplicate_charge"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket).where(Ticket.order_id == order.id)) == 1


def test_paying_reads_the_order_once(app):
    """The read transaction ends before the charge without expiring the order the view loaded:
    what is left to write needs no second read of the order, its lines or its payments; and the
    confirmation email is queued without looking for one first (only the paying request gets there)."""
    event = make_event()
    order = place(customer(), {offer_of(event, "duo"): 2})
    order = payable(order)  # as the view reads it
    with sql_statements(db.engine) as seen:
        assert pay(order, MockProvider()).paid_now
    order_reads = re.compile(r"\s*SELECT\b.*?\bFROM (orders|order_lines|payments|email_jobs)\b",
                             re.DOTALL | re.IGNORECASE)
    reads = [statement for statement in seen if order_reads.match(statement)]
    assert reads == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket).where(Ticket.order_id == order.id)) == 2


def test_paying_writes_its_rows_without_the_orm_in_one_statement_on_postgresql_one_each_elsewhere(app):
    """The payment, the tickets (all of them at once), the audit event and the email job are plain
    INSERTs, no unit of work to flush: on PostgreSQL in the one statement that marks the order
    paid, alone in autocommit (no BEGIN, no COMMIT: one round trip); elsewhere one INSERT each."""
    event = make_event()
    order = place(customer(), {offer_of(event, "duo"): 2, offer_of(event, "solo"): 1})
    order = payable(order)  # as the view reads it
    on_postgresql = db.engine.dialect.name == "postgresql"
    wire = WireTrace(db.engine) if on_postgresql else None
    with orm_flushes(db.session) as flushes, sql_statements(db.engine) as seen, \
            (wire.recording() if wire else contextlib.nullcontext()):
        assert pay(order, MockProvider()).paid_now
    writes = [s for s in seen if not re.match(r"\s*(SELECT|COMMIT)\b", s, re.IGNORECASE)]
    if on_postgresql:
        statement, = writes
        assert statement.lstrip().startswith("WITH paid AS (\n    UPDATE orders")
        assert sorted(re.findall(r"INSERT INTO (\w+)", statement)) == ["audit_events", "email_jobs", "payments",
                                                                       "tickets"]
        assert wire.sql() == ["WITH"]
    else:
        inserts = [re.match(r"\s*INSERT INTO (\w+)", s, re.IGNORECASE).group(1) for s in writes
                   if re.match(r"\s*INSERT\b", s, re.IGNORECASE)]
        assert sorted(inserts) == ["audit_events", "email_jobs", "payments", "tickets"]
    assert flushes == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket).where(Ticket.order_id == order.id)) == 3


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="set TEST_DATABASE_URL: the one-statement payment is PostgreSQL's")
def test_paying_in_one_statement_writes_the_rows_the_one_by_one_writes_do(app, monkeypatch):
    """Two orders alike, one paid each way, on PostgreSQL: every column of every row they write
    matches, but for what must differ (ids, codes, keys, the transaction id)."""
    event = make_event()
    buyer = customer()
    lines = {offer_of(event, "duo"): 2, offer_of(event, "solo"): 1}
    codes = [place(buyer, lines).code, place(buyer, lines).code]
    at = now()
    for code, way in zip(codes, ("one_by_one", "in_one_statement"), strict=True):
        with monkeypatch.context() as patch:
            patch.setattr(checkout, "_record_paid_in_one_statement", getattr(checkout, f"_record_paid_{way}"))
            order = checkout.payable_order_of_user(db.session, code, buyer.id)
            assert pay(order, MockProvider(), at=at).paid_now
    db.session.expire_all()
    ids = [db.session.scalar(sa.select(Order.id).where(Order.code == code)) for code in codes]

    def rows(model, order_id, *, differ=(), order_by="id"):
        table = model.__table__
        found = db.session.execute(sa.select(table).where(table.c.order_id == order_id)
                                   .order_by(table.c[order_by])).mappings().all()
        return [{k: v for k, v in row.items() if k not in {"id", "order_id", *differ}} for row in found]

    by_one, in_one = ids
    assert rows(Payment, by_one, differ={"transaction_id"}) == rows(Payment, in_one, differ={"transaction_id"})
    assert rows(EmailJob, by_one) == rows(EmailJob, in_one)
    ticket_differ = {"number", "order_line_id", "purchase_key", "key_digest"}
    assert rows(Ticket, by_one, differ=ticket_differ) == rows(Ticket, in_one, differ=ticket_differ)
    assert len(rows(Ticket, in_one)) == 3
    orders_paid = [db.session.execute(sa.select(Order.status, Order.paid_at).where(Order.id == i)).one() for i in ids]
    assert orders_paid[0] == orders_paid[1] == ("paid", at)
    audits = [db.session.execute(sa.select(AuditEvent).where(AuditEvent.type == "order_paid",
                                                             AuditEvent.details["order"].as_string() == code)
                                 ).scalar_one() for code in codes]
    assert [(a.actor_id, a.subject_user_id, a.ip_address) for a in audits] == [(buyer.id, buyer.id, None)] * 2
    assert [{k: v for k, v in a.details.items() if k != "order"} for a in audits] == [
        {"amount_cents": audits[0].details["amount_cents"], "tickets": 3}] * 2
    tickets = db.session.scalars(sa.select(Ticket).where(Ticket.order_id == in_one).order_by(Ticket.id)).all()
    assert [t.number for t in tickets] == [f"{codes[1]}-{i:02d}" for i in range(1, 4)]
    assert all(t.key_digest == hashlib.sha256(buyer.user_key + t.purchase_key).digest() for t in tickets)


def _purchase(user, solo) -> None:
    """What one buyer's purchase runs, service by service: add to the cart, see it, place, read,
    pay, read again and list the orders."""
    from app.services import cart

    at = now()
    assert cart.offer_for_cart(db.session, solo.id, quantity=1, now=at)
    stored = cart.load_user_cart(db.session, user.id)
    cart.save_user_cart(db.session, user.id, {solo.id: 1}, now=at, stored=stored)
    assert cart.describe_cart(db.session, cart.load_user_cart(db.session, user.id), now=at).total_cents
    placed = place(user, {solo: 1}, at=at)
    order = orders.get_order_for_user(db.session, placed.code, user.id)
    assert pay(order, MockProvider(), at=at).paid_now
    assert orders.get_order_for_user(db.session, placed.code, user.id).is_paid
    assert [o.code for o in orders.list_orders_for_user(db.session, user.id)] == [placed.code]


def test_a_purchase_runs_statements_built_once(app):
    """Building a statement and its cache key on every call cost about as much as running it:
    the second buyer's purchase (and their orders list) runs the very statement objects the first one ran."""
    solo = offer_of(make_event(capacity=50), "solo")

    def buy(user) -> set[int]:
        built: set[int] = set()

        def on_execute(state):
            if not (state.is_column_load or state.is_relationship_load):
                built.add(id(state.statement))

        sa.event.listen(db.session, "do_orm_execute", on_execute)
        try:
            _purchase(user, solo)
        finally:
            sa.event.remove(db.session, "do_orm_execute", on_execute)
        return built

    first, second = buy(customer()), buy(customer())
    assert len(second) >= (7 if db.engine.dialect.name == "postgresql" else 10)
    assert second <= first, f"{len(second - first)} statement(s) built again"


def test_a_purchase_maps_its_results_columns_once(app, monkeypatch):
    """SQLAlchemy maps a result's columns once per compiled statement, unless it cannot tell them
    from the statement: a bare `text` (PostgreSQL's placement and payment) was mapped again from the
    cursor's description on every run. The second buyer's purchase maps none."""
    from sqlalchemy.engine.cursor import CursorResultMetaData

    solo = offer_of(make_event(capacity=50), "solo")
    _purchase(customer(), solo)
    mapped = []
    real_init = CursorResultMetaData.__init__

    def counting(self, parent, cursor_description, *args, **kwargs):
        mapped.append([column[0] for column in cursor_description])
        real_init(self, parent, cursor_description, *args, **kwargs)

    monkeypatch.setattr(CursorResultMetaData, "__init__", counting)
    _purchase(customer(), solo)
    assert mapped == []


def test_paying_twice_charges_once(app):
    event = make_event()
    order = place(customer(), {offer_of(event, "solo"): 1})
    provider = MockProvider()
    assert pay(order, provider).paid_now
    assert not pay(order, provider).paid_now
    assert provider.charge_count == 1 and provider.attempt_count == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1


def test_replayed_charge_for_a_still_pending_order_is_recorded_once(app):
    """A first submit charged but died before its commit: the retry gets the provider's replay."""
    event = make_event()
    order = place(customer(), {offer_of(event, "solo"): 1})
    provider = MockProvider()
    provider.charge(amount_cents=order.total_cents, currency="EUR", card=card(), idempotency_key=order.idempotency_key)
    outcome = pay(order, provider)
    assert outcome.paid_now and provider.charge_count == 1
    assert [p.succeeded for p in order.payments] == [True]


@pytest.mark.parametrize("number,code", [("4000000000000002", "card_declined"),
                                         ("4000000000009995", "insufficient_funds")])
def test_a_decline_keeps_the_order_pending_with_a_fresh_key(app, number, code):
    event = make_event()
    order = place(customer(), {offer_of(event, "solo"): 1})
    first_key = order.idempotency_key
    provider = MockProvider()
    with pytest.raises(checkout.PaymentDeclined) as error:
        pay(order, provider, number)
    assert error.value.code == code
    db.session.refresh(order)
    assert order.status == "pending" and order.idempotency_key != first_key
    assert [(p.succeeded, p.error_code, p.card_last4) for p in order.payments] == [(False, code, number[-4:])]
    assert pay(order, provider).paid_now  # the new key lets the customer pay with another card
    assert provider.charge_count == 1


def test_provider_unavailable_keeps_the_key_for_a_safe_retry(app):
    event = make_event()
    order = place(customer(), {offer_of(event, "solo"): 1})
    key = order.idempotency_key
    provider = MockProvider()
    with pytest.raises(checkout.PaymentDeclined) as error:
        pay(order, provider, "4000000000000119")
    assert error.value.code == "provider_unavailable"
    db.session.refresh(order)
    assert order.idempotency_key == key and order.status == "pending"
    assert pay(order, provider).paid_now


def test_paying_an_expired_hold_is_refused_and_releases_the_seats(app):
    event = make_event()
    t0 = now()
    order = place(customer(), {offer_of(event, "family"): 1}, at=t0)
    provider = MockProvider()
    with pytest.raises(Conflict) as error:
        pay(order, provider, at=t0 + timedelta(minutes=HOLD))
    assert error.value.code == "order_expired"
    assert provider.attempt_count == 0
    assert seats_taken(event.id) == 0


def test_a_charge_that_lands_after_the_hold_expired_is_refunded(app):
    event = make_event()
    t0 = now()
    order = place(customer(), {offer_of(event, "family"): 1}, at=t0)

    class ExpiringProvider(MockProvider):
        def charge(self, **kwargs):  # the expiry job runs while the bank answers
            result = super().charge(**kwargs)
            orders.expire_stale_orders(db.session, now=t0 + timedelta(hours=1))
            return result

    provider = ExpiringProvider()
    with pytest.raises(Conflict) as error:
        pay(order, provider, at=t0 + timedelta(minutes=1))
    assert error.value.code == "order_expired_refunded"
    assert provider.charge_count == 1 and provider.refund_count == 1
    db.session.refresh(order)
    assert order.status == "expired"
    assert [(p.kind, p.succeeded) for p in order.payments] == [("charge", True), ("refund", True)]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 0


# --------------------------------------------------------------------------- cancellation
def paid_order(event, user=None, provider=None):
    order = place(user or customer(), {offer_of(event, "duo"): 1, offer_of(event, "solo"): 2})
    pay(order, provider or MockProvider())
    return order


def test_cancel_refunds_voids_tickets_and_releases_seats(app):
    event = make_event()
    provider = MockProvider()
    order = paid_order(event, provider=provider)
    assert seats_taken(event.id) == 4
    orders.cancel_order(db.session, order, actor_id=order.user_id, now=now(), provider=provider)

    assert order.status == "cancelled" and order.cancelled_at is not None
    assert seats_taken(event.id) == 0
    tickets = db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id)).all()
    assert tickets and all(t.voided_at is not None for t in tickets)
    refund = [p for p in order.payments if p.kind == "refund"]
    assert len(refund) == 1 and refund[0].amount_cents == order.total_cents and refund[0].card_last4 == "4242"
    assert provider.refund_count == 1
    types = set(db.session.scalars(sa.select(AuditEvent.type)))
    assert {"order_paid", "order_cancelled", "order_refunded"} <= types


def test_cancelling_twice_refunds_once(app):
    event = make_event()
    provider = MockProvider()
    order = paid_order(event, provider=provider)
    orders.cancel_order(db.session, order, actor_id=order.user_id, now=now(), provider=provider)
    with pytest.raises(Conflict) as error:
        orders.cancel_order(db.session, order, actor_id=order.user_id, now=now(), provider=provider)
    assert error.value.code == "order_not_cancellable"
    assert provider.refund_count == 1 and seats_taken(event.id) == 0


def test_customer_cannot_cancel_after_the_start_but_an_admin_can(app):
    event = make_event()
    provider = MockProvider()
    order = paid_order(event, provider=provider)
    later = event.starts_at + timedelta(minutes=5)
    with pytest.raises(Conflict) as error:
        orders.cancel_order(db.session, order, actor_id=order.user_id, now=later, provider=provider)
    assert error.value.code == "order_event_started"
    admin = customer(role="admin")
    orders.cancel_order(db.session, order, actor_id=admin.id, now=later, provider=provider, before_start_only=False)
    assert order.status == "cancelled"


def test_an_order_with_a_used_ticket_cannot_be_cancelled(app):
    event = make_event()
    order = paid_order(event)
    ticket = db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id)).first()
    ticket.checked_in_at = now()
    db.session.commit()
    with pytest.raises(Conflict) as error:
        orders.cancel_order(db.session, order, actor_id=order.user_id, now=now(), provider=MockProvider())
    assert error.value.code == "order_ticket_used"


def test_a_failed_refund_changes_nothing(app):
    event = make_event()
    order = paid_order(event)

    class Broken(MockProvider):
        def refund(self, **kwargs):
            return super().refund(**{**kwargs, "transaction_id": "not-a-mock-id"})

    with pytest.raises(Conflict) as error:
        orders.cancel_order(db.session, order, actor_id=order.user_id, now=now(), provider=Broken())
    assert error.value.code == "refund_failed"
    db.session.refresh(order)
    assert order.status == "paid" and seats_taken(event.id) == 4


def cancellation_jobs(order: Order) -> list[tuple[str, str]]:
    db.session.expire_all()
    return [(job.kind, job.status) for job in db.session.scalars(
        sa.select(EmailJob).where(EmailJob.order_id == order.id, EmailJob.kind != "order_confirmation"))]


def test_cancelling_queues_one_email_that_says_who_cancelled(app):
    event = make_event()
    provider = MockProvider()
    by_owner, by_admin = paid_order(event, provider=provider), paid_order(event, provider=provider)
    admin = customer(role="admin")
    orders.cancel_order(db.session, by_owner, actor_id=by_owner.user_id, now=now(), provider=provider)
    orders.cancel_order(db.session, by_admin, actor_id=admin.id, now=now(), provider=provider,
                        before_start_only=False)
    assert cancellation_jobs(by_owner) == [("order_cancelled", "pending")]
    assert cancellation_jobs(by_admin) == [("order_cancelled_by_organiser", "pending")]
    with pytest.raises(Conflict):  # a second cancel changes nothing, so queues nothing
        orders.cancel_order(db.session, by_owner, actor_id=by_owner.user_id, now=now(), provider=provider)
    assert cancellation_jobs(by_owner) == [("order_cancelled", "pending")]


def test_a_refused_cancellation_queues_no_email(app):
    event = make_event()
    order = paid_order(event)
    later = event.starts_at + timedelta(minutes=5)
    with pytest.raises(Conflict):
        orders.cancel_order(db.session, order, actor_id=order.user_id, now=later, provider=MockProvider())
    assert cancellation_jobs(order) == []


def test_pending_orders_are_not_cancellable(app):
    event = make_event()
    order = place(customer(), {offer_of(event, "solo"): 1})
    with pytest.raises(Conflict):
        orders.cancel_order(db.session, order, actor_id=order.user_id, now=now(), provider=MockProvider())


def test_seats_never_go_negative_or_over_capacity(app):
    event = make_event(capacity=6)
    provider = MockProvider()
    order = paid_order(event, provider=provider)
    orders.cancel_order(db.session, order, actor_id=order.user_id, now=now(), provider=provider)
    orders.release_seats(db.session, {event.id: 3})  # a stray release cannot go below zero
    db.session.commit()
    assert seats_taken(event.id) == 0
    for _ in range(3):
        assert orders.take_seats(db.session, event.id, 2)
    assert not orders.take_seats(db.session, event.id, 1)
    db.session.commit()
    assert db.session.get(Event, event.id).seats_left == 0
