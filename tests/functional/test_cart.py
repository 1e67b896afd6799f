"""The cart through HTTP: add, change, remove, flags, the navbar count, the merge at login, checkout access."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import CartItem, Event, Offer, Order
from tests.checkers import orm_loads, sql_statements
from tests.shop import (
    ORDER_URL,
    add_to_cart,
    customer,
    login,
    make_event,
    offer_of,
    place_order,
    reviewed_total,
    seats_taken,
)


def text(response) -> str:
    return response.get_data(as_text=True)


def cart_page(client) -> str:
    response = client.get("/cart/")
    assert response.status_code == 200
    return text(response)


def test_visitor_adds_offers_and_sees_the_total(client):
    event = make_event(title="Swimming — Finals")
    duo, family = offer_of(event, "duo"), offer_of(event, "family")
    response = add_to_cart(client, duo, 2)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/events/{event.slug}")
    followed = client.get(response.headers["Location"])
    assert "Added 2 × Duo for Swimming — Finals to your cart." in text(followed)
    assert "Cart (2)" in text(followed)
    add_to_cart(client, family, 1)
    body = cart_page(client)
    assert "Cart (3)" in body
    assert "€190.00" in body and "€170.00" in body
    assert '<td class="text-end fw-bold" id="cart-total">€360.00</td>' in body
    with client.session_transaction() as session:
        assert session["cart"] == {str(duo.id): 2, str(family.id): 1}


def test_update_and_remove_lines(client):
    event = make_event()
    solo, duo = offer_of(event, "solo"), offer_of(event, "duo")
    add_to_cart(client, solo, 1)
    add_to_cart(client, duo, 1)
    assert client.post(f"/cart/{solo.id}/quantity", data={"quantity": 4}).status_code == 303
    assert "Cart (5)" in cart_page(client)
    assert client.post(f"/cart/{duo.id}/remove").status_code == 303
    body = cart_page(client)
    assert "Cart (4)" in body and "Duo" not in body
    assert client.post(f"/cart/{duo.id}/remove").status_code == 404
    assert client.post(f"/cart/{duo.id}/quantity", data={"quantity": 2}).status_code == 404


@pytest.mark.parametrize("quantity", ["0", "11", "-1", "two", ""])
def test_bad_quantities_are_refused_with_a_message(client, quantity):
    event = make_event()
    solo = offer_of(event, "solo")
    add_to_cart(client, solo, 2)
    response = client.post("/cart/add", data={"offer_id": solo.id, "quantity": quantity}, follow_redirects=True)
    assert response.status_code == 200
    assert "Choose a quantity between 1 and 10." in text(response)
    response = client.post(f"/cart/{solo.id}/quantity", data={"quantity": quantity}, follow_redirects=True)
    assert "Choose a quantity between 1 and 10." in text(response)
    assert "Cart (2)" in cart_page(client)


def test_a_line_is_capped_at_ten(client):
    event = make_event()
    solo = offer_of(event, "solo")
    add_to_cart(client, solo, 8)
    response = add_to_cart(client, solo, 5, follow_redirects=True)
    assert "at most 10 of one offer" in text(response)
    assert "Cart (10)" in cart_page(client)


@pytest.mark.app_config(MAX_CART_LINES=2)
def test_the_cart_has_a_maximum_number_of_lines(client):
    event = make_event()
    add_to_cart(client, offer_of(event, "solo"))
    add_to_cart(client, offer_of(event, "duo"))
    response = add_to_cart(client, offer_of(event, "family"), follow_redirects=True)
    assert "at most 2 different offers" in text(response)
    assert "Cart (2)" in cart_page(client)


def test_offers_not_on_sale_cannot_be_added(client):
    started = make_event(starts_in=-timedelta(minutes=1), title="Started Heats")
    full = make_event(capacity=3, title="Nearly Full Final")
    hidden = make_event(published=False)
    unpublished = make_event()
    offer_of(unpublished, "solo").published = False
    db.session.commit()

    assert add_to_cart(client, 999_999).status_code == 404
    assert add_to_cart(client, offer_of(hidden, "solo")).status_code == 404
    body = text(add_to_cart(client, offer_of(started, "solo"), follow_redirects=True))
    assert "Sales for Started Heats are closed" in body
    body = text(add_to_cart(client, offer_of(full, "family"), follow_redirects=True))
    assert "Nearly Full Final is sold out" in body
    body = text(add_to_cart(client, offer_of(unpublished, "solo"), follow_redirects=True))
    assert "“Solo” is no longer on sale." in body
    assert "Your cart is empty" in cart_page(client)


def test_lines_that_can_no_longer_be_bought_are_flagged(client, auth):
    unpublished, sold_out, tight = make_event(), make_event(capacity=10), make_event(capacity=10)
    add_to_cart(client, offer_of(unpublished, "solo"))
    add_to_cart(client, offer_of(sold_out, "duo"))
    add_to_cart(client, offer_of(tight, "family"), 2)
    offer_of(unpublished, "solo").published = False
    sold_out.seats_taken = 10
    tight.seats_taken = 3  # 7 left, the two Family tickets need 8
    db.session.commit()

    body = cart_page(client)
    assert "This offer is no longer on sale" in body
    assert "Sold out: no seat is left for this offer." in body
    assert "Only 7 seats left for this session" in body
    assert "Continue to checkout</button>" in body and 'id="checkout-link"' not in body

    login(auth, client, customer())
    review = client.get("/cart/checkout")
    assert "can no longer be bought" in text(review) and "place-order-form" not in text(review)


def test_deleted_offers_silently_leave_the_cart(client):
    event = make_event()
    add_to_cart(client, offer_of(event, "solo"), 2)
    db.session.delete(event)
    db.session.commit()
    assert "Your cart is empty" in cart_page(client)
    with client.session_transaction() as session:
        assert "cart" not in session


def test_tampered_session_cart_is_ignored(client):
    event = make_event()
    solo = offer_of(event, "solo")
    with client.session_transaction() as session:
        session["cart"] = {str(solo.id): 3, "abc": 2, "7": "many", str(solo.id + 1000): 0, "8": True}
    body = cart_page(client)
    assert "Cart (3)" in body


# --------------------------------------------------------------------------- signed in
def test_the_visitor_cart_is_merged_into_the_account_at_login(client, auth):
    event = make_event()
    solo, duo, family = offer_of(event, "solo"), offer_of(event, "duo"), offer_of(event, "family")
    user = customer()
    db.session.add_all([CartItem(user_id=user.id, offer_id=duo.id, quantity=1),
                        CartItem(user_id=user.id, offer_id=solo.id, quantity=9)])
    db.session.commit()
    add_to_cart(client, duo, 2)
    add_to_cart(client, family, 1)
    add_to_cart(client, solo, 3)
    login(auth, client, user)

    stored = dict(db.session.execute(sa.select(CartItem.offer_id, CartItem.quantity)
                                     .where(CartItem.user_id == user.id)).all())
    assert stored == {duo.id: 3, solo.id: 10, family.id: 1}
    assert "Cart (14)" in cart_page(client)
    with client.session_transaction() as session:
        assert "cart" not in session


def test_the_account_cart_survives_logout_and_login(client, auth):
    event = make_event()
    user = customer()
    login(auth, client, user)
    add_to_cart(client, offer_of(event, "family"), 2)
    assert "Cart (2)" in cart_page(client)
    auth.logout()
    assert "Cart (2)" not in cart_page(client)
    login(auth, client, user)
    assert "Cart (2)" in cart_page(client)


def test_pages_that_show_the_cart_count_it_from_the_rows_they_read(client, auth):
    event = make_event()
    login(auth, client, customer())
    add_to_cart(client, offer_of(event, "family"), 2)
    add_to_cart(client, offer_of(event, "solo"), 1)
    for path in ("/cart/", "/cart/checkout"):
        with sql_statements(db.engine) as seen:
            page = client.get(path)
        assert page.status_code == 200 and "Cart (3)" in text(page)
        assert not [statement for statement in seen if "sum(cart_items.quantity)" in statement]


def test_the_cart_pages_and_placing_read_the_cart_with_its_offers_in_one_statement(client, auth):
    event = make_event()
    login(auth, client, customer())
    add_to_cart(client, offer_of(event, "family"), 2)
    add_to_cart(client, offer_of(make_event(), "solo"), 1)
    for path in ("/cart/", "/cart/checkout"):
        with sql_statements(db.engine) as seen:
            page = client.get(path)
        assert page.status_code == 200 and "Family" in text(page)
        assert [s for s in seen if "FROM cart_items JOIN offers" in s] == seen[:1] and len(seen) == 1
    total = reviewed_total(client)
    with sql_statements(db.engine) as seen:
        assert "/orders/" in place_order(client, total).headers["Location"]
    assert len([s for s in seen if "FROM cart_items JOIN offers" in s]) == 1
    assert not [s for s in seen if s.startswith("SELECT offers.")]  # not read a second time


@pytest.mark.parametrize("button", [{}, {"buy_now": "1"}], ids=["add to cart", "buy now"])
def test_adding_to_the_cart_reads_the_offer_and_the_stored_cart_in_one_statement(client, auth, button):
    """Where the answer goes (back to the event, or to the review for "buy now") is decided without
    reading the signed-in user again after the cart's commit."""
    event = make_event()
    login(auth, client, customer())
    add_to_cart(client, offer_of(event, "family"), 2)
    solo = offer_of(event, "solo").id
    with sql_statements(db.engine) as seen:
        response = client.post("/cart/add", data={"offer_id": solo, "quantity": 1, **button})
    assert response.status_code == 303
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1 and "LEFT OUTER JOIN cart_items" in reads[0], reads
    assert "Cart (3)" in cart_page(client)


