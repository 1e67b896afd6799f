"""Concurrency through HTTP: many buyers racing for the last seats, one account racing itself.

Each buyer is its own test client (its own server-side session, logged in for real) in its own
thread; a barrier releases them together. Runs on SQLite and, with TEST_DATABASE_URL, PostgreSQL.
"""
from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Order, OrderLine
from app.services import orders as order_service
from tests.shop import (
    ORDER_URL,
    add_to_cart,
    customer,
    login,
    make_event,
    offer_of,
    place_order,
    seats_taken,
)

BUYERS = 60


def race(browsers, attempt) -> list:
    """Run attempt(browser) in one thread per browser, all released at once; results in order."""
    barrier = threading.Barrier(len(browsers))
    results: list = [None] * len(browsers)
    errors: list = []

    def run(index, browser):
        try:
            barrier.wait(timeout=60)
            results[index] = attempt(browser)
        except Exception as error:  # noqa: BLE001 — reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(browsers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return results


def placement(browser, total):
    response = place_order(browser, expected_total=total)
    location = response.headers.get("Location", "")
    page = browser.get(location, follow_redirects=True) if location else None
    return response.status_code, location, page.status_code if page else None, \
        page.get_data(as_text=True) if page else ""


def test_no_oversell_when_many_buyers_race_for_the_last_ten_seats(app, auth):
    event = make_event(capacity=100, seats_taken=90, title="Athletics — Men's 100m Final")
    solo = offer_of(event, "solo")
    browsers = []
    for _ in range(BUYERS):
        browser = app.test_client()
        login(auth, browser, customer())
        assert add_to_cart(browser, solo, 1).status_code == 303
        browsers.append(browser)

    results = race(browsers, lambda browser: placement(browser, 5000))

    assert all(status < 500 and page_status == 200 for status, _, page_status, _ in results), results
    sold = [r for r in results if ORDER_URL.search(r[1])]
    refused = [r for r in results if not ORDER_URL.search(r[1])]
    assert len(sold) == 10
    assert len(refused) == BUYERS - 10
    for status, location, _, body in refused:
        assert status == 303 and location.endswith("/cart/checkout")
        assert "Sorry, Athletics — Men&#39;s 100m Final is sold out" in body
    assert seats_taken(event.id) == 100
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 10
    assert db.session.scalar(sa.select(sa.func.sum(OrderLine.quantity * OrderLine.persons))) == 10


def test_mixed_offers_never_exceed_capacity(app, auth):
    event = make_event(capacity=30, seats_taken=17)
    kinds = ["solo", "duo", "family"]
    browsers, wanted = [], []
    for index in range(30):
        browser = app.test_client()
        login(auth, browser, customer())
        offer = offer_of(event, kinds[index % 3])
        add_to_cart(browser, offer, 1)
        browsers.append((browser, offer.price_cents))
        wanted.append(offer.persons)

    results = race(browsers, lambda pair: placement(pair[0], pair[1]))
    assert all(status < 500 for status, *_ in results)
    sold_seats = sum(persons for persons, result in zip(wanted, results, strict=True) if ORDER_URL.search(result[1]))
    assert 0 < sold_seats <= 13
    assert seats_taken(event.id) == 17 + sold_seats


@pytest.mark.app_config(MAX_TICKETS_PER_EVENT=10)
def test_the_per_account_limit_holds_when_one_account_orders_from_parallel_sessions(app, auth, monkeypatch):
    event = make_event(capacity=500, title="Swimming — Finals Session")
    user = customer()
    sessions = []
    for _ in range(8):
        browser = app.test_client()
        login(auth, browser, user)
        sessions.append(browser)
    assert add_to_cart(sessions[0], offer_of(event, "solo"), 4).status_code == 303  # the account's cart

    counted, serialise = order_service._tickets_held, order_service._serialise_buyer

    def slow_count(*args, **kwargs):
        held = counted(*args, **kwargs)
        time.sleep(0.3)  # widen the gap between counting and committing: a missing lock would show
        return held

    def late_lock(*args, **kwargs):
        time.sleep(0.3)  # every session has read the cart's 4 tickets before the first places them
        return serialise(*args, **kwargs)

    # PostgreSQL counts inside the statement that places a one-event cart (no `_tickets_held`): there,
    # with every session holding the cart, a missing lock would let them all count 0 or 4 at once.
    monkeypatch.setattr(order_service, "_tickets_held", slow_count)
    monkeypatch.setattr(order_service, "_serialise_buyer", late_lock)
    results = race(sessions, lambda browser: placement(browser, 4 * 5000))

    assert all(status < 500 and page_status == 200 for status, _, page_status, _ in results), \
        [(status, location, page_status, body[:3000]) for status, location, page_status, body in results]
    placed = [r for r in results if ORDER_URL.search(r[1])]
    assert len(placed) == 2  # 4 + 4 tickets; a third order would make 12
    limit_message = "You can buy at most 10 tickets per event. You already hold 8 for Swimming — Finals Session"
    refusals = [body for *_, body in results if limit_message in body]
    assert refusals
    assert all(limit_message in body or "Your cart is empty." in body
               for status, location, _, body in results if not ORDER_URL.search(location))
    held = db.session.scalar(sa.select(sa.func.sum(OrderLine.quantity)).join(Order).where(Order.user_id == user.id))
    assert held == 8
    assert seats_taken(event.id) == 8
