"""Cart service: parsing the session cart, quantities, merging, stored carts and line flags."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Offer
from app.services import cart
from app.services.errors import Conflict, DomainError, NotFound
from tests.checkers import sql_statements
from tests.shop import customer, make_event, offer_of


def now() -> datetime:
    return datetime.now(UTC)


def test_parse_session_cart_keeps_only_sane_lines():
    raw = {"12": 2, "13": 40, "x": 1, "14": 0, "15": "3", "16": True, 17: 1, "18": -2}
    assert cart.parse_session_cart(raw) == {12: 2, 13: 10}
    assert cart.parse_session_cart(None) == {} and cart.parse_session_cart(["12"]) == {}
    assert cart.to_session_cart({12: 2}) == {"12": 2}


@pytest.mark.parametrize("quantity", [0, 11, -1, 2.5, "3", True, None])
def test_check_quantity_refuses_anything_but_1_to_10(quantity):
    with pytest.raises(DomainError) as error:
        cart.check_quantity(quantity)
    assert error.value.code == "quantity_invalid" and error.value.field == "quantity"


def test_add_caps_each_line_and_the_number_of_lines():
    items, capped = cart.add_to_items({1: 7}, 1, 2, max_lines=3)
    assert items == {1: 9} and not capped
    items, capped = cart.add_to_items(items, 1, 5, max_lines=3)
    assert items == {1: 10} and capped
    items, _ = cart.add_to_items(items, 2, 1, max_lines=2)
    with pytest.raises(Conflict) as error:
        cart.add_to_items(items, 3, 1, max_lines=2)
    assert error.value.code == "cart_full" and error.value.params == {"max": 2}
    assert cart.add_to_items(items, 2, 1, max_lines=2)[0] == {1: 10, 2: 2}  # an existing line still grows


def test_merge_adds_quantities_caps_them_and_respects_the_line_limit():
    merged = cart.merge_items({1: 6, 2: 1}, {1: 6, 3: 2, 4: 1}, max_lines=3)
    assert merged == {1: 10, 2: 1, 3: 2}


def test_stored_cart_round_trip_and_merge(app):
    event = make_event()
    solo, duo, family = (offer_of(event, kind) for kind in ("solo", "duo", "family"))
    user = customer()
    cart.save_user_cart(db.session, user.id, {solo.id: 2, duo.id: 1}, now=now())
    assert cart.load_user_cart(db.session, user.id) == {solo.id: 2, duo.id: 1}
    cart.save_user_cart(db.session, user.id, {duo.id: 3}, now=now())
    assert cart.load_user_cart(db.session, user.id) == {duo.id: 3}
    merged = cart.merge_into_user_cart(db.session, user.id, {duo.id: 2, family.id: 1, 999_999: 4},
                                       max_lines=20, now=now())
    assert merged == {duo.id: 5, family.id: 1}  # an offer deleted meanwhile is skipped
    assert cart.user_cart_count(db.session, user.id) == 6
    assert cart.user_cart_count(db.session, customer().id) == 0


def test_saving_the_cart_as_read_writes_only_the_lines_that_changed(app):
    event = make_event()
    solo, duo, family = (offer_of(event, kind) for kind in ("solo", "duo", "family"))
    user = customer()
    cart.save_user_cart(db.session, user.id, {solo.id: 2, duo.id: 1}, now=now())
    user_id, wanted = user.id, {duo.id: 4, family.id: 1}
    stored = cart.load_user_cart(db.session, user_id)
    with sql_statements(db.engine) as seen:
        cart.save_user_cart(db.session, user_id, wanted, now=now(), stored=stored)
    assert not [s for s in seen if s.lstrip().upper().startswith("SELECT")]  # no second read
    assert len([s for s in seen if s != "COMMIT"]) == 3  # delete solo, update duo, insert family
    assert cart.load_user_cart(db.session, user_id) == wanted


@pytest.mark.parametrize("signed_in", [False, True], ids=["visitor", "customer"])
def test_offer_for_cart_refusals(app, signed_in):
    """The same refusals for a visitor (`offer_for_cart`) and a customer, whose stored cart comes
    with the offer (`offer_for_user_cart`)."""
    event = make_event(capacity=5)
    solo, family = offer_of(event, "solo"), offer_of(event, "family")
    user_id = customer().id

    def offer_for(offer_id, *, quantity, now):
        if signed_in:
            offer, _ = cart.offer_for_user_cart(db.session, offer_id, user_id, quantity=quantity, now=now)
            return offer
        return cart.offer_for_cart(db.session, offer_id, quantity=quantity, now=now)

    assert offer_for(solo.id, quantity=5, now=now()).id == solo.id
    with pytest.raises(Conflict) as error:
        offer_for(family.id, quantity=2, now=now())
    assert error.value.code == "sold_out"
    with pytest.raises(NotFound):
        offer_for(424242, quantity=1, now=now())
    with pytest.raises(Conflict) as error:
        offer_for(solo.id, quantity=1, now=event.starts_at)
    assert error.value.code == "event_started"
    solo.published = False
    db.session.commit()
    with pytest.raises(Conflict) as error:
        offer_for(solo.id, quantity=1, now=now())
    assert error.value.code == "offer_unavailable"
    event.published = False
    db.session.commit()
    with pytest.raises(NotFound):
        offer_for(family.id, quantity=1, now=now())


def test_offer_for_user_cart_brings_the_stored_cart_in_the_same_statement(app):
    event = make_event()
    solo, duo, family = (offer_of(event, kind) for kind in ("solo", "duo", "family"))
    user, other = customer(), customer()
    cart.save_user_cart(db.session, user.id, {family.id: 1, duo.id: 2}, now=now())
    cart.save_user_cart(db.session, other.id, {solo.id: 4}, now=now())
    ids = solo.id, user.id, other.id
    with sql_statements(db.engine) as seen:
        offer, stored = cart.offer_for_user_cart(db.session, ids[0], ids[1], quantity=1, now=now())
    assert offer.id == ids[0] and offer.event.title and stored == cart.load_user_cart(db.session, ids[1])
    assert list(stored) == list(cart.load_user_cart(db.session, ids[1]))  # in the cart's order
    assert len(seen) == 1
    fresh = customer().id
    assert cart.offer_for_user_cart(db.session, ids[0], fresh, quantity=1, now=now())[1] == {}


def as_sold(offer) -> tuple:
    """What the cart and placing read of an offer, whichever way it was read."""
    event = offer.event
    return (offer.id, offer.event_id, offer.kind, offer.name, offer.persons, offer.price_cents, offer.published,
            event.id, event.title, event.slug, event.venue, event.starts_at, event.capacity, event.seats_taken,
            event.seats_left, event.published)


def test_offer_rows_read_what_the_orm_reads(app):
    shown, hidden = make_event(title="Diving", capacity=9), make_event(title="Archery")
    offers = [offer_of(shown, "solo"), offer_of(shown, "family"), offer_of(hidden, "duo")]
    offers[1].published = False  # an unpublished offer of a published event ...
    hidden.published = False  # ... and a published offer of an unpublished event: the two flags apart
    shown.seats_taken = 7
    db.session.commit()
    user_id = customer().id
    ids = [offer.id for offer in offers]
    cart.save_user_cart(db.session, user_id, {ids[2]: 1, ids[0]: 3}, now=now())
    db.session.expunge_all()
    orm = {offer.id: as_sold(offer) for offer in db.session.scalars(sa.select(Offer).where(Offer.id.in_(ids)))}

    rows = cart.offers_with_events(db.session, [*ids, 999_999])
    assert {offer_id: as_sold(offer) for offer_id, offer in rows.items()} == orm
    assert rows[ids[0]].event.seats_left == 2 and not rows[ids[1]].published and rows[ids[1]].event.published
    assert rows[ids[2]].published and not rows[ids[2]].event.published
    items, with_cart = cart.load_user_cart_with_offers(db.session, user_id)
    assert list(items.items()) == [(ids[2], 1), (ids[0], 3)]
    assert {offer_id: as_sold(offer) for offer_id, offer in with_cart.items()} == {i: orm[i] for i in (ids[0], ids[2])}
    offer, stored = cart.offer_for_user_cart(db.session, ids[0], user_id, quantity=1, now=now())
    assert as_sold(offer) == orm[ids[0]] and stored == items
    assert as_sold(cart.offer_for_cart(db.session, ids[0], quantity=2, now=now())) == orm[ids[0]]
    assert len(db.session.identity_map) == 0  # rows, not ORM objects


def test_describe_cart_totals_and_flags(app):
    fine, tight, gone, started = make_event(), make_event(capacity=6), make_event(), make_event()
    offer_of(gone, "solo").published = False
    started.starts_at = now() - timedelta(minutes=5)
    db.session.commit()
    items = {offer_of(fine, "duo").id: 2, offer_of(tight, "family").id: 1, offer_of(tight, "duo").id: 2,
             offer_of(gone, "solo").id: 1, offer_of(started, "solo").id: 1, 777_777: 1}
    view = cart.describe_cart(db.session, items, now=now())
    problems = {(line.event.id, line.offer.kind): line.problem for line in view.lines}
    assert problems == {(fine.id, "duo"): None, (tight.id, "family"): "not_enough_seats",
                        (tight.id, "duo"): "not_enough_seats", (gone.id, "solo"): "offer_unavailable",
                        (started.id, "solo"): "event_started"}
    assert view.has_problems and view.tickets == 7
    assert view.total_cents == 2 * 9500 + 17000 + 2 * 9500 + 5000 + 5000
    assert 777_777 not in view.items
    tight.seats_taken = 6
    db.session.commit()
    view = cart.describe_cart(db.session, {offer_of(tight, "solo").id: 1}, now=now())
    assert view.lines[0].problem == "sold_out" and view.lines[0].seats_left == 0
    assert cart.describe_cart(db.session, {}, now=now()).is_empty
