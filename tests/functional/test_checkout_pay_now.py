"""Paying on the checkout review: one submit places the order and pays it (POST /cart/checkout).

A card typed wrong shows the review again with nothing placed; a refused charge leaves the order
placed and pending, payable from its page; the same review form sent twice, one after the other
or at once, places and charges one order."""
from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import EmailJob, Event, Order, Payment, Ticket
from app.services import checkout, orders
from app.services.errors import Conflict
from app.services.payments import CardDetails
from tests.checkers import sql_statements
from tests.functional.test_checkout_payment import (
    CARD_TEXTS,
    RendezvousProvider,
    assert_card_not_echoed,
    count,
    dump_database,
)
from tests.shop import (
    CVV,
    GOOD_CARD,
    HOLDER,
    add_to_cart,
    card_form,
    customer,
    login,
    make_event,
    offer_of,
    pay,
    pay_now,
    placed_code,
    review_form,
    seats_taken,
)

THIS_YEAR = datetime.now(UTC).year


def text(response) -> str:
    return response.get_data(as_text=True)


def orders_of(user_id: int) -> list[Order]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Order).where(Order.user_id == user_id).order_by(Order.id)))


@pytest.fixture
def provider(app):
    return app.extensions["payment_provider"]


@pytest.fixture
def buyer(client, auth):
    """A logged-in customer with one Duo and one Family in the cart (€265.00), of an event of 100 seats."""
    user = customer(first_name="Ada", last_name="Lovelace")
    login(auth, client, user)
    event = make_event()
    add_to_cart(client, offer_of(event, "duo"), 1)
    add_to_cart(client, offer_of(event, "family"), 1)
    return user, event


# --------------------------------------------------------------------------- the review page
def test_the_review_page_has_a_card_form_that_places_and_pays(client, buyer):
    body = text(client.get("/cart/checkout"))
    form = re.search(r'<form method="post" action="/cart/checkout" novalidate id="payment-form".*?</form>', body,
                     re.DOTALL).group(0)
    assert "Pay €265.00</button>" in form
    assert 'name="expected_total_cents" type="hidden" value="26500"' in form
    assert re.search(r'name="checkout_key" type="hidden" value="[A-Za-z0-9_-]{32}"', form)
    assert 'value="Ada Lovelace"' in form  # the customer's name, as the card holder by default
    for label in ("Card number", "Month (MM)", "Year (YYYY)", "Security code (CVV)"):
        assert label in form
    assert "Place order, pay later · €265.00" in body  # the other way: hold the seats, pay on the order's page
    assert 'id="test-cards"' in body


def test_each_review_page_draws_its_own_checkout_key(client, buyer):
    keys = {review_form(client)["checkout_key"] for _ in range(3)}
    assert len(keys) == 3


def test_the_kept_checkout_form_is_the_form_rendered_in_full(app, client, auth):
    """Filled in, the review's kept card form is the form as the template renders it in full: the
    total, the page's key, the customer's name (escaped), the session's CSRF token."""
    from flask import render_template

    from app.orders.forms import CheckoutPaymentForm

    login(auth, client, customer(first_name='Zoë "Z"', last_name="<O'Hara> & Co"))
    add_to_cart(client, offer_of(make_event(), "duo"), 2)
    page = text(client.get("/cart/checkout"))
    key = re.search(r'name="checkout_key" type="hidden" value="([^"]+)"', page).group(1)
    with app.test_request_context():
        whole = render_template("orders/_payment_form.html", action="/cart/checkout", pay_amount="€190.00",
                                form=CheckoutPaymentForm(holder="Zoë \"Z\" <O'Hara> & Co", expected_total_cents=19000,
                                                         checkout_key=key))

    def form_of(html: str) -> str:
        form = re.search(r'<form method="post" action="/cart/checkout".*?</form>', html, re.DOTALL).group(0)
        return re.sub(r'(name="csrf_token" type="hidden" value=")[^"]*"', r'\1T"', form)

    assert form_of(page) == form_of(whole)
    assert "GuichetPay" not in page


def test_an_unverified_customer_sees_no_card_form_and_cannot_pay(client, auth, provider):
    user = customer(email_verified_at=None)
    login(auth, client, user)
    add_to_cart(client, offer_of(make_event(), "solo"))
    body = text(client.get("/cart/checkout"))
    assert 'id="verify-first"' in body and 'id="payment-form"' not in body
    response = client.post("/cart/checkout", data={"expected_total_cents": 5000, "checkout_key": "k" * 32}
                           | card_form(), follow_redirects=True)
    assert "Please verify your email address before you check out." in text(response)
    assert orders_of(user.id) == [] and provider.attempt_count == 0


