"""Catalogue rules for admins: every refusal names its field and changes nothing; sold things stay."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Event, Offer
from app.services import catalogue_admin as ca
from app.services.errors import Conflict, DomainError
from tests.factories import EventFactory, OfferFactory, UserFactory
from tests.sales_data import make_order, utc

NOW = utc("2026-06-01T12:00:00")


def event_input(**changes) -> ca.EventInput:
    base = ca.EventInput(title="Judo — Mixed Team Final", sport="Judo", venue="Champ-de-Mars Arena",
                         starts_at=NOW + timedelta(days=60), capacity=400, description="Finals.")
    return replace(base, **changes)


def snapshot() -> list[tuple]:
    events = db.session.execute(sa.select(Event.id, Event.title, Event.slug, Event.capacity, Event.starts_at,
                                          Event.published).order_by(Event.id)).all()
    offers = db.session.execute(sa.select(Offer.id, Offer.name, Offer.kind, Offer.persons, Offer.price_cents,
                                          Offer.published).order_by(Offer.id)).all()
    return [tuple(r) for r in events] + [tuple(r) for r in offers]


def refused(code: str, field: str | None, action) -> None:
    """`action` is refused with `code` on `field`, and the database is exactly as before."""
    before = snapshot()
    with pytest.raises(DomainError) as error:
        action()
    db.session.rollback()
    assert (error.value.code, error.value.field) == (code, field)
    assert snapshot() == before


# --------------------------------------------------------------------------- events
def test_create_event_is_a_draft_with_a_slug_from_the_title(app):
    event = ca.create_event(db.session, event_input(), now=NOW)
    assert (event.slug, event.published, event.seats_taken) == ("judo-mixed-team-final", False, 0)

    second = ca.create_event(db.session, event_input(), now=NOW)
    assert second.slug == "judo-mixed-team-final-2"


@pytest.mark.parametrize("changes, code, field", [
    ({"title": "  "}, "event_title_missing", "title"),
    ({"sport": ""}, "event_sport_missing", "sport"),
    ({"venue": ""}, "event_venue_missing", "venue"),
    ({"starts_at": NOW - timedelta(minutes=1)}, "event_start_in_past", "starts_at"),
    ({"starts_at": NOW}, "event_start_in_past", "starts_at"),
    ({"capacity": 0}, "event_capacity_invalid", "capacity"),
    ({"capacity": -5}, "event_capacity_invalid", "capacity"),
    ({"capacity": ca.MAX_CAPACITY + 1}, "event_capacity_invalid", "capacity"),
    ({"slug": "Not A Slug"}, "event_slug_invalid", "slug"),
    ({"slug": "double--hyphen"}, "event_slug_invalid", "slug"),
    ({"slug": "taken-slug"}, "event_slug_taken", "slug"),
])
def test_create_event_refusals(app, changes, code, field):
    EventFactory(slug="taken-slug")
    refused(code, field, lambda: ca.create_event(db.session, event_input(**changes), now=NOW))


def test_update_event_keeps_its_own_slug_and_may_keep_a_past_start(app):
    event = EventFactory(slug="judo", starts_at=NOW - timedelta(hours=1))  # already started
    updated = ca.update_event(db.session, event.id, event_input(slug="judo", starts_at=event.starts_at,
                                                                title="Judo (renamed)"), now=NOW)
    assert (updated.title, updated.slug) == ("Judo (renamed)", "judo")


def test_update_event_refusals(app):
    event = EventFactory(slug="judo", capacity=10)
    EventFactory(slug="taken-slug")
    offer = OfferFactory(event=event, persons=2, kind="duo", name="Duo")
    make_order(UserFactory(), [(offer, 3)], paid_at=utc("2026-05-01T10:00:00"))  # 6 seats taken

    refused("event_capacity_below_taken", "capacity",
            lambda: ca.update_event(db.session, event.id, event_input(slug="judo", capacity=5), now=NOW))
    refused("event_slug_taken", "slug",
            lambda: ca.update_event(db.session, event.id, event_input(slug="taken-slug"), now=NOW))
    refused("event_start_in_past", "starts_at",
            lambda: ca.update_event(db.session, event.id, event_input(slug="judo", starts_at=NOW - timedelta(days=1)),
                                    now=NOW))
    assert ca.update_event(db.session, event.id, event_input(slug="judo", capacity=6), now=NOW).capacity == 6


def test_publish_needs_a_published_offer(app):
    event = EventFactory(published=False)
    refused("event_needs_published_offer", None, lambda: ca.set_event_published(db.session, event.id, True))
    OfferFactory(event=event)
    assert ca.set_event_published(db.session, event.id, True).published is True
    assert ca.set_event_published(db.session, event.id, False).published is False


def test_an_event_with_sales_cannot_be_deleted(app):
    sold = OfferFactory()
    make_order(UserFactory(), [(sold, 1)], paid_at=utc("2026-05-01T10:00:00"))
    with pytest.raises(Conflict) as error:
        ca.delete_event(db.session, sold.event_id)
    assert error.value.code == "event_has_sales"
    assert db.session.get(Event, sold.event_id) is not None

    unsold = OfferFactory()
    ca.delete_event(db.session, unsold.event_id)
    assert db.session.get(Event, unsold.event_id) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Offer).where(Offer.event_id == unsold.event_id)) == 0


# --------------------------------------------------------------------------- offers
def test_standard_kinds_admit_their_persons_and_custom_kinds_choose(app):
    event = EventFactory()
    family = ca.create_offer(db.session, event.id, ca.OfferInput(kind="family", price_cents=20000, persons=9))
    assert (family.name, family.persons, family.published) == ("Family", 4, False)
    group = ca.create_offer(db.session, event.id, ca.OfferInput(kind="custom", name="Group of 6", persons=6,
                                                                price_cents=27000))
    assert (group.name, group.persons, group.kind) == ("Group of 6", 6, "custom")


@pytest.mark.parametrize("data, code, field", [
    (ca.OfferInput(kind="solo", price_cents=0), "offer_price_not_positive", "price"),
    (ca.OfferInput(kind="solo", price_cents=-100), "offer_price_not_positive", "price"),
    (ca.OfferInput(kind="solo", price_cents=ca.MAX_PRICE_CENTS + 1), "offer_price_too_high", "price"),
    (ca.OfferInput(kind="vip", price_cents=100), "offer_kind_invalid", "kind"),
    (ca.OfferInput(kind="custom", price_cents=100, persons=3), "offer_name_missing", "name"),
    (ca.OfferInput(kind="custom", name="Group", price_cents=100), "offer_persons_invalid", "persons"),
    (ca.OfferInput(kind="custom", name="Group", price_cents=100, persons=0), "offer_persons_invalid", "persons"),
    (ca.OfferInput(kind="custom", name="Group", price_cents=100, persons=21), "offer_persons_invalid", "persons"),
    (ca.OfferInput(kind="duo", name="solo", price_cents=100), "offer_name_taken", "name"),
])
def test_create_offer_refusals(app, data, code, field):
    event = EventFactory()
    OfferFactory(event=event, name="Solo")
    refused(code, field, lambda: ca.create_offer(db.session, event.id, data))


def test_a_sold_offer_keeps_its_persons_but_may_change_price_and_name(app):
    offer = OfferFactory(kind="duo", name="Duo", persons=2, price_cents=9000)
    make_order(UserFactory(), [(offer, 1)], paid_at=utc("2026-05-01T10:00:00"))

    refused("offer_kind_locked", "kind",
            lambda: ca.update_offer(db.session, offer.event_id, offer.id, ca.OfferInput(kind="family", price_cents=9000)))
    updated = ca.update_offer(db.session, offer.event_id, offer.id,
                              ca.OfferInput(kind="duo", name="Duo (late)", price_cents=9900))
    assert (updated.name, updated.price_cents, updated.persons) == ("Duo (late)", 9900, 2)


def test_an_offer_with_sales_cannot_be_deleted_only_unpublished(app):
    offer = OfferFactory()
    make_order(UserFactory(), [(offer, 1)], status="cancelled", paid_at=utc("2026-05-01T10:00:00"))
    with pytest.raises(Conflict) as error:
        ca.delete_offer(db.session, offer.event_id, offer.id)
    assert error.value.code == "offer_has_sales"
    db.session.rollback()
    assert db.session.get(Offer, offer.id) is not None

    assert ca.set_offer_published(db.session, offer.event_id, offer.id, False).published is False


def test_an_unsold_offer_can_be_deleted(app):
    offer = OfferFactory()
    ca.delete_offer(db.session, offer.event_id, offer.id)
    assert db.session.get(Offer, offer.id) is None


def test_an_offer_is_only_found_under_its_own_event(app):
    offer = OfferFactory()
    other = EventFactory()
    with pytest.raises(DomainError):
        ca.get_offer(db.session, other.id, offer.id)


def test_offer_sales_counts_history_and_paid_units(app):
    offer = OfferFactory()
    make_order(UserFactory(), [(offer, 2)], paid_at=utc("2026-05-01T10:00:00"))
    make_order(UserFactory(), [(offer, 3)], status="cancelled", paid_at=utc("2026-05-01T11:00:00"))
    assert ca.offer_sales(db.session, offer.event_id) == {offer.id: {"units": 5, "paid": 2}}
