"""Catalogue service: what is on sale, filters on Paris days, availability labels."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.services import catalogue
from app.services.errors import NotFound
from tests.checkers import sql_statements
from tests.shop import make_event, offer_of

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def at_paris(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)


def test_filter_options_come_from_sessions_on_sale(app):
    make_event(sport="Judo", venue="Champ-de-Mars Arena", starts_in=timedelta(days=400))
    make_event(sport="Tennis", venue="Roland-Garros", starts_in=timedelta(days=401))
    make_event(sport="Hidden", venue="Nowhere", published=False, starts_in=timedelta(days=400))
    options = catalogue.filter_options(db.session, now=datetime.now(UTC), zone=PARIS)
    assert options.sports == ["Judo", "Tennis"]
    assert options.venues == ["Champ-de-Mars Arena", "Roland-Garros"]
    assert len(options.days) == 2


def test_clean_filters_drops_unknown_values():
    options = catalogue.FilterOptions(sports=["Judo"], venues=["Bercy Arena"], days=[date(2026, 8, 1)])
    kept = catalogue.clean_filters(options, sport="Judo", venue="Bercy Arena", day="2026-08-01")
    assert kept == catalogue.Filters("Judo", "Bercy Arena", date(2026, 8, 1)) and kept.active
    dropped = catalogue.clean_filters(options, sport="judo", venue="<b>", day="2026-02-30")
    assert dropped == catalogue.Filters() and not dropped.active
    assert catalogue.clean_filters(options, sport=None, venue=None, day="2026-08-02").day is None


def test_day_filter_uses_paris_days_across_midnight(app):
    day = date(2026, 8, 3)
    late = make_event(title="late")
    after_midnight = make_event(title="after midnight")
    late.starts_at = at_paris(day, 23, 45)
    after_midnight.starts_at = at_paris(day + timedelta(days=1), 0, 15)
    db.session.commit()
    found = catalogue.list_events(db.session, catalogue.Filters(day=day), now=NOW, zone=PARIS)
    assert [e.title for e in found] == ["late"]


def test_list_is_soonest_first_and_hides_unpublished_and_started(app):
    second = make_event(title="second", starts_in=timedelta(days=2))
    first = make_event(title="first", starts_in=timedelta(days=1))
    make_event(title="draft", published=False)
    make_event(title="started", starts_in=timedelta(minutes=-1))
    found = catalogue.list_events(db.session, catalogue.Filters(), now=datetime.now(UTC), zone=PARIS)
    assert [e.id for e in found] == [first.id, second.id]


@pytest.mark.parametrize(("capacity", "taken", "label"), [
    (800, 0, "available"), (800, 780, "few"), (800, 700, "available"), (100, 81, "few"), (100, 100, "sold_out"),
])
def test_availability_labels(app, capacity, taken, label):
    assert catalogue.availability(make_event(capacity=capacity, seats_taken=taken)) == label


def test_lowest_price_ignores_unpublished_offers(app):
    event = make_event()
    offer_of(event, "solo").published = False
    db.session.commit()
    assert catalogue.lowest_price_cents(event) == 9500
    assert [o.kind for o in catalogue.offers_on_sale(event)] == ["duo", "family"]


def test_an_event_is_read_with_its_offers_in_one_statement(app):
    slug = make_event().slug
    db.session.expunge_all()
    with sql_statements(db.engine) as seen:
        event = catalogue.get_event(db.session, slug)
        offers = [(offer.name, offer.persons) for offer in event.offers]
    assert len(seen) == 1
    assert offers == [("Solo", 1), ("Duo", 2), ("Family", 4)]  # in the relationship's order


def test_get_event_only_finds_published_ones(app):
    event = make_event()
    assert catalogue.get_event(db.session, event.slug).id == event.id
    draft = make_event(published=False)
    with pytest.raises(NotFound):
        catalogue.get_event(db.session, draft.slug)
    with pytest.raises(NotFound):
        catalogue.get_event(db.session, "nope")


def test_mark_catalogue_changed_sets_the_session_flag(app):
    db.session.execute(sa.select(1))  # services mark inside their transaction
    catalogue.mark_catalogue_changed(db.session)
    assert db.session.info[catalogue.CATALOGUE_CHANGED] is True
    db.session.rollback()  # a rolled-back change invalidates nothing
    assert catalogue.CATALOGUE_CHANGED not in db.session.info


def test_mark_seats_moved_sets_its_own_flag(app):
    db.session.execute(sa.select(1))
    catalogue.mark_seats_moved(db.session)
    assert db.session.info[catalogue.SEATS_MOVED] is True
    assert catalogue.CATALOGUE_CHANGED not in db.session.info
    db.session.rollback()
    assert catalogue.SEATS_MOVED not in db.session.info


def test_the_demo_programme_is_a_realistic_catalogue(app):
    from app.services.demo import load_demo_events

    events = load_demo_events(db.session, now=NOW)
    db.session.commit()
    assert len(events) >= 12
    assert len({e.sport for e in events}) >= 6 and len({e.venue for e in events}) >= 6
    for event in events:
        assert event.published and event.starts_at > NOW and event.starts_at.tzinfo is not None
        persons = {offer.kind: offer.persons for offer in event.offers}
        assert persons == {"solo": 1, "duo": 2, "family": 4}
        prices = {offer.kind: offer.price_cents for offer in event.offers}
        assert all(isinstance(p, int) and p > 0 for p in prices.values())
        assert prices["solo"] < prices["duo"] < 2 * prices["solo"] < prices["family"] < 4 * prices["solo"]
    options = catalogue.filter_options(db.session, now=NOW, zone=PARIS)
    assert len(options.days) >= 5
