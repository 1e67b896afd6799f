"""Helpers for the shop tests (catalogue, cart, checkout, orders): events with the standard
offers, a logged-in client, and the add → review → place → pay steps through HTTP."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import Event, Offer
from tests.factories import EventFactory, UserFactory

GOOD_CARD = "4242 4242 4242 4242"
CVV = "731"
HOLDER = "Ada Lovelace"
STANDARD = (("solo", "Solo", 1, 5000), ("duo", "Duo", 2, 9500), ("family", "Family", 4, 17000))
ORDER_URL = re.compile(r"/orders/(GCH-[A-Z0-9]{6})$")
EXPECTED_TOTAL = re.compile(r'name="expected_total_cents" type="hidden" value="(\d+)"|'
                            r'type="hidden" name="expected_total_cents" value="(\d+)"|'
                            r'name="expected_total_cents"[^>]*value="(\d+)"')


def make_event(*, capacity: int = 100, seats_taken: int = 0, starts_in: timedelta = timedelta(days=30),
               published: bool = True, offers=STANDARD, **fields) -> Event:
    event = EventFactory(capacity=capacity, seats_taken=seats_taken, published=published,
                         starts_at=datetime.now(UTC) + starts_in, **fields)
    for kind, name, persons, price in offers:
        db.session.add(Offer(event=event, kind=kind, name=name, persons=persons, price_cents=price, published=True))
    db.session.commit()
    return event


def offer_of(event: Event, kind: str) -> Offer:
    return db.session.scalar(sa.select(Offer).where(Offer.event_id == event.id, Offer.kind == kind))


def seats_taken(event_id: int) -> int:
    return db.session.execute(sa.select(Event.seats_taken).where(Event.id == event_id)).scalar_one()


def customer(**fields):
    return UserFactory(**fields)


def login(auth, client, user) -> None:
    response = auth.login(user, client=client)
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]


def add_to_cart(client, offer: Offer | int, quantity: int = 1, **kwargs):
    offer_id = offer if isinstance(offer, int) else offer.id
    return client.post("/cart/add", data={"offer_id": offer_id, "quantity": quantity}, **kwargs)


def reviewed_total(client) -> int:
    response = client.get("/cart/checkout")
    assert response.status_code == 200, response.status_code
    match = EXPECTED_TOTAL.search(response.get_data(as_text=True))
    assert match, "the review page has no expected total"
    return int(next(group for group in match.groups() if group))


def place_order(client, expected_total: int | None = None):
    if expected_total is None:
        expected_total = reviewed_total(client)
    return client.post("/orders/", data={"expected_total_cents": expected_total})


def placed_code(response) -> str:
    assert response.status_code == 303, (response.status_code, response.get_data(as_text=True)[:300])
    match = ORDER_URL.search(response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def buy(client, *lines) -> str:
    """Add (offer, quantity) lines, review, place: the pending order's code."""
    for offer, quantity in lines:
        assert add_to_cart(client, offer, quantity).status_code == 303
    return placed_code(place_order(client))


def card_form(number: str = GOOD_CARD, *, month: str = "12", year: str | None = None, cvv: str = CVV,
              holder: str = HOLDER) -> dict:
    return {"number": number, "exp_month": month, "exp_year": year or str(datetime.now(UTC).year + 3),
            "cvv": cvv, "holder": holder}


def pay(client, code: str, number: str = GOOD_CARD, **fields):
    return client.post(f"/orders/{code}/pay", data=card_form(number, **fields))


CHECKOUT_FORM = re.compile(r'<form method="post" action="/cart/checkout".*?</form>', re.DOTALL)


def review_form(client) -> dict:
    """The hidden fields of the review page's card form: the total shown and the page's checkout key."""
    response = client.get("/cart/checkout")
    assert response.status_code == 200, response.status_code
    form = CHECKOUT_FORM.search(response.get_data(as_text=True))
    assert form, "the review page has no card form"
    return {name: value for name, value in re.findall(r'name="(expected_total_cents|checkout_key)"[^>]*value="([^"]*)"',
                                                       form.group(0))}


def pay_now(client, number: str = GOOD_CARD, *, review: dict | None = None, **fields):
    """The review page's "Pay": place the order and pay it in one submit."""
    return client.post("/cart/checkout", data=(review or review_form(client)) | card_form(number, **fields))
