"""Orders through HTTP: place, see, pay, list, expire, cancel — and nobody else's order."""
from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from app.extensions import db
from app.models import Order, Payment, Ticket
from tests.checkers import orm_loads, sql_statements
from tests.shop import (
    add_to_cart,
    buy,
    card_form,
    customer,
    login,
    make_event,
    offer_of,
    pay,
    place_order,
    placed_code,
    reviewed_total,
    seats_taken,
)


def text(response) -> str:
    return response.get_data(as_text=True)


def order_by_code(code: str) -> Order:
    db.session.expire_all()
    return db.session.scalar(sa.select(Order).where(Order.code == code))


@pytest.fixture
def shopper(client, auth):
    user = customer(first_name="Camille", last_name="Martin")
    login(auth, client, user)
    return user


def test_whole_purchase(client, shopper, outbox):
    event = make_event(title="Tennis — Women's Final", capacity=50)
    duo, family = offer_of(event, "duo"), offer_of(event, "family")
    add_to_cart(client, duo, 1)
    add_to_cart(client, family, 2)
    review = client.get("/cart/checkout")
    assert "Place order, pay later · €435.00" in text(review)

    code = placed_code(place_order(client))
    assert seats_taken(event.id) == 2 + 8
    page = client.get(f"/orders/{code}")
    body = text(page)
    assert "Awaiting payment" in body and "Pay €435.00" in body and "Your seats are held until" in body
    assert "Cart (" not in body  # ordered lines left the cart

    response = pay(client, code)
    assert response.status_code == 303
    body = text(client.get(response.headers["Location"]))
    assert "Payment accepted" in body and "Your order is paid" in body
    assert "3 tickets issued for 10 people" in body
    assert "Visa •••• 4242" in body

    order = order_by_code(code)
    assert order.status == "paid"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket).where(Ticket.order_id == order.id)) == 3
    [message] = outbox
    assert message.recipients == [shopper.email]
    assert code in message.subject and code in message.body and "€435.00" in message.body
    assert "ending 4242" in message.body
    assert "Tennis — Women&#39;s Final" in message.html
    assert f"/orders/{code}" in message.body

    listing = text(client.get("/orders/"))
    assert code in listing and "Paid" in listing and "€435.00" in listing


def test_place_order_redirects_to_payment_with_a_held_seats_message(client, shopper):
    event = make_event()
    add_to_cart(client, offer_of(event, "solo"))
    response = place_order(client, )
    code = placed_code(response)
    body = text(client.get(response.headers["Location"]))
    assert f"Order {code} is placed and your seats are held for 15 minutes." in body


def test_a_price_changed_between_review_and_placement_is_refused(client, shopper):
    event = make_event()
    solo = offer_of(event, "solo")
    add_to_cart(client, solo, 2)
    shown = reviewed_total(client)
    assert shown == 10000
    solo.price_cents = 5500  # an administrator changes the price while the buyer reads the review page
    db.session.commit()
    response = place_order(client, expected_total=shown)
    assert response.status_code == 303 and response.headers["Location"].endswith("/cart/checkout")
    body = text(client.get(response.headers["Location"]))
    assert "Prices or availability changed since you reviewed your order" in body
    assert "Place order, pay later · €110.00" in body
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
    assert seats_taken(event.id) == 0
    placed_code(place_order(client))  # confirming the new total works


def test_a_missing_or_bad_expected_total_is_refused(client, shopper):
    event = make_event()
    add_to_cart(client, offer_of(event, "solo"))
    for data in ({}, {"expected_total_cents": "lots"}):
        response = client.post("/orders/", data=data, follow_redirects=True)
        assert "Prices or availability changed" in text(response)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_sold_out_at_placement_is_a_clear_message(client, shopper):
    event = make_event(capacity=10, title="Keirin Finals")
    add_to_cart(client, offer_of(event, "family"), 2)
    shown = reviewed_total(client)
    event.seats_taken = 5  # someone else bought meanwhile
    db.session.commit()
    response = place_order(client, expected_total=shown)
    body = text(client.get(response.headers["Location"]))
    assert "Sorry, Keirin Finals is sold out" in body
    assert seats_taken(event.id) == 5