def test_adding_to_an_empty_stored_cart_reads_the_offer_with_no_line(app, auth):
    event = make_event()
    client = app.test_client()
    login(auth, client, customer())
    duo = offer_of(event, "duo").id
    client.get("/cart/")  # the first page after signing in reads the session's row and the user
    with sql_statements(db.engine) as seen:
        assert add_to_cart(client, duo, 2).status_code == 303
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 1
    assert "Cart (2)" in cart_page(client)


def test_the_navbar_count_comes_from_the_cache_after_every_change(client, auth):
    """A signed-in page that does not read the cart shows its count without a query: whatever
    changes the cart here (adding, changing, placing the order) writes the new count."""
    event = make_event()
    family, solo = offer_of(event, "family"), offer_of(event, "solo")
    login(auth, client, customer())
    add_to_cart(client, family, 2)
    add_to_cart(client, solo, 1)
    seen_counts = []
    for change in (None, lambda: client.post(f"/cart/{solo.id}/quantity", data={"quantity": 4}),
                   lambda: client.post(f"/cart/{family.id}/remove"), lambda: place_order(client)):
        if change is not None:
            assert change().status_code == 303
        with sql_statements(db.engine) as seen:
            page = client.get(f"/events/{event.slug}")
        assert not [statement for statement in seen if "sum(cart_items.quantity)" in statement]
        seen_counts.append(re.search(r"Cart(?: \((\d+)\))?", text(page)).group(1))
    assert seen_counts == ["3", "6", "4", None]  # the last: the order took the cart's lines