# --------------------------------------------------------------------------- paying
def test_paying_on_the_review_places_the_order_pays_it_and_empties_the_cart(client, buyer, provider, outbox):
    user, event = buyer
    response = pay_now(client)
    code = placed_code(response)
    [order] = orders_of(user.id)
    assert order.code == code and order.status == "paid" and order.total_cents == 26500
    assert seats_taken(event.id) == 6
    assert count(Ticket, Ticket.order_id == order.id) == 2
    [payment] = order.payments
    assert payment.succeeded and payment.card_last4 == "4242" and provider.charge_count == 1
    page = text(client.get(response.headers["Location"]))
    assert "Payment accepted: your order is paid and your tickets are ready." in page
    assert "Your order is paid" in page and 'id="payment-form"' not in page
    assert "Your cart is empty" in text(client.get("/cart/"))
    assert len(outbox) == 1 and code in outbox[0].subject


def test_the_tickets_paid_on_the_review_carry_the_buyers_double_key_name_and_lines(client, buyer):
    """The payment issues the tickets from the order as placed and the buyer as read with the
    lock (nothing read back): each ticket is bound to the buyer's user key, named after the buyer,
    and one per line's offer, with its persons."""
    from app.services.signing import double_key_digest

    user, event = buyer
    pay_now(client)
    [order] = orders_of(user.id)
    tickets = db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id)).all()
    assert [(t.order_line_id, t.offer_id, t.event_id, t.persons) for t in tickets] == \
        [(line.id, line.offer_id, event.id, line.persons) for line in order.lines]
    assert {t.holder_name for t in tickets} == {"Ada Lovelace"} and {t.user_id for t in tickets} == {user.id}
    assert all(t.key_digest == double_key_digest(user.user_key, t.purchase_key) for t in tickets)


@pytest.mark.app_config(MAIL_QUEUE=True)
def test_with_the_mail_queue_paying_on_the_review_queues_the_confirmation(client, buyer, outbox):
    user, _event = buyer
    response = pay_now(client)
    [order] = orders_of(user.id)
    assert order.status == "paid" and outbox == []
    assert count(EmailJob, EmailJob.order_id == order.id) == 1
    assert "will follow in a few minutes" in text(client.get(response.headers["Location"]))


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"number": "4242 4242 4242 4241"}, "number", "This card number is not valid. Please check the digits."),
    ({"number": ""}, "number", "This card number is not valid."),
    ({"month": "13"}, "exp_year", "Enter the card&#39;s expiry month (1–12) and year."),
    ({"month": "01", "year": str(THIS_YEAR - 1)}, "exp_year", "This card has expired."),
    ({"cvv": "12a"}, "cvv", "Enter the 3-digit security code printed on the back of the card."),
    ({"holder": "  "}, "holder", "Enter the name printed on the card."),
])
def test_a_card_typed_wrong_shows_the_review_again_and_places_nothing(client, buyer, provider, changes, field,
                                                                      message):
    user, event = buyer
    review = review_form(client)
    response = pay_now(client, review=review, **changes)
    assert response.status_code == 422
    body = text(response)
    assert "Review your order" in body and "€265.00" in body
    errors = re.search(rf'<div id="{field}-errors" class="invalid-feedback">(.*?)</div>\s*</div>', body, re.DOTALL)
    assert errors and message in errors.group(1)
    assert_card_not_echoed(body)
    if "holder" not in changes:
        assert f'value="{HOLDER}"' in body  # what is safe to keep is kept
    if "year" not in changes:
        assert f'value="{THIS_YEAR + 3}"' in body
    assert f'name="checkout_key" type="hidden" value="{review["checkout_key"]}"' in body  # the same checkout
    assert orders_of(user.id) == [] and seats_taken(event.id) == 0 and provider.attempt_count == 0
    assert "€265.00" in text(client.get("/cart/"))  # the cart is as it was
    # corrected, the same form places and pays
    assert placed_code(pay_now(client, review=review))
    assert [order.status for order in orders_of(user.id)] == ["paid"]


