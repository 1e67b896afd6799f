"""The shared-cache entries a signed-in request reads, fetched in one round trip.

Every signed-in request reads the same few entries: its session row's state and its user
(app/auth/cache.py) and the navbar's cart count (app/cart/storage.py). Flask-Login's loader
knows both ids before anything else runs, so it fetches all of them with one MGET; each
module then reads its entry through `get`, which falls back to the shared cache for an entry
that was not fetched. An entry is handed out once: a second read (after the module may have
written it) goes to the cache.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import Flask, g, has_request_context

from app.extensions import cache

_PER_USER_KEYS: list[Callable[[int], str]] = []


def per_user_key(key_for: Callable[[int], str]) -> Callable[[int], str]:
    """Register (as a decorator) the function giving a user's key, to be fetched with the others."""
    _PER_USER_KEYS.append(key_for)
    return key_for


def fetch(user_id: int, *keys: str) -> None:
    """Fetch `keys` and every registered per-user key of `user_id` in one round trip."""
    wanted = [*keys, *(key_for(user_id) for key_for in _PER_USER_KEYS)]
    g.prefetched = dict(zip(wanted, cache.get_many(*wanted), strict=True))


def get(key: str):
    """The entry fetched for this request, else the shared cache's (None when absent)."""
    fetched = g.get("prefetched") if has_request_context() else None
    if fetched is not None and key in fetched:
        return fetched.pop(key)
    return cache.get(key)


def register(app: Flask) -> None:
    @app.teardown_request
    def forget_prefetched(_exc=None) -> None:
        g.pop("prefetched", None)  # an app context can outlive its request (tests)