def test_a_cart_changed_elsewhere_shows_at_once_on_the_cart_page(client, auth):
    event = make_event()
    login(auth, client, customer())
    add_to_cart(client, offer_of(event, "family"), 2)
    db.session.execute(sa.delete(CartItem))  # as when an administrator deletes the offer
    db.session.commit()
    assert "Your cart is empty" in cart_page(client) and "Cart (2)" not in cart_page(client)


def test_checkout_asks_visitors_to_log_in_first(client):
    event = make_event()
    add_to_cart(client, offer_of(event, "solo"))
    response = client.get("/cart/checkout")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"] and "cart" in response.headers["Location"]
    assert client.post("/orders/", data={"expected_total_cents": 5000}).status_code == 302


def buy_now(client, offer: Offer, quantity: int = 1):
    """The event page's "Buy … now" button: the add form posted with the button's name."""
    return client.post("/cart/add", data={"offer_id": offer.id, "quantity": quantity, "buy_now": "1"})


def test_the_event_page_offers_to_buy_now_beside_adding_to_the_cart(client):
    event = make_event()
    solo = offer_of(event, "solo")
    body = text(client.get(f"/events/{event.slug}"))
    form = re.search(rf'<form[^>]*action="/cart/add".*?name="offer_id" value="{solo.id}".*?</form>', body, re.DOTALL).group(0)
    assert ">Add Solo to cart</button>" in form
    assert re.search(r'<button type="submit" name="buy_now" value="1"[^>]*>Buy Solo now</button>', form)


def test_buy_now_adds_the_line_and_goes_straight_to_the_checkout_review(client, auth):
    event = make_event(title="Fencing — Team Final")
    login(auth, client, customer())
    add_to_cart(client, offer_of(event, "solo"), 1)  # already in the cart: the review shows both lines
    response = buy_now(client, offer_of(event, "duo"), 2)
    assert response.status_code == 303 and response.headers["Location"].endswith("/cart/checkout")
    review = client.get(response.headers["Location"])
    body = text(review)
    assert review.status_code == 200 and 'id="place-order-form"' in body
    assert "Duo" in body and "Solo" in body
    assert reviewed_total(client) == 5000 + 2 * 9500
    assert "Added 2 × Duo" not in body  # no "Added …" message: the review lists the line
    response = place_order(client, expected_total=5000 + 2 * 9500)
    assert response.status_code == 303 and ORDER_URL.search(response.headers["Location"])
    assert seats_taken(event.id) == 1 + 2 * 2