@pytest.mark.parametrize(("number", "reason"), [
    ("4000 0000 0000 0002", "Your bank declined the payment."),
    ("4000 0000 0000 9995", "declined for insufficient funds"),
    ("4000 0000 0000 0119", "We could not reach the payment service."),
])
def test_a_refused_charge_leaves_the_order_placed_and_payable_from_its_page(client, buyer, provider, number, reason):
    user, event = buyer
    response = pay_now(client, number)
    code = placed_code(response)
    [order] = orders_of(user.id)
    assert order.status == "pending" and seats_taken(event.id) == 6  # the seats are held
    assert [(p.succeeded, p.card_last4) for p in order.payments] == [(False, number[-4:])]
    page = text(client.get(response.headers["Location"]))
    assert f"Order {code} is placed and your seats are held, but it is not paid yet." in page
    assert reason in page
    assert f'action="/orders/{code}/pay"' in page  # pay it there
    assert "Your cart is empty" in text(client.get("/cart/"))  # the order took the lines
    assert pay(client, code).status_code == 303
    assert [o.status for o in orders_of(user.id)] == ["paid"] and provider.charge_count == 1


def test_a_sold_out_event_places_nothing_and_charges_nothing(client, auth, provider):
    user = customer()
    login(auth, client, user)
    event = make_event(capacity=4)
    add_to_cart(client, offer_of(event, "duo"))
    review = review_form(client)
    event.seats_taken = 3  # other buyers, since the review
    db.session.commit()
    response = pay_now(client, review=review)
    assert response.status_code == 303 and response.headers["Location"].endswith("/cart/checkout")
    assert "sold out" in text(client.get("/cart/checkout"))
    assert orders_of(user.id) == [] and provider.attempt_count == 0 and seats_taken(event.id) == 3


def test_a_total_changed_since_the_review_places_nothing(client, buyer, provider):
    user, event = buyer
    review = review_form(client)
    add_to_cart(client, offer_of(event, "solo"))  # another tab
    response = pay_now(client, review=review)
    assert response.headers["Location"].endswith("/cart/checkout")
    assert "Prices or availability changed since you reviewed your order." in text(client.get("/cart/checkout"))
    assert orders_of(user.id) == [] and provider.attempt_count == 0


@pytest.mark.parametrize("review", [
    {},  # neither field
    {"expected_total_cents": "26500"},  # no key
    {"expected_total_cents": "26500", "checkout_key": "short"},
    {"expected_total_cents": "26500", "checkout_key": "x" * 31 + "!"},
    {"expected_total_cents": "lots", "checkout_key": "k" * 32},
])
def test_a_review_form_without_its_total_or_key_places_nothing(client, buyer, provider, review):
    user, _event = buyer
    response = client.post("/cart/checkout", data=review | card_form())
    assert response.status_code == 303 and response.headers["Location"].endswith("/cart/checkout")
    assert "This review page has expired." in text(client.get("/cart/checkout"))
    assert orders_of(user.id) == [] and provider.attempt_count == 0


def test_the_review_form_is_for_customers_only(app, client, auth):
    anonymous = client.post("/cart/checkout", data=card_form())
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]
    login(auth, client, customer(role="staff"))
    assert client.post("/cart/checkout", data=card_form()).status_code == 403


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_the_review_form_needs_its_csrf_token(client, provider):
    from app.services.cart import save_user_cart
    from tests.factories import DEFAULT_PASSWORD
    from tests.functional.test_auth_login import csrf_token_from, post_login

    user, solo = customer(), offer_of(make_event(), "solo")
    token = csrf_token_from(text(client.get("/auth/login")))
    assert post_login(client, user.email, DEFAULT_PASSWORD, csrf_token=token).status_code == 302
    save_user_cart(db.session, user.id, {solo.id: 1}, now=datetime.now(UTC), stored=None)
    db.session.commit()
    review = review_form(client)
    assert pay_now(client, review=review).status_code == 400  # without the token
    assert orders_of(user.id) == [] and provider.attempt_count == 0
    page = text(client.get("/cart/checkout"))
    form = re.search(r'<form method="post" action="/cart/checkout".*?</form>', page, re.DOTALL).group(0)
    assert pay_now(client, review=review | {"csrf_token": csrf_token_from(form)}).status_code == 303
    assert [order.status for order in orders_of(user.id)] == ["paid"]


@pytest.mark.app_config(PAYMENT_RATE_LIMIT="3/minute")
def test_the_review_and_the_order_page_share_the_card_submit_limit(client, buyer):
    user, _event = buyer
    code = placed_code(pay_now(client, "4000 0000 0000 0002"))  # 1: placed, declined
    for _ in range(2):
        assert pay(client, code, "4000 0000 0000 0002").status_code == 402  # 2, 3
    assert pay(client, code).status_code == 429
    assert [o.status for o in orders_of(user.id)] == ["pending"]


