"""A signed-in request reads its cached state (session row, user, cart count) in one round trip."""
from __future__ import annotations

from flask import g

from app import prefetch
from app.auth.cache import session_cache_key, user_cache_key
from app.auth.login_flow import SESSION_KEY
from app.cart.storage import cart_count_key
from app.extensions import cache
from tests.shop import add_to_cart, customer, login, make_event, offer_of


def test_a_signed_in_page_reads_session_user_and_cart_count_with_one_call(client, auth, monkeypatch):
    event = make_event()
    user = customer()
    login(auth, client, user)
    add_to_cart(client, offer_of(event, "solo"), 2)
    client.get(f"/events/{event.slug}")  # every entry cached now
    with client.session_transaction() as session:
        public_id = session[SESSION_KEY]
    calls = []
    real_get, real_get_many = cache.get, cache.get_many
    monkeypatch.setattr(cache, "get", lambda key: calls.append(("get", key)) or real_get(key))
    monkeypatch.setattr(cache, "get_many", lambda *keys: calls.append(("get_many", keys)) or real_get_many(*keys))

    page = client.get(f"/events/{event.slug}")

    assert page.status_code == 200 and "Cart (2)" in page.get_data(as_text=True)
    wanted = (session_cache_key(public_id), user_cache_key(user.id), cart_count_key(user.id))
    assert [call for call in calls if call[0] == "get_many"] == [("get_many", wanted)]
    assert not [key for kind, key in calls if kind == "get" and key in wanted]  # none read a second time


def test_a_prefetched_entry_is_handed_out_once(app):
    cache.set("k1", "first")
    with app.test_request_context():
        g.prefetched = {"k1": "fetched", "k2": None}
        assert prefetch.get("k1") == "fetched"
        assert prefetch.get("k1") == "first"  # afterwards, the shared cache (which a writer may have changed)
        assert prefetch.get("k2") is None and prefetch.get("k3") is None