@pytest.mark.app_config(MAX_TICKETS_PER_EVENT=4)
def test_the_per_account_limit_is_explained(client, shopper):
    event = make_event(title="Handball Final")
    buy(client, (offer_of(event, "family"), 3))
    add_to_cart(client, offer_of(event, "solo"), 2)
    response = place_order(client)
    body = text(client.get(response.headers["Location"]))
    assert "You can buy at most 4 tickets per event. You already hold 3 for Handball Final, so you can add 1 more." in body


# --------------------------------------------------------------------------- privacy
def test_another_customers_order_is_404(client, auth, app):
    event = make_event()
    owner = customer()
    login(auth, client, owner)
    code = buy(client, (offer_of(event, "solo"), 1))

    intruder = app.test_client()
    login(auth, intruder, customer())
    assert intruder.get(f"/orders/{code}").status_code == 404
    assert intruder.post(f"/orders/{code}/pay", data={"number": "4242424242424242"}).status_code == 404
    assert intruder.post(f"/orders/{code}/cancel").status_code == 404
    assert code not in text(intruder.get("/orders/"))
    assert order_by_code(code).status == "pending"


@pytest.mark.parametrize("code", ["GCH-ZZZZZZ", "nonsense", "GCH-0O1IL0", "GCH-" + "A" * 300])
def test_unknown_or_malformed_codes_are_404(client, shopper, code):
    assert client.get(f"/orders/{code}").status_code == 404


def test_order_codes_are_case_insensitive_for_the_owner(client, shopper):
    event = make_event()
    code = buy(client, (offer_of(event, "solo"), 1))
    assert client.get(f"/orders/{code.lower()}").status_code == 200


def test_visitors_are_sent_to_log_in(client):
    response = client.get("/orders/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


# --------------------------------------------------------------------------- expiry
def test_the_cli_expires_stale_orders_and_releases_their_seats(app, client, shopper, runner):
    event = make_event(capacity=20)
    t0 = datetime.now(UTC)
    with freeze_time(t0) as frozen:
        code = buy(client, (offer_of(event, "family"), 2))
        assert seats_taken(event.id) == 8
        frozen.tick(timedelta(minutes=14))
        result = runner.invoke(args=["orders", "expire"])
        assert result.exit_code == 0 and "Expired 0 pending orders" in result.output
        frozen.tick(timedelta(minutes=2))
        result = runner.invoke(args=["orders", "expire"])
        assert "Expired 1 pending order;" in result.output
        assert seats_taken(event.id) == 0
        assert "Expired 0" in runner.invoke(args=["orders", "expire"]).output  # idempotent
    body = text(client.get(f"/orders/{code}"))
    assert "Expired" in body and "Nothing was charged" in body and 'id="payment-form"' not in body


def test_visiting_a_stale_order_expires_it_on_the_spot(client, shopper):
    event = make_event(capacity=20)
    t0 = datetime.now(UTC)
    with freeze_time(t0) as frozen:
        code = buy(client, (offer_of(event, "duo"), 1))
        frozen.tick(timedelta(minutes=15, seconds=1))
        assert "Expired" in text(client.get(f"/orders/{code}"))
        assert seats_taken(event.id) == 0
        assert order_by_code(code).status == "expired"


def test_paying_after_the_hold_expired_is_refused(client, shopper, app):
    event = make_event(capacity=20)
    t0 = datetime.now(UTC)
    with freeze_time(t0) as frozen:
        code = buy(client, (offer_of(event, "duo"), 1))
        frozen.tick(timedelta(minutes=16))
        response = pay(client, code)
    assert "The seats of this order were held for a limited time" in text(client.get(response.headers["Location"]))
    assert app.extensions["payment_provider"].attempt_count == 0
    assert seats_taken(event.id) == 0


def test_the_orders_list_expires_the_customers_stale_orders(client, shopper):
    event = make_event(capacity=20)
    t0 = datetime.now(UTC)
    with freeze_time(t0) as frozen:
        buy(client, (offer_of(event, "solo"), 3))
        frozen.tick(timedelta(minutes=20))
        assert "Expired" in text(client.get("/orders/"))
        assert seats_taken(event.id) == 0


# --------------------------------------------------------------------------- cancellation
def test_cancel_refunds_releases_seats_and_voids_tickets(client, shopper, outbox, app):
    event = make_event(capacity=30)
    code = buy(client, (offer_of(event, "family"), 1), (offer_of(event, "duo"), 1))
    pay(client, code)
    assert seats_taken(event.id) == 6
    page = text(client.get(f"/orders/{code}"))
    assert "Cancel this order and get a refund" in page

    response = client.post(f"/orders/{code}/cancel")
    assert response.status_code == 303
    body = text(client.get(response.headers["Location"]))
    assert f"Order {code} is cancelled" in body and "€265.00 is refunded" in body

    order = order_by_code(code)
    assert order.status == "cancelled"
    assert seats_taken(event.id) == 0
    tickets = db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id)).all()
    assert len(tickets) == 2 and all(t.voided_at for t in tickets)
    refunds = db.session.scalars(sa.select(Payment).where(Payment.order_id == order.id, Payment.kind == "refund")).all()
    assert [r.amount_cents for r in refunds] == [26500]
    assert app.extensions["payment_provider"].refund_count == 1
    assert [m.subject for m in outbox][-1].endswith(f"Your order {code} is cancelled")
    again = client.post(f"/orders/{code}/cancel", follow_redirects=True)
    assert "Only a paid order can be cancelled." in text(again)
    assert app.extensions["payment_provider"].refund_count == 1


