"""Catalogue pages: the events list with filters and availability, one event with its offers, caching."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import g, template_rendered

from app.extensions import cache, db
from app.models import Event
from app.offers import cache as catalogue_cache
from tests.checkers import wait_for
from tests.shop import buy, customer, login, make_event, offer_of, pay

PARIS = ZoneInfo("Europe/Paris")


def paris(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def text(response) -> str:
    return response.get_data(as_text=True)


# --------------------------------------------------------------------------- list
def test_list_shows_events_on_sale_with_availability_and_lowest_price(client):
    open_event = make_event(title="Athletics — Men's 100m Final", capacity=800, seats_taken=10)
    few = make_event(title="Fencing — Sabre Final", capacity=300, seats_taken=290)
    sold_out = make_event(title="Judo — Team Final", capacity=40, seats_taken=40)
    make_event(title="Hidden Draft Session", published=False)
    make_event(title="Yesterday's Heats", starts_in=-timedelta(hours=2))

    response = client.get("/events/")
    assert response.status_code == 200
    body = text(response)
    assert open_event.title.replace("'", "&#39;") in body
    assert "790 seats left" in body
    assert "Only 10 seats left" in body and few.title in body
    assert sold_out.title in body and "Sold out" in body
    assert "from €50.00" in body
    assert "Hidden Draft Session" not in body and "Yesterday" not in body
    assert f'href="/events/{open_event.slug}"' in body


def test_filters_by_sport_venue_and_paris_day(client):
    late = make_event(title="Late Swim", sport="Swimming", venue="La Défense Arena")
    early = make_event(title="Early Basket", sport="Basketball", venue="Bercy Arena")
    day = (datetime.now(PARIS) + timedelta(days=40)).date()
    late.starts_at = paris(day.year, day.month, day.day, 23, 30)  # 21:30 or 22:30 UTC, same Paris day
    next_day = day + timedelta(days=1)
    early.starts_at = paris(next_day.year, next_day.month, next_day.day, 0, 30)  # still `day` in UTC
    db.session.commit()

    def titles(**params):
        return set(re.findall(r'<h2 class="h5 card-title">([^<]+)</h2>', text(client.get("/events/", query_string=params))))

    assert titles() == {"Late Swim", "Early Basket"}
    assert titles(sport="Swimming") == {"Late Swim"}
    assert titles(venue="Bercy Arena") == {"Early Basket"}
    assert titles(day=day.isoformat()) == {"Late Swim"}
    assert titles(day=next_day.isoformat()) == {"Early Basket"}
    assert titles(sport="Swimming", venue="Bercy Arena") == set()


def test_unknown_filter_values_are_ignored_and_not_echoed(client):
    make_event(title="Rugby Final", sport="Rugby sevens")
    response = client.get("/events/", query_string={"sport": "<script>alert(1)</script>", "day": "2026-13-45",
                                                     "venue": "x" * 5000})
    assert response.status_code == 200
    body = text(response)
    assert "Rugby Final" in body
    assert "<script>alert(1)" not in body and "xxxxxxxxxx" not in body


def test_filter_form_lists_the_options_and_keeps_the_selection(client):
    make_event(sport="Judo", venue="Champ-de-Mars Arena")
    make_event(sport="Tennis", venue="Roland-Garros")
    body = text(client.get("/events/?sport=Judo"))
    assert '<option value="Judo" selected>Judo</option>' in body
    assert '<option value="Tennis">Tennis</option>' in body
    assert "Clear filters" in body


# --------------------------------------------------------------------------- one event
def test_event_page_shows_offers_prices_seats_and_add_forms(client):
    event = make_event(capacity=100, seats_taken=97, description="Doors open at 20:00.")
    response = client.get(f"/events/{event.slug}")
    assert response.status_code == 200
    body = text(response)
    assert event.title in body and event.venue in body and "Doors open at 20:00." in body
    assert "Only 3 seats left" in body
    for name, price in (("Solo", "€50.00"), ("Duo", "€95.00"), ("Family", "€170.00")):
        assert name in body and price in body
    assert body.count('action="/cart/add"') == 2  # Family (4 persons) no longer fits in 3 seats
    assert "Sold out" in body
    assert "__CSRF_TOKEN__" not in body


def test_unpublished_offers_are_not_shown(client):
    event = make_event()
    offer_of(event, "family").published = False
    db.session.commit()
    body = text(client.get(f"/events/{event.slug}"))
    assert "Family" not in body and "Duo" in body


def test_started_event_says_sales_are_closed(client):
    event = make_event(starts_in=-timedelta(minutes=10))
    body = text(client.get(f"/events/{event.slug}"))
    assert "sales are closed" in body
    assert 'action="/cart/add"' not in body


@pytest.mark.parametrize("slug", ["no-such-event", "x" * 300])
def test_unknown_event_is_404(client, slug):
    assert client.get(f"/events/{slug}").status_code == 404


def test_unpublished_event_is_404(client):
    event = make_event(published=False)
    assert client.get(f"/events/{event.slug}").status_code == 404


# --------------------------------------------------------------------------- caching
class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, *args, **kwargs):
        self.count += 1


@pytest.fixture
def count_queries(app):
    counter = QueryCounter()
    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", counter)
    yield counter
    sa.event.remove(engine, "before_cursor_execute", counter)


def test_catalogue_pages_are_served_from_the_cache(client, count_queries):
    event = make_event()
    assert client.get("/events/").status_code == 200
    assert client.get(f"/events/{event.slug}").status_code == 200
    count_queries.count = 0
    for _ in range(3):
        assert client.get("/events/").status_code == 200
        assert client.get(f"/events/{event.slug}").status_code == 200
    assert count_queries.count == 0  # an anonymous visitor on a warm cache costs no SQL at all


def test_seats_left_are_right_just_after_a_purchase(client, auth):
    event = make_event(capacity=50)
    assert "50 seats left" in text(client.get(f"/events/{event.slug}"))
    assert "50 seats left" in text(client.get("/events/"))
    login(auth, client, customer())
    code = buy(client, (offer_of(event, "family"), 2))
    assert "42 seats left" in text(client.get(f"/events/{event.slug}"))
    assert "42 seats left" in text(client.get("/events/"))
    pay(client, code)
    client.post(f"/orders/{code}/cancel")
    assert "50 seats left" in text(client.get(f"/events/{event.slug}"))


@pytest.mark.app_config(CATALOGUE_SEATS_DELAY_SECONDS=2.0)
def test_sales_refresh_the_seat_counts_together_a_moment_later_and_edits_at_once(app, client, auth, monkeypatch):
    """CATALOGUE_SEATS_DELAY_SECONDS: a sale asks for a version bump that a background thread
    makes a moment later, one for the sales of that moment; an edit still bumps at once."""
    event = make_event(capacity=50)
    bumps = []
    real_set = cache.set
    monkeypatch.setattr(cache, "set", lambda key, *a, **k: (
        bumps.append(1) if key == catalogue_cache.VERSION_KEY else None, real_set(key, *a, **k))[1])
    assert "50 seats left" in text(client.get(f"/events/{event.slug}"))
    login(auth, client, customer())
    buy(client, (offer_of(event, "solo"), 1))
    assert bumps == []  # not in the placing request
    assert "50 seats left" in text(client.get(f"/events/{event.slug}"))  # the page of a moment ago
    buy(client, (offer_of(event, "duo"), 1))
    assert wait_for(lambda: not app.extensions["guichet.catalogue_seats_bump"]._pending.is_set() and bumps, 10)
    assert len(bumps) == 1  # both sales, one bump
    g.pop("catalogue_version", None)  # a server starts each request with a fresh `g`
    assert "47 seats left" in text(client.get(f"/events/{event.slug}"))

    event.title = "Renamed Session"
    db.session.commit()
    assert len(bumps) == 2
    assert "Renamed Session" in text(client.get(f"/events/{event.slug}"))


def test_edits_to_events_and_offers_invalidate_the_cache(client):
    event = make_event(title="Original Title")
    assert "Original Title" in text(client.get(f"/events/{event.slug}"))
    assert "Original Title" in text(client.get("/events/"))
    event.title = "Renamed Session"
    offer_of(event, "solo").price_cents = 6100
    db.session.commit()
    body = text(client.get(f"/events/{event.slug}"))
    assert "Renamed Session" in body and "€61.00" in body
    assert "Renamed Session" in text(client.get("/events/"))
    make_event(title="Brand New Session")
    assert "Brand New Session" in text(client.get("/events/"))


def test_a_change_that_bypasses_the_hooks_stays_cached(client):
    """Proves the page really is cached: a raw UPDATE (no ORM, no mark) is not seen until the TTL."""
    event = make_event(capacity=50)
    assert "50 seats left" in text(client.get(f"/events/{event.slug}"))
    with db.engine.begin() as conn:
        conn.execute(sa.update(Event).where(Event.id == event.id).values(seats_taken=5))
    assert "50 seats left" in text(client.get(f"/events/{event.slug}"))


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_each_visitor_gets_their_own_csrf_token_in_the_cached_page(app, client):
    event = make_event()
    other = app.test_client()
    first = re.search(r'name="csrf_token" value="([^"]+)"', text(client.get(f"/events/{event.slug}"))).group(1)
    g.pop("csrf_token", None)  # the test keeps one app context (and `g`) across requests; a server does not
    second = re.search(r'name="csrf_token" value="([^"]+)"', text(other.get(f"/events/{event.slug}"))).group(1)
    assert first != second
    solo = offer_of(event, "solo")
    ok = client.post("/cart/add", data={"offer_id": solo.id, "quantity": 1, "csrf_token": first})
    assert ok.status_code == 303
    refused = other.post("/cart/add", data={"offer_id": solo.id, "quantity": 1, "csrf_token": first})
    assert refused.status_code == 400


# --------------------------------------------------------------------------- first visits
@pytest.fixture
def rendered(app):
    """Names of the templates rendered, in order."""
    names: list[str] = []

    def record(sender, template, context, **extra):
        names.append(template.name)

    template_rendered.connect(record, app)
    yield names
    template_rendered.disconnect(record, app)


def test_first_visits_get_the_whole_page_from_the_cache(app, rendered):
    event = make_event(title="Judo — Finals")
    visitor = app.test_client(use_cookies=False)  # never sends a cookie back: every request a first visit
    first_list = text(visitor.get("/events/"))
    assert "offers/list.html" in rendered and "Judo — Finals" in first_list
    rendered.clear()
    assert text(visitor.get("/events/")) == first_list
    assert rendered == []  # not even the layout
    text(visitor.get(f"/events/{event.slug}"))
    rendered.clear()
    g.pop("csrf_token", None)  # the test keeps one app context (and `g`) across requests; a server does not
    page = visitor.get(f"/events/{event.slug}")
    assert rendered == [] and "Judo — Finals" in text(page)
    assert "guichet_session=" in page.headers["Set-Cookie"]  # the add-to-cart forms' token has its session


def test_signed_in_customers_get_their_own_layout(app, client, auth, rendered):
    event = make_event()
    app.test_client(use_cookies=False).get("/events/")  # the first-visit page is cached
    login(auth, client, customer())
    rendered.clear()
    body = text(client.get("/events/"))
    # (and, the first time for such a page and visitor, the navigation bar: app/templating.py)
    assert [name for name in rendered if name != "_navbar.html"] == ["offers/list.html"]
    assert "My orders" in body and "Log out" in body
    g.pop("csrf_token", None)
    assert "Log out" not in text(app.test_client(use_cookies=False).get(f"/events/{event.slug}"))


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_a_cart_never_shows_on_the_cached_first_visit_pages(app, client):
    event = make_event()
    visitor = app.test_client(use_cookies=False)
    assert "Cart (" not in text(visitor.get(f"/events/{event.slug}"))
    g.pop("csrf_token", None)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(client.get(f"/events/{event.slug}"))).group(1)
    client.post("/cart/add", data={"offer_id": offer_of(event, "solo").id, "quantity": 2, "csrf_token": token})
    assert "Cart (2)" in text(client.get(f"/events/{event.slug}"))
    assert "Cart (2)" in text(client.get("/events/"))
    for path in ("/events/", f"/events/{event.slug}"):
        g.pop("csrf_token", None)
        assert "Cart (" not in text(visitor.get(path))


def _change_seats_from_another_instance(event, seats_taken: int) -> None:
    """What another app instance does when it sells: the row and the shared version, not this process."""
    with db.engine.begin() as conn:
        conn.execute(sa.update(Event).where(Event.id == event.id).values(seats_taken=seats_taken))
    cache.set(catalogue_cache.VERSION_KEY, f"another-instance-{seats_taken}", timeout=0)
    g.pop("catalogue_version", None)  # a server starts each request with a fresh `g` and session
    db.session.expire_all()


@pytest.mark.app_config(CATALOGUE_VERSION_RECHECK_SECONDS=30)
def test_another_instances_changes_show_after_the_recheck_delay(client, monkeypatch):
    event = make_event(capacity=50)
    assert "50 seats left" in text(client.get(f"/events/{event.slug}"))
    _change_seats_from_another_instance(event, 5)
    assert "50 seats left" in text(client.get(f"/events/{event.slug}"))  # this process's copy of the version
    later = catalogue_cache.time.monotonic() + 31
    monkeypatch.setattr(catalogue_cache.time, "monotonic", lambda: later)
    g.pop("catalogue_version", None)
    assert "45 seats left" in text(client.get(f"/events/{event.slug}"))


@pytest.mark.app_config(CATALOGUE_VERSION_RECHECK_SECONDS=0)
def test_without_a_recheck_delay_every_page_asks_for_the_version(client):
    event = make_event(capacity=50)
    assert "50 seats left" in text(client.get(f"/events/{event.slug}"))
    _change_seats_from_another_instance(event, 5)
    assert "45 seats left" in text(client.get(f"/events/{event.slug}"))


def test_returning_visitors_with_an_empty_cart_share_the_cached_page(client, rendered):
    event = make_event()
    client.get(f"/events/{event.slug}")  # the visitor now has a session (the forms' CSRF token)
    client.get("/events/")
    rendered.clear()
    g.pop("csrf_token", None)
    assert client.get(f"/events/{event.slug}").status_code == 200
    assert client.get("/events/").status_code == 200
    assert rendered == []


def test_a_waiting_message_is_shown_and_never_cached(app, client):
    make_event()
    app.test_client(use_cookies=False).get("/events/")  # the shared page is cached
    client.get("/events/")
    with client.session_transaction() as visitor_session:
        visitor_session["_flashes"] = [("success", "Your basket was emptied.")]
    assert "Your basket was emptied." in text(client.get("/events/"))
    assert "Your basket was emptied." not in text(app.test_client(use_cookies=False).get("/events/"))
    assert "Your basket was emptied." not in text(client.get("/events/"))  # shown once
