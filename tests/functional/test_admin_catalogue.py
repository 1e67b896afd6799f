"""/admin/events/… — events and offers: create, edit, publish, delete; every refusal shows its
message, keeps what was typed and changes nothing; a sold offer is never deleted."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.messages import message_for
from app.models import Event, Offer
from tests.factories import EventFactory, OfferFactory, UserFactory, make_paid_order
from tests.html_tables import table_rows
from tests.shop import login

pytestmark = pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)

FUTURE = (datetime.now(UTC) + timedelta(days=90)).strftime("%Y-%m-%d")


@pytest.fixture
def admin(client, auth):
    user = UserFactory(role="admin")
    login(auth, client, user)
    return user


def page(response) -> str:
    return unescape(response.get_data(as_text=True))


def snapshot() -> list[tuple]:
    events = db.session.execute(sa.select(Event.id, Event.title, Event.slug, Event.sport, Event.venue,
                                          Event.capacity, Event.starts_at, Event.published).order_by(Event.id))
    offers = db.session.execute(sa.select(Offer.id, Offer.event_id, Offer.kind, Offer.name, Offer.persons,
                                          Offer.price_cents, Offer.published).order_by(Offer.id))
    db.session.expire_all()
    return [tuple(r) for r in events] + [tuple(r) for r in offers]


def event_form(**changes) -> dict:
    data = {"title": "Judo — Mixed Team Final", "slug": "", "sport": "Judo", "venue": "Champ-de-Mars Arena",
            "starts_at": f"{FUTURE}T20:30", "capacity": "400", "description": "Finals of the team event."}
    data.update(changes)
    return data


def offer_form(**changes) -> dict:
    data = {"kind": "solo", "name": "", "persons": "", "price": "85.50"}
    data.update(changes)
    return data


# --------------------------------------------------------------------------- events
def test_create_an_event_then_offers_then_publish(client, admin):
    assert "New event" in page(client.get("/admin/events/new"))
    response = client.post("/admin/events/new", data=event_form())
    event = db.session.scalar(sa.select(Event))
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/events/{event.id}"
    assert (event.slug, event.capacity, event.published) == ("judo-mixed-team-final", 400, False)
    assert event.starts_at.astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m-%dT%H:%M") == f"{FUTURE}T20:30"
    assert event.starts_at.tzinfo == UTC and event.starts_at.hour in (18, 19)  # stored in UTC

    # an event without a published offer cannot go on sale
    refused = client.post(f"/admin/events/{event.id}/publish", follow_redirects=True)
    assert message_for("event_needs_published_offer") in page(refused)
    assert db.session.get(Event, event.id).published is False

    assert client.post(f"/admin/events/{event.id}/offers/new", data=offer_form()).status_code == 302
    assert client.post(f"/admin/events/{event.id}/offers/new",
                       data=offer_form(kind="custom", name="Group of 6", persons="6", price="420")).status_code == 302
    offers = db.session.scalars(sa.select(Offer).order_by(Offer.id)).all()
    assert [(o.kind, o.name, o.persons, o.price_cents, o.published) for o in offers] == [
        ("solo", "Solo", 1, 8550, False), ("custom", "Group of 6", 6, 42000, False)]

    client.post(f"/admin/events/{event.id}/offers/{offers[0].id}/publish")
    client.post(f"/admin/events/{event.id}/publish")
    detail = client.get(f"/admin/events/{event.id}")
    assert table_rows(page(detail), "offers-table")[0][:6] == ["Solo", "Solo", "1", "€85.50", "0", "On sale"]
    assert db.session.get(Event, event.id).published is True

    # the public catalogue shows it at once (its cache was invalidated)
    public = page(client.get("/events/judo-mixed-team-final"))
    assert "Judo — Mixed Team Final" in public and "€85.50" in public and "Group of 6" not in public


def test_the_events_list(client, admin):
    event = EventFactory(title="Fencing — Sabre Final", capacity=300, seats_taken=12)
    OfferFactory(event=event, name="Solo", price_cents=6500)
    rows = table_rows(page(client.get("/admin/events/")), "events-table")
    assert rows[0][0] == "Fencing — Sabre Final" and rows[0][3] == "12 / 300" and "Solo €65.00" in rows[0][4]


EVENT_REFUSALS = [
    ({"title": ""}, "Enter the event's title."),
    ({"sport": ""}, "Enter the sport."),
    ({"starts_at": ""}, "Enter the date and time, e.g. 2026-08-04 21:10."),
    ({"starts_at": "2020-07-26T20:00"}, message_for("event_start_in_past")),
    ({"capacity": "0"}, message_for("event_capacity_invalid", maximum=200_000)),
    ({"capacity": "lots"}, "Enter the number of seats as a whole number, e.g. 400."),
    ({"slug": "Not a slug!"}, message_for("event_slug_invalid")),
    ({"slug": "taken"}, message_for("event_slug_taken")),
]


@pytest.mark.parametrize("changes, message", EVENT_REFUSALS)
def test_each_event_refusal_shows_its_message_and_changes_nothing(client, admin, changes, message):
    EventFactory(slug="taken")
    before = snapshot()
    response = client.post("/admin/events/new", data=event_form(**changes))
    body = page(response)
    assert response.status_code == 200
    assert message in body
    assert 'aria-invalid="true"' in body
    assert 'value="Champ-de-Mars Arena"' in body  # what was typed is kept
    assert snapshot() == before


def test_capacity_cannot_drop_below_the_seats_sold(client, admin):
    offer = OfferFactory(kind="duo", persons=2, event__capacity=10, event__slug="judo")
    make_paid_order(UserFactory(), (offer, 3))  # 6 seats
    before = snapshot()
    response = client.post(f"/admin/events/{offer.event_id}/edit", data=event_form(slug="judo", capacity="5"))
    assert response.status_code == 200
    assert message_for("event_capacity_below_taken", taken=6) in page(response)
    assert snapshot() == before
    assert client.post(f"/admin/events/{offer.event_id}/edit",
                       data=event_form(slug="judo", capacity="6")).status_code == 302
    assert db.session.get(Event, offer.event_id).capacity == 6


def test_edit_form_shows_the_start_in_paris_time(client, admin):
    event = EventFactory(starts_at=datetime(2030, 8, 4, 19, 10, tzinfo=UTC))  # 21:10 in Paris (summer)
    assert 'value="2030-08-04T21:10"' in page(client.get(f"/admin/events/{event.id}/edit"))


def test_an_event_with_sales_cannot_be_deleted(client, admin):
    offer = OfferFactory()
    make_paid_order(UserFactory(), (offer, 1))
    confirm = page(client.get(f"/admin/events/{offer.event_id}/delete"))
    assert "cannot be deleted" in confirm and "Yes, delete" not in confirm
    response = client.post(f"/admin/events/{offer.event_id}/delete", follow_redirects=True)
    assert message_for("event_has_sales") in page(response)
    assert db.session.get(Event, offer.event_id) is not None


def test_an_unsold_event_is_deleted_after_confirmation(client, admin):
    event = OfferFactory().event
    assert "Yes, delete this event" in page(client.get(f"/admin/events/{event.id}/delete"))
    assert client.post(f"/admin/events/{event.id}/delete").headers["Location"] == "/admin/events/"
    assert db.session.get(Event, event.id) is None


# --------------------------------------------------------------------------- offers
OFFER_REFUSALS = [
    ({"price": "0"}, message_for("offer_price_not_positive")),
    ({"price": "-5"}, message_for("offer_price_not_positive")),
    ({"price": "20000"}, message_for("offer_price_too_high", maximum=10_000)),
    ({"price": ""}, "Enter a price in euros, e.g. 85.50."),
    ({"price": "12.345"}, "Use at most two decimals (cents)."),
    ({"price": "cheap"}, "Enter a price in euros, e.g. 85 or 85.50."),
    ({"kind": "custom", "name": "Group", "persons": "six"}, "Enter the number of persons as a whole number, e.g. 6."),
    ({"kind": "custom", "name": "", "persons": "6"}, message_for("offer_name_missing")),
    ({"kind": "custom", "name": "Group", "persons": ""}, message_for("offer_persons_invalid", maximum=20)),
    ({"kind": "custom", "name": "Group", "persons": "21"}, message_for("offer_persons_invalid", maximum=20)),
    ({"kind": "vip"}, "Not a valid choice."),
    ({"name": "solo"}, message_for("offer_name_taken")),
]


@pytest.mark.parametrize("changes, message", OFFER_REFUSALS)
def test_each_offer_refusal_shows_its_message_and_changes_nothing(client, admin, changes, message):
    event = OfferFactory(name="Solo").event
    before = snapshot()
    response = client.post(f"/admin/events/{event.id}/offers/new", data=offer_form(**changes))
    assert response.status_code == 200
    assert message in page(response)
    assert snapshot() == before


def test_a_sold_offer_keeps_its_persons(client, admin):
    offer = OfferFactory(kind="duo", name="Duo", persons=2, price_cents=9000)
    make_paid_order(UserFactory(), (offer, 1))
    before = snapshot()
    url = f"/admin/events/{offer.event_id}/offers/{offer.id}/edit"
    assert 'value="90.00"' in page(client.get(url))
    response = client.post(url, data=offer_form(kind="family", price="90"))
    assert message_for("offer_kind_locked") in page(response)
    assert snapshot() == before
    assert client.post(url, data=offer_form(kind="duo", name="Duo", price="99.90")).status_code == 302
    assert db.session.get(Offer, offer.id).price_cents == 9990


def test_deleting_an_offer_with_sales_is_refused_it_can_only_be_unpublished(client, admin):
    offer = OfferFactory()
    make_paid_order(UserFactory(), (offer, 1))
    base = f"/admin/events/{offer.event_id}/offers/{offer.id}"

    detail = page(client.get(f"/admin/events/{offer.event_id}"))
    assert "Sold: can only be unpublished" in detail and f"{base}/delete" not in detail
    confirm = page(client.get(f"{base}/delete"))
    assert message_for("offer_has_sales") in confirm and "Yes, delete" not in confirm

    response = client.post(f"{base}/delete", follow_redirects=True)
    assert message_for("offer_has_sales") in page(response)
    assert db.session.get(Offer, offer.id) is not None

    client.post(f"{base}/unpublish")
    assert db.session.get(Offer, offer.id).published is False


def test_an_unsold_offer_is_deleted_after_confirmation(client, admin):
    offer = OfferFactory()
    base = f"/admin/events/{offer.event_id}/offers/{offer.id}"
    assert "Yes, delete this offer" in page(client.get(f"{base}/delete"))
    assert client.post(f"{base}/delete").status_code == 302
    assert db.session.get(Offer, offer.id) is None


def test_unknown_or_mismatched_ids_are_404(client, admin):
    offer = OfferFactory()
    other = EventFactory()
    assert client.get("/admin/events/999999").status_code == 404
    assert client.get(f"/admin/events/{other.id}/offers/{offer.id}/edit").status_code == 404
    assert client.post(f"/admin/events/{other.id}/offers/{offer.id}/delete").status_code == 404