# --------------------------------------------------------------------------- the same form twice
def test_the_same_review_sent_twice_places_and_charges_one_order(client, buyer, provider, outbox):
    user, event = buyer
    review = review_form(client)
    first = pay_now(client, review=review)
    second = pay_now(client, review=review)  # a reload, or the back button and "Pay" again
    assert placed_code(first) == placed_code(second)
    assert "This order is already paid." in text(client.get(second.headers["Location"]))
    [order] = orders_of(user.id)
    assert order.status == "paid" and seats_taken(event.id) == 6
    assert provider.charge_count == 1 and count(Payment, Payment.order_id == order.id) == 1
    assert count(Ticket, Ticket.order_id == order.id) == 2 and len(outbox) == 1


def test_an_old_review_sent_after_the_cart_changed_still_charges_once(client, buyer, provider):
    """The back button to a review already paid, with another line in the cart since: the old form
    finds its order (paid), and the new line stays in the cart for a review of its own."""
    user, event = buyer
    review = review_form(client)
    pay_now(client, review=review)
    add_to_cart(client, offer_of(event, "solo"))
    second = pay_now(client, review=review)
    assert "This order is already paid." in text(client.get(second.headers["Location"]))
    assert len(orders_of(user.id)) == 1 and provider.charge_count == 1
    assert "€50.00" in text(client.get("/cart/"))


