"""The rush's minimal shop (bench/minimal_shop.py) does a whole purchase's required work, so its
figures bound what any version of the shop can reach: the session and its CSRF token, the
conditional seat reservation, the order, the charge, the tickets with their double-key digests,
the audit event and the queued confirmation email. PostgreSQL and Redis only, like the bench.
Every test runs on both stacks: bare Flask, and the fixed stack's extensions (MINIMAL_STACK=fixed)."""
from __future__ import annotations

import hashlib
import importlib
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, CartItem, EmailJob, Event, Order, Payment, Ticket
from bench.browser import parse_forms
from bench.common import close_thread_connection
from tests.conftest import RUN_ID, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.factories import DEFAULT_PASSWORD, OfferFactory, UserFactory

pytestmark = pytest.mark.skipif(not (TEST_DATABASE_URL and TEST_REDIS_URL),
                                reason="set TEST_DATABASE_URL and TEST_REDIS_URL: the bench runs on both")
SUCCESS_CARD = "4242424242424242"


@pytest.fixture(params=["bare", "fixed"])
def shop(app, monkeypatch, request):
    monkeypatch.setenv("MINIMAL_STACK", request.param)
    monkeypatch.setenv("SECRET_KEY", "minimal-shop-test-secret")
    monkeypatch.setenv("DATABASE_URL", app.config["SQLALCHEMY_DATABASE_URI"])
    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("MINIMAL_SESSION_PREFIX", f"guichet_test_{RUN_ID}:minimal:")
    monkeypatch.delitem(sys.modules, "bench.minimal_shop", raising=False)
    module = importlib.import_module("bench.minimal_shop")
    yield module.app
    close_thread_connection()
    if request.param == "fixed":
        with module.app.app_context():
            module.db.engine.dispose()


def test_each_stack_runs_on_its_own_plumbing(shop):
    if sys.modules["bench.minimal_shop"].FIXED:
        assert type(shop.session_interface).__name__ == "RedisSessionInterface"
        assert {"csrf", "sqlalchemy"} <= set(shop.extensions) and shop.login_manager is not None
    else:
        assert shop.extensions == {} and not hasattr(shop, "login_manager")


def form(response, action: str, **values) -> tuple[str, dict]:
    for found in parse_forms(response.get_data(as_text=True)):
        if found.action.startswith(action):
            return found.action, found.filled(**values)
    raise LookupError(f"no form {action!r}")


def signed_in(shop, user):
    client = shop.test_client()
    action, data = form(client.get("/auth/login"), "/auth/login", email=user.email, password=DEFAULT_PASSWORD)
    assert client.post(action, data=data).status_code == 303
    return client


def buy(client, slug: str, *, now: bool = False) -> str:
    """Event page → add (→ the cart) → checkout → place, or with `now` "buy now" (→ checkout) →
    place; the order page's URL path."""
    found = next(f for f in parse_forms(client.get(f"/events/{slug}").get_data(as_text=True))
                 if f.action == "/cart/add")
    added = client.post(found.action, data=found.filled("buy_now") if now else found.filled())
    assert added.headers["Location"] == ("/cart/checkout" if now else "/cart/")
    action, data = form(client.get("/cart/checkout"), "/orders/")
    return client.post(action, data=data).headers["Location"]


def card(**changes) -> dict:
    now = datetime.now(UTC)
    return {"number": SUCCESS_CARD, "exp_month": f"{now.month:02d}", "exp_year": str(now.year + 2), "cvv": "123",
            "holder": "Rush Buyer"} | changes