def test_no_cancellation_once_the_event_has_started(client, shopper):
    event = make_event(capacity=30, starts_in=timedelta(hours=2))
    code = buy(client, (offer_of(event, "solo"), 1))
    pay(client, code)
    with freeze_time(datetime.now(UTC) + timedelta(hours=3)):
        assert "Cancel this order" not in text(client.get(f"/orders/{code}"))
        response = client.post(f"/orders/{code}/cancel", follow_redirects=True)
        assert "can no longer be cancelled: the event has started" in text(response)
    assert order_by_code(code).status == "paid" and seats_taken(event.id) == 1


def test_a_pending_order_has_no_cancel_button_and_cannot_be_cancelled(client, shopper):
    event = make_event()
    code = buy(client, (offer_of(event, "solo"), 1))
    assert "Cancel this order" not in text(client.get(f"/orders/{code}"))
    assert "Only a paid order can be cancelled." in text(client.post(f"/orders/{code}/cancel", follow_redirects=True))


def test_the_order_page_builds_only_the_form_it_shows(client, shopper, monkeypatch):
    """A pending order's payment form with nothing typed comes from its kept rendering
    (app/orders/blank_form.py): from the second page on, no form is built for it at all."""
    from app.orders import blank_form, routes

    built = []
    for module, name in ((blank_form, "PaymentForm"), (routes, "PaymentForm"), (routes, "CancelOrderForm")):
        form_class = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _c=form_class, _n=name, **k: built.append(_n) or _c(*a, **k))
    codes = [buy(client, (offer_of(make_event(), "solo"), 1)) for _ in range(2)]
    for code in codes:
        assert "payment-form" in text(client.get(f"/orders/{code}"))
    assert built == ["PaymentForm"]  # the kept rendering's, once
    pay(client, codes[0])
    built.clear()
    body = text(client.get(f"/orders/{codes[0]}"))
    assert "payment-form" not in body and "Cancel this order" in body and built == ["CancelOrderForm"]


def payment_form_html(page: str) -> str:
    form = re.search(r'<form method="post" action="[^"]*/pay".*?</form>', page, re.DOTALL).group(0)
    return re.sub(r'(name="csrf_token" type="hidden" value=")[^"]*"', r'\1T"', form)  # tokens are time-stamped