def test_two_simultaneous_submits_of_the_review_place_and_charge_one_order(app, client, auth, outbox):
    """Two submits of one review form before the first answer (a double click without JavaScript):
    both wait at the provider, so both had placed (or found) the order before either charged."""
    provider = app.extensions["payment_provider"] = RendezvousProvider()
    user = customer()
    login(auth, client, user)
    event = make_event(capacity=200)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    browsers = [app.test_client(), app.test_client()]
    for browser in browsers:
        browser.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
    rounds = 3
    for _ in range(rounds):
        add_to_cart(client, offer_of(event, "solo"))
        review = review_form(client)
        provider.barrier = threading.Barrier(2)
        codes = []
        threads = [threading.Thread(target=lambda b=browser, r=review, out=codes: out.append(placed_code(pay_now(b, review=r))))
                   for browser in browsers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(codes) == 2 and codes[0] == codes[1], codes
    placed = orders_of(user.id)
    assert [order.status for order in placed] == ["paid"] * rounds
    assert provider.calls == 2 * rounds and provider.charge_count == rounds
    assert seats_taken(event.id) == rounds
    for order in placed:
        assert count(Payment, Payment.order_id == order.id) == 1
        assert count(Ticket, Ticket.order_id == order.id) == 1
    assert len(outbox) == rounds


def test_no_card_number_or_cvv_kept_from_the_review_form(app, client, buyer, caplog):
    caplog.set_level(logging.DEBUG)
    app.logger.setLevel(logging.DEBUG)
    review = review_form(client)
    pay_now(client, "4242 4242 4242 4241", review=review)  # typed wrong
    code = placed_code(pay_now(client, "4000 0000 0000 0002", review=review))  # declined
    pay(client, code, "4000 0000 0000 9995")
    pay(client, code)
    everything = "\n".join(dump_database())
    logged = caplog.text + "\n".join(str(record.args) + str(record.__dict__) for record in caplog.records)
    with client.session_transaction() as session:
        stored = repr(dict(session))
    for where in (everything, logged, stored):
        for number in (*CARD_TEXTS, "4242424242424241", "4242 4242 4242 4241"):
            assert number not in where
        assert not re.search(rf"(?<![0-9A-Za-z]){CVV}(?![0-9A-Za-z])", where)


# --------------------------------------------------------------------------- the services
def card() -> CardDetails:
    return CardDetails(number=GOOD_CARD, exp_month="12", exp_year=str(THIS_YEAR + 2), cvv=CVV, holder=HOLDER)


def place(user, items, total, key, **kwargs):
    return orders.place_order(db.session, user=user, items=items, expected_total_cents=total,
                              now=datetime.now(UTC), hold_minutes=15, max_tickets_per_event=10, checkout_key=key,
                              **kwargs)


def test_placing_twice_with_one_checkout_key_hands_back_the_first_order(app):
    """The second placement saw the cart before the first emptied it (two submits at once): the
    key's unique constraint stops its order, and the first one is handed back."""
    user, solo = customer(), offer_of(make_event(capacity=10), "solo")
    key = orders.new_idempotency_key()
    first = place(user, {solo.id: 2}, 10000, key)
    second = place(user, {solo.id: 2}, 10000, key)
    assert second.id == first.id and seats_taken(solo.event_id) == 2
    assert len(orders_of(user.id)) == 1
    assert place(user, {}, 10000, key).id == first.id  # the cart emptied by the first: still that order


def test_the_checkout_key_hands_back_the_order_when_the_second_placement_hits_the_limit(app):
    """A buyer near the ticket limit sends the review twice: the second is over the limit only
    because of the first, which it hands back."""
    user, solo = customer(), offer_of(make_event(capacity=50), "solo")
    key = orders.new_idempotency_key()
    first = place(user, {solo.id: 6}, 30000, key)
    assert place(user, {solo.id: 6}, 30000, key).id == first.id
    with pytest.raises(Conflict) as refused:
        place(user, {solo.id: 6}, 30000, orders.new_idempotency_key())  # another review: over the limit
    assert refused.value.code == "ticket_limit_reached"


def test_another_buyers_checkout_key_is_refused(app):
    solo = offer_of(make_event(), "solo")
    owner, other = customer(), customer()
    key = orders.new_idempotency_key()
    place(owner, {solo.id: 1}, 5000, key)
    with pytest.raises(Conflict) as refused:
        place(other, {solo.id: 1}, 5000, key)
    assert refused.value.code == "checkout_expired"
    assert orders_of(other.id) == [] and seats_taken(solo.event_id) == 1


def test_place_and_pay_names_the_order_when_the_charge_is_refused(app, provider):
    user, solo = customer(), offer_of(make_event(), "solo")
    declined = CardDetails(number="4000000000000002", exp_month="12", exp_year=str(THIS_YEAR + 2), cvv=CVV,
                           holder=HOLDER)
    with pytest.raises(checkout.PaymentDeclined) as refused:
        checkout.place_and_pay(db.session, user=user, items={solo.id: 1}, offers=None, expected_total_cents=5000,
                               checkout_key=orders.new_idempotency_key(), card=declined, provider=provider,
                               now=datetime.now(UTC), hold_minutes=15, max_tickets_per_event=10)
    [order] = orders_of(user.id)
    assert refused.value.code == "card_declined" and refused.value.params["order"] == order.code
    assert order.status == "pending"
    outcome = checkout.place_and_pay(db.session, user=user, items={solo.id: 1}, offers=None,
                                     expected_total_cents=5000, checkout_key=orders.new_idempotency_key(),
                                     card=card(), provider=provider, now=datetime.now(UTC), hold_minutes=15,
                                     max_tickets_per_event=10)
    assert outcome.paid_now and outcome.order.status == "paid" and len(orders_of(user.id)) == 2


# --------------------------------------------------------------------------- what it costs
@pytest.mark.app_config(MAIL_QUEUE=True)
def test_paying_on_the_review_reads_the_cart_once_and_never_the_user_or_the_order_again(client, auth):
    """The cart and its offers in one statement; the order paid as its placement wrote it, with the
    buyer's key and name read with the buyer's lock, so not read back; and the signed-in user,
    expired by the payment's commit, not read again to update the navbar's count."""
    login(auth, client, customer())
    add_to_cart(client, offer_of(make_event(), "family"), 2)
    review = review_form(client)
    with sql_statements(db.engine) as seen:
        response = pay_now(client, review=review)
    assert response.status_code == 303
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len([s for s in reads if "FROM cart_items JOIN offers" in s]) == 1
    assert not [s for s in reads if "FROM orders JOIN users" in s], reads  # the payable order is not read back
    buyer = [s for s in reads if s.lstrip().startswith("SELECT users.")]
    assert len(buyer) == 1 and "users.user_key" in buyer[0] and "AS lapsed" in buyer[0], reads  # with the lock
    assert "Cart" in text(client.get("/orders/")) and "Cart (" not in text(client.get("/orders/"))


def test_a_sold_out_placement_does_not_read_the_user_again_after_its_rollback(client, auth):
    """A refused placement rolls back, which expires the signed-in user: what follows (the
    checkout key's lookup, the route's redirect) must not read it again."""
    login(auth, client, customer())
    event = make_event(capacity=2)
    add_to_cart(client, offer_of(event, "duo"))
    review = review_form(client)
    with db.engine.begin() as other_buyer:  # not the request's session: that would expire its user
        other_buyer.execute(sa.update(Event).where(Event.id == event.id).values(seats_taken=1))
    with sql_statements(db.engine) as seen:
        response = pay_now(client, review=review)
    assert response.headers["Location"].endswith("/cart/checkout")
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    # the only read of users: the buyer's, with the lock (no row lock on SQLite: the write lock before it)
    assert not [s for s in reads if s.lstrip().startswith("SELECT users.") and "AS lapsed" not in s], reads