def test_a_whole_purchase_does_the_work_the_spec_asks(app, shop):
    buyer, offer = UserFactory(), OfferFactory(event__capacity=1)
    slug, event_id, user_key = offer.event.slug, offer.event_id, buyer.user_key
    db.session.commit()
    client = signed_in(shop, buyer)
    order_path = buy(client, slug)
    assert order_path.startswith("/orders/GCH-")
    action, data = form(client.get(order_path), order_path + "/pay", **card())
    assert client.post(action, data=data).headers["Location"] == order_path
    page = client.get(order_path).get_data(as_text=True)
    assert "paid" in page and "Ticket GCH-" in page

    db.session.expire_all()
    order = db.session.scalars(sa.select(Order)).one()
    assert (order.status, order.code, order.total_cents) == ("paid", order_path.rsplit("/", 1)[1], 5000)
    payment = db.session.scalars(sa.select(Payment)).one()
    assert (payment.card_last4, payment.card_brand, payment.succeeded) == ("4242", "Visa", True)
    ticket = db.session.scalars(sa.select(Ticket)).one()
    assert ticket.number == f"{order.code}-01" and len(ticket.purchase_key) == 32
    assert ticket.key_digest == hashlib.sha256(user_key + ticket.purchase_key).digest()
    assert db.session.get(Event, event_id).seats_taken == 1
    assert db.session.scalars(sa.select(AuditEvent.type).where(AuditEvent.type == "order_paid")).one()
    assert db.session.scalars(sa.select(EmailJob.status)).one() == "pending"
    assert db.session.scalars(sa.select(CartItem)).all() == []
    # A second submit charges nothing more.
    assert client.post(action, data=data).headers["Location"] == order_path
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1


def test_the_last_seat_is_sold_once(app, shop):
    first, second, offer = UserFactory(), UserFactory(), OfferFactory(event__capacity=1)
    slug, event_id = offer.event.slug, offer.event_id
    db.session.commit()
    one, two = signed_in(shop, first), signed_in(shop, second)
    assert buy(one, slug, now=True).startswith("/orders/")
    assert buy(two, slug, now=True) == "/cart/checkout"  # sold out: back to the review, no order
    db.session.expire_all()
    assert db.session.get(Event, event_id).seats_taken == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1


def test_an_order_code_drawn_twice_is_drawn_again(app, shop, monkeypatch):
    first, second, offer = UserFactory(), UserFactory(), OfferFactory()
    slug = offer.event.slug
    db.session.commit()
    taken_code = buy(signed_in(shop, first), slug).rsplit("/", 1)[1]
    codes = iter([taken_code, "GCH-ABCDEF"])
    monkeypatch.setattr(sys.modules["bench.minimal_shop"], "new_order_code", lambda: next(codes))
    assert buy(signed_in(shop, second), slug) == "/orders/GCH-ABCDEF"
    db.session.expire_all()
    assert db.session.get(Event, offer.event_id).seats_taken == 2


def test_refusals(app, shop):
    owner, other, offer = UserFactory(), UserFactory(), OfferFactory()
    slug = offer.event.slug
    db.session.commit()
    client = signed_in(shop, owner)
    order_path = buy(client, slug)
    action, data = form(client.get(order_path), order_path + "/pay", **card(number="4242424242424241"))
    refused = client.post(action, data=data)
    assert refused.status_code == 422 and "This card number is not valid" in refused.get_data(as_text=True)
    assert client.post(action, data={**data, "csrf_token": "forged"}).status_code == 400
    assert signed_in(shop, other).get(order_path).status_code == 404  # someone else's order
    assert shop.test_client().get("/cart/").headers["Location"] == "/auth/login"
    db.session.expire_all()
    assert db.session.scalars(sa.select(Order.status)).one() == "pending"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0


def test_paying_on_the_review_places_and_pays_once(app, shop):
    """Buy now → the review's card form: placed and paid by one submit; the same review form sent
    again finds its order and charges nothing more; a card typed wrong places nothing."""
    buyer, offer = UserFactory(), OfferFactory(event__capacity=3)
    slug, event_id = offer.event.slug, offer.event_id
    db.session.commit()
    client = signed_in(shop, buyer)
    found = next(f for f in parse_forms(client.get(f"/events/{slug}").get_data(as_text=True))
                 if f.action == "/cart/add")
    assert client.post(found.action, data=found.filled("buy_now")).headers["Location"] == "/cart/checkout"
    review = client.get("/cart/checkout")
    action, typo = form(review, "/cart/checkout", **card(number="4242424242424241"))
    refused = client.post(action, data=typo)
    assert refused.status_code == 422 and "This card number is not valid" in refused.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
    assert client.post(action, data={**typo, "checkout_key": "short"}).status_code == 400
    data = typo | card()
    order_path = client.post(action, data=data).headers["Location"]
    assert order_path.startswith("/orders/GCH-")
    assert "Ticket GCH-" in client.get(order_path).get_data(as_text=True)
    assert client.post(action, data=data).headers["Location"] == order_path  # sent again: the same order
    db.session.expire_all()
    assert db.session.scalars(sa.select(Order.status)).all() == ["paid"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1
    assert db.session.get(Event, event_id).seats_taken == 1