def test_buy_now_asks_a_visitor_to_log_in_then_shows_the_review(client, auth):
    event = make_event()
    response = buy_now(client, offer_of(event, "family"))
    assert response.status_code == 303 and response.headers["Location"].endswith("/cart/checkout")
    to_login = client.get(response.headers["Location"])
    assert to_login.status_code == 302
    assert "/auth/login" in to_login.headers["Location"] and "next=/cart/checkout" in to_login.headers["Location"]
    logged_in = auth.login(customer(), next_url="/cart/checkout")
    assert logged_in.status_code in (302, 303) and logged_in.headers["Location"].endswith("/cart/checkout")
    assert reviewed_total(client) == 17000  # the visitor's cart was merged into the account


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)
def test_buy_now_sends_staff_to_the_cart_page_that_says_why_they_cannot_buy(client, auth):
    event = make_event()
    login(auth, client, customer(role="staff"))
    response = buy_now(client, offer_of(event, "solo"))
    assert response.status_code == 303 and response.headers["Location"].endswith("/cart/")
    assert "Staff and administrator accounts cannot buy tickets" in cart_page(client)


@pytest.mark.parametrize("quantity", ["0", "11", "two", ""])
def test_buy_now_with_a_bad_quantity_stays_on_the_cart_with_a_message(client, auth, quantity):
    event = make_event()
    login(auth, client, customer())
    response = client.post("/cart/add", data={"offer_id": offer_of(event, "solo").id, "quantity": quantity,
                                              "buy_now": "1"}, follow_redirects=True)
    assert response.request.path == "/cart/"
    assert "Choose a quantity between 1 and 10" in text(response)
    assert "Your cart is empty" in text(response)


def test_buy_now_past_the_line_maximum_warns_on_the_review(client, auth):
    event = make_event()
    login(auth, client, customer())
    solo = offer_of(event, "solo")
    add_to_cart(client, solo, 8)
    response = buy_now(client, solo, 5)
    assert response.headers["Location"].endswith("/cart/checkout")
    body = text(client.get("/cart/checkout"))
    assert "at most 10" in body
    assert reviewed_total(client) == 10 * 5000


def test_checkout_of_an_empty_cart_sends_back_to_the_cart(client, auth):
    login(auth, client, customer())
    response = client.get("/cart/checkout", follow_redirects=True)
    assert "Your cart is empty." in text(response)
    response = client.post("/orders/", data={"expected_total_cents": 0}, follow_redirects=True)
    assert "Your cart is empty." in text(response)


def test_unverified_customer_sees_why_and_cannot_place_an_order(client, auth):
    event = make_event()
    login(auth, client, customer(email_verified_at=None))
    add_to_cart(client, offer_of(event, "duo"), 1)
    review = client.get("/cart/checkout")
    body = text(review)
    assert review.status_code == 200
    assert "Please verify your email address before you check out." in body
    assert 'id="place-order-form"' not in body
    if "auth.resend_verification" in client.application.view_functions:
        assert 'action="/auth/verify/resend"' in body

    response = place_order(client, expected_total=9500)
    assert response.status_code == 303
    assert "Please verify your email address" in text(client.get(response.headers["Location"]))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
    assert seats_taken(event.id) == 0


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)
def test_staff_accounts_cannot_check_out(client, auth):
    event = make_event()
    login(auth, client, customer(role="staff"))
    add_to_cart(client, offer_of(event, "solo"))
    assert "Staff and administrator accounts cannot buy tickets" in cart_page(client)
    assert client.get("/cart/checkout").status_code == 403
    assert client.post("/orders/", data={"expected_total_cents": 5000}).status_code == 403


def test_the_purchase_reads_offers_and_events_as_rows_not_orm_objects(client, auth):
    """Adding, the cart pages and placing only read the offers: as rows (`cart.OfferForSale`)."""
    duo = offer_of(make_event(title="Canoe Sprint"), "duo")
    login(auth, client, customer())
    with orm_loads(Offer, Event) as loaded:
        add_to_cart(client, duo, 2)
        pages = [text(client.get(path)) for path in ("/cart/", "/cart/checkout")]
        placed = place_order(client, reviewed_total(client))
    assert all("Canoe Sprint" in page and "Duo" in page for page in pages)
    assert "/orders/" in placed.headers["Location"]
    assert loaded == []
