"""A signed-in request reads its cached state (session row, user, cart count) in one round trip."""
from __future__ import annotations

import os

import pytest
import redis
from flask import g

from app import prefetch
from app.auth.cache import session_cache_key, user_cache_key
from app.auth.login_flow import SESSION_KEY
from app.cart.storage import cart_count_key
from app.extensions import cache
from tests.shop import add_to_cart, customer, login, make_event, offer_of


def test_a_signed_in_page_reads_session_user_and_cart_count_with_one_call(app, client, auth, monkeypatch):
    """As the first request of a session in a process does (later ones: with the session, below)."""
    event = make_event()
    user = customer()
    login(auth, client, user)
    add_to_cart(client, offer_of(event, "solo"), 2)
    client.get(f"/events/{event.slug}")  # every entry cached now
    with client.session_transaction() as session:
        public_id = session[SESSION_KEY]
    if isinstance(app.session_interface, prefetch.SessionReadWithEntries):
        app.session_interface._keys_by_store_id.clear()
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


# ------------------------------------------------------------------ with the session's own read
needs_redis = pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="set TEST_REDIS_URL: sessions in Redis")


def _redis_reads(monkeypatch) -> list[tuple]:
    """Every Redis command sent, as (name, *keys) with bytes values left out."""
    sent = []
    real = redis.Redis.execute_command

    def recording(client, *args, **kwargs):
        sent.append(tuple(str(a) for a in args if not isinstance(a, bytes)))
        return real(client, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "execute_command", recording)
    return sent


def _signed_in_twice(client, auth):
    event = make_event()
    user = customer()
    login(auth, client, user)
    add_to_cart(client, offer_of(event, "solo"), 2)
    client.get("/orders/")  # this process now knows which entries the session wants
    with client.session_transaction() as session:
        return user, session[SESSION_KEY], session.sid


@needs_redis
def test_a_signed_in_request_reads_its_session_and_its_entries_in_one_round_trip(app, client, auth, monkeypatch):
    assert isinstance(app.session_interface, prefetch.SessionReadWithEntries)
    user, public_id, sid = _signed_in_twice(client, auth)
    sent = _redis_reads(monkeypatch)

    page = client.get("/orders/")

    assert page.status_code == 200 and "Cart (2)" in page.get_data(as_text=True)
    prefix = cache.cache._get_prefix()
    wanted = [prefix + key for key in (session_cache_key(public_id), user_cache_key(user.id), cart_count_key(user.id))]
    assert sent[0] == ("MGET", app.config["SESSION_KEY_PREFIX"] + sid, *wanted)
    assert not [command for command in sent[1:] if command[0] in ("GET", "MGET")]  # nothing read twice


@needs_redis
def test_entries_are_used_only_when_the_session_names_the_same_ones(app, client, auth, monkeypatch):
    user, public_id, sid = _signed_in_twice(client, auth)
    app.session_interface.remember(sid, ("auth:session:someone-else", "auth:user:0"))
    sent = _redis_reads(monkeypatch)

    page = client.get("/orders/")

    assert page.status_code == 200 and "Cart (2)" in page.get_data(as_text=True)
    assert [command[0] for command in sent if command[0] in ("GET", "MGET")] == ["MGET", "MGET"]  # fetched again
    assert sent[1][1:] == tuple(cache.cache._get_prefix() + key for key in
                                (session_cache_key(public_id), user_cache_key(user.id), cart_count_key(user.id)))
    client.get("/orders/")
    assert [command[0] for command in sent if command[0] in ("GET", "MGET")] == ["MGET", "MGET", "MGET"]  # relearnt


@needs_redis
def test_a_revoked_session_is_refused_on_the_next_request(client, auth):
    _user, public_id, _sid = _signed_in_twice(client, auth)
    state = cache.get(session_cache_key(public_id))
    cache.set(session_cache_key(public_id), state | {"revoked": True})  # as a revoke from elsewhere leaves it

    page = client.get("/orders/")

    assert page.status_code == 302 and "/auth/login" in page.headers["Location"]


@needs_redis
def test_an_expired_session_is_a_new_anonymous_one(app, client, auth):
    _signed_in_twice(client, auth)
    with client.session_transaction() as session:
        sid = session.sid
    app.session_interface.client.delete(app.config["SESSION_KEY_PREFIX"] + sid)

    page = client.get("/orders/")

    assert page.status_code == 302 and "/auth/login" in page.headers["Location"]


@needs_redis
def test_a_process_remembers_a_bounded_number_of_sessions(app, monkeypatch):
    interface = app.session_interface
    monkeypatch.setattr(interface, "REMEMBERED", 3)
    for n in range(5):
        interface.remember(f"sid{n}", ("k",))
    assert list(interface._keys_by_store_id) == [interface._get_store_id(f"sid{n}") for n in (2, 3, 4)]


def test_without_redis_sessions_are_read_as_flask_session_reads_them(app):
    if os.environ.get("TEST_REDIS_URL"):
        pytest.skip("sessions are in Redis")
    assert not isinstance(app.session_interface, prefetch.SessionReadWithEntries)
