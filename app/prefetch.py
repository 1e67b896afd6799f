"""The shared-cache entries a signed-in request reads, fetched in one round trip.

Every signed-in request reads the same few entries: its session row's state and its user
(app/auth/cache.py) and the navbar's cart count (app/cart/storage.py). Flask-Login's loader
knows both ids before anything else runs, so it fetches all of them with one MGET; each
module then reads its entry through `get`, which falls back to the shared cache for an entry
that was not fetched. An entry is handed out once: a second read (after the module may have
written it) goes to the cache.

With sessions and the cache in one Redis, that MGET joins the session's own read
(`SessionReadWithEntries`): the ids are in the session, so the first request of a session in a
process fetches them as above, and the process remembers which entries that session wanted.
Its next request reads the session and those entries in one round trip; they are used only if
the session still names the same ones (otherwise they are fetched again, as before).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from cachelib.redis import RedisCache
from flask import Flask, current_app, g, has_request_context, session
from flask_session.redis import RedisSessionInterface

from app.extensions import cache

_PER_USER_KEYS: list[Callable[[int], str]] = []


def per_user_key(key_for: Callable[[int], str]) -> Callable[[int], str]:
    """Register (as a decorator) the function giving a user's key, to be fetched with the others."""
    _PER_USER_KEYS.append(key_for)
    return key_for


def fetch(user_id: int, *keys: str) -> None:
    """Fetch `keys` and every registered per-user key of `user_id` in one round trip, or take
    them from the session's read when it fetched exactly these."""
    wanted = (*keys, *(key_for(user_id) for key_for in _PER_USER_KEYS))
    early = g.pop("fetched_with_session", None)
    if early is not None and early[0] == wanted:
        values = early[1]
    else:
        values = cache.get_many(*wanted)
    g.prefetched = dict(zip(wanted, values, strict=True))
    interface = current_app.session_interface
    if isinstance(interface, SessionReadWithEntries):
        interface.remember(session.sid, wanted)


class SessionReadWithEntries(RedisSessionInterface):
    """Flask-Session's Redis sessions, read with the cache entries this session's last request
    in this process fetched (one MGET instead of a GET, then an MGET).

    What is remembered is only which keys to read, per session id, in this process: the values
    always come from Redis with the session, and `fetch` uses them only when the session names
    the same entries. The oldest of `REMEMBERED` sessions is forgotten first.
    """

    REMEMBERED = 10_000

    def __init__(self, *args, entries: RedisCache, **kwargs):
        super().__init__(*args, **kwargs)
        self.entries = entries
        self._keys_by_store_id: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def remember(self, sid: str, keys: tuple[str, ...]) -> None:
        store_id = self._get_store_id(sid)
        if self._keys_by_store_id.get(store_id) != keys:
            self._keys_by_store_id[store_id] = keys
            if len(self._keys_by_store_id) > self.REMEMBERED:
                self._keys_by_store_id.popitem(last=False)

    def _retrieve_session_data(self, store_id: str) -> dict | None:
        keys = self._keys_by_store_id.get(store_id)
        if keys is None:
            return super()._retrieve_session_data(store_id)
        prefix = self.entries._get_prefix()
        raw = self.client.mget([store_id, *(prefix + key for key in keys)])
        if not raw[0]:
            return None
        g.fetched_with_session = (keys, [self.entries.serializer.loads(value) for value in raw[1:]])
        return self.serializer.decode(raw[0])


def read_entries_with_sessions(app: Flask) -> None:
    """Use `SessionReadWithEntries` when sessions and the cache share one Redis client."""
    interface = app.session_interface
    if type(interface) is not RedisSessionInterface:
        return
    with app.app_context():
        entries = cache.cache
    if not isinstance(entries, RedisCache) or entries._read_client is not interface.client:
        return
    app.session_interface = SessionReadWithEntries(
        app, client=interface.client, key_prefix=interface.key_prefix, use_signer=interface.use_signer,
        permanent=interface.permanent, sid_length=interface.sid_length,
        serialization_format=app.config.get("SESSION_SERIALIZATION_FORMAT", "msgpack"), entries=entries)


def get(key: str):
    """The entry fetched for this request, else the shared cache's (None when absent)."""
    fetched = g.get("prefetched") if has_request_context() else None
    if fetched is not None and key in fetched:
        return fetched.pop(key)
    return cache.get(key)


def register(app: Flask) -> None:
    read_entries_with_sessions(app)

    @app.teardown_request
    def forget_prefetched(_exc=None) -> None:
        g.pop("prefetched", None)  # an app context can outlive its request (tests)
        g.pop("fetched_with_session", None)