def test_the_kept_payment_form_is_the_form_rendered_for_the_order(app, client, auth):
    """Filled in, the kept rendering is the form as the page rendered it in full: each order's own
    action and amount, the customer's name as the holder (escaped), the session's CSRF token."""
    from flask import render_template

    from app.orders.forms import PaymentForm

    login(auth, client, customer(first_name='Zoë "Z"', last_name="<O'Hara> & Co"))
    event = make_event()
    orders = [(buy(client, (offer_of(event, "solo"), 1)), "€50.00"), (buy(client, (offer_of(event, "duo"), 2)), "€190.00")]
    for code, amount in orders:
        page = text(client.get(f"/orders/{code}"))
        with app.test_request_context():
            whole = render_template("orders/_payment_form.html", form=PaymentForm(holder="Zoë \"Z\" <O'Hara> & Co"),
                                    action=f"/orders/{code}/pay", pay_amount=amount)
        assert payment_form_html(page) == payment_form_html(whole)
        assert f'action="/orders/{code}/pay"' in page and f"Pay {amount}</button>" in page
        assert 'value="Zoë &#34;Z&#34; &lt;O&#39;Hara&gt; &amp; Co"' in page and "GuichetPay" not in page
    assert pay(client, orders[1][0]).status_code == 303  # with the token the page gave


def test_a_holders_name_that_looks_like_a_placeholder_is_shown_as_typed(client, auth):
    from app.orders import blank_form

    name = f"{blank_form.CSRF} {blank_form.CODE} {blank_form.AMOUNT}"
    login(auth, client, customer(first_name=name, last_name="Doe"))
    code = buy(client, (offer_of(make_event(), "solo"), 1))
    page = text(client.get(f"/orders/{code}"))
    assert f'value="{name} Doe"' in page and f'action="/orders/{code}/pay"' in page


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_the_kept_payment_form_carries_the_sessions_own_csrf_token(client):
    from app.services import orders as order_service
    from tests.factories import DEFAULT_PASSWORD
    from tests.functional.test_auth_login import csrf_token_from, post_login

    user, solo = customer(), offer_of(make_event(), "solo")
    token = csrf_token_from(text(client.get("/auth/login")))
    assert post_login(client, user.email, DEFAULT_PASSWORD, csrf_token=token).status_code == 302
    code = order_service.place_order(db.session, user=user, items={solo.id: 1}, expected_total_cents=solo.price_cents,
                                     now=datetime.now(UTC), hold_minutes=15, max_tickets_per_event=10).code
    form = re.search(r'<form method="post" action="[^"]*/pay".*?</form>', text(client.get(f"/orders/{code}")),
                     re.DOTALL).group(0)
    assert pay(client, code).status_code == 400  # without the token
    assert client.post(f"/orders/{code}/pay", data=card_form() | {"csrf_token": csrf_token_from(form)}).status_code == 303
    assert order_by_code(code).status == "paid"


def test_the_order_page_reads_rows_not_orm_objects(client, shopper):
    """Shown twice a purchase, the page reads its order as rows (app/services/order_page.py)."""
    code = buy(client, (offer_of(make_event(title="Rowing"), "duo"), 2))
    with orm_loads(Order, Payment) as loaded:
        pending = text(client.get(f"/orders/{code}"))
        assert loaded == []
        pay(client, code)
        loaded.clear()
        paid = text(client.get(f"/orders/{code}"))
    assert "Rowing" in pending and "Pay €" in pending
    assert "Your order is paid" in paid and "•••• 4242" in paid and "accepted" in paid
    assert loaded == []


def test_paying_reads_the_buyers_key_with_the_order(client, shopper):
    """Issuing tickets needs the user key, which the signed-in user is loaded without: it comes
    with the order's own read, not from a statement of its own inside the payment."""
    code = buy(client, (offer_of(make_event(), "duo"), 2))
    db.session.remove()
    client.get("/orders/")  # the user is in the shared cache (without its secrets), as in production
    db.session.remove()  # and the paying request loads it from there
    with sql_statements(db.engine) as statements:
        assert pay(client, code).status_code == 303
    assert [s for s in statements if s.startswith("SELECT users.")] == []
    db.session.expire_all()
    user_key = db.session.scalar(sa.select(sa.literal_column("user_key")).select_from(sa.table("users"))
                                 .where(sa.column("id") == shopper.id))
    tickets = db.session.scalars(sa.select(Ticket).join(Order).where(Order.code == code)).all()
    assert len(tickets) == 2
    assert all(t.key_digest == hashlib.sha256(user_key + t.purchase_key).digest() for t in tickets)
