"""Cached catalogue fragments, invalidated by a version token rather than by deleting keys.

Every fragment key embeds the current catalogue version. A commit that touched an Event or
an Offer (seen by the ORM, or noted by `mark_catalogue_changed`) replaces the version after the
commit, so the next request builds fresh fragments and the old ones simply age out. A commit
that only moved seats (`mark_seats_moved`: a sale, a cancellation, a lapsed hold) asks for one
replacement, made by a background thread CATALOGUE_SEATS_DELAY_SECONDS later for all the sales
of that moment: during an on-sale every sale used to cost a Redis write, and the event page
rebuilt for the next visitor, to show a seat count that the next sale changed again. The token is
random, so two writers bumping at once can never leave it unchanged. The TTL is only a safety
net (for sessions that start, i.e. time passing).
"""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from itertools import chain

import sqlalchemy as sa
from flask import current_app, g, has_app_context, has_request_context, request
from flask_login import current_user
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from markupsafe import Markup

from app.cart.storage import cart_count
from app.coalescer import Coalescer
from app.extensions import cache
from app.flashes import messages_waiting
from app.models import Event, Offer
from app.services.catalogue import CATALOGUE_CHANGED, SEATS_MOVED

VERSION_KEY = "catalogue:version"
_VERSION_COPY = "guichet.catalogue_version"  # this process's copy: (version, until), per app
_SEATS_BUMP = "guichet.catalogue_seats_bump"  # the app's Coalescer for seat moves
CSRF_PLACEHOLDER = "__CSRF_TOKEN__"


# Fragments already fetched by this process, keyed like the shared cache (so by version): a key's
# value never changes, only the version does, so a local copy is never stale. Bounded and short.
_LOCAL: dict[str, tuple[float, object]] = {}
_LOCAL_MAX = 256
_LOCAL_LOCK = threading.Lock()


def current_version() -> str:
    """The catalogue version, read once per request (a request sees one catalogue).

    Each process also keeps the last version it read for CATALOGUE_VERSION_RECHECK_SECONDS, so
    a busy catalogue is not one shared-cache round trip per page: this process's own changes
    show at once (`bump_version` updates the copy), another instance's within that delay."""
    if has_request_context() and "catalogue_version" in g:
        return g.catalogue_version
    version = _recent_version()
    if version is None:
        version = cache.get(VERSION_KEY)
        if version is None:
            cache.add(VERSION_KEY, secrets.token_hex(8), timeout=0)
            version = cache.get(VERSION_KEY) or "uncached"
        _remember_version(version)
    if has_request_context():
        g.catalogue_version = version
    return version


def _recent_version() -> str | None:
    copy = current_app.extensions.get(_VERSION_COPY)
    if copy is None or copy[1] < time.monotonic():
        return None
    return copy[0]


def _remember_version(version: str) -> None:
    seconds = float(current_app.config["CATALOGUE_VERSION_RECHECK_SECONDS"])
    if seconds > 0:
        current_app.extensions[_VERSION_COPY] = (version, time.monotonic() + seconds)


def _local_get(key: str):
    entry = _LOCAL.get(key)
    if entry is None or entry[0] < time.monotonic():
        return None
    return entry[1]


def _local_set(key: str, value) -> None:
    ttl = min(int(current_app.config["CATALOGUE_CACHE_SECONDS"]), 60)
    with _LOCAL_LOCK:
        if len(_LOCAL) >= _LOCAL_MAX:
            _LOCAL.clear()
        _LOCAL[key] = (time.monotonic() + ttl, value)


def _shared_get(key: str):
    value = _local_get(key)
    if value is None:
        value = cache.get(key)
        if value is not None:
            _local_set(key, value)
    return value


def bump_version() -> None:
    """Invalidate every catalogue fragment (call after the commit that changed the catalogue)."""
    try:
        version = secrets.token_hex(8)
        cache.set(VERSION_KEY, version, timeout=0)
        _remember_version(version)
        if has_request_context():
            g.pop("catalogue_version", None)  # the rest of this request sees the new catalogue
    except Exception:
        current_app.logger.exception("could not bump the catalogue cache version")


def bump_version_soon() -> None:
    """After a commit that only moved seats: one bump for all those of the next
    CATALOGUE_SEATS_DELAY_SECONDS, from the app's background thread (app/coalescer.py)."""
    coalescer = current_app.extensions.get(_SEATS_BUMP)
    if coalescer is None:
        bump_version()
    else:
        coalescer.request()


def install_seats_bump(app) -> None:
    """Give `app` the background bump that `bump_version_soon` asks for (0 s: at once)."""
    def bump() -> None:
        if has_app_context():  # at once (no delay): in the request, whose `g` holds the old version
            bump_version()
            return
        with app.app_context():
            bump_version()

    app.extensions[_SEATS_BUMP] = Coalescer(bump, float(app.config["CATALOGUE_SEATS_DELAY_SECONDS"]),
                                            name="catalogue-seats-bump")


def sees_the_shared_layout() -> bool:
    """Whether this request's layout is the one every first-time visitor gets: signed out, an
    empty cart, no message waiting. The whole page is then the same for all of them (a CSRF
    token aside, filled in per request) and comes from the cache; anyone else gets the layout
    rendered for them. A request without any cookie (a first visit, a crawler) has no session
    to read at all."""
    if not request.cookies:
        return True
    return not current_user.is_authenticated and not messages_waiting() and cart_count() == 0


def cached_fragment(name: str, build: Callable[[], str]) -> Markup:
    """The HTML fragment `name` for the current catalogue version, built at most once per version."""
    try:
        key = f"catalogue:{current_version()}:{name}"
        html = _shared_get(key)
    except Exception:  # noqa: BLE001 — without a cache the page is built every time, still correct
        current_app.logger.warning("catalogue cache unavailable; building %s", name)
        return Markup(build())
    if html is None:
        html = build()
        _local_set(key, html)
        try:
            cache.set(key, html, timeout=current_app.config["CATALOGUE_CACHE_SECONDS"])
        except Exception:  # noqa: BLE001
            current_app.logger.warning("catalogue cache unavailable; %s not stored", name)
    return Markup(html)


def cached_value(name: str, build: Callable[[], object]):
    """Like `cached_fragment`, for small picklable data (e.g. the filter options)."""
    try:
        key = f"catalogue:{current_version()}:{name}"
        value = _shared_get(key)
    except Exception:  # noqa: BLE001
        return build()
    if value is None:
        value = build()
        _local_set(key, value)
        try:
            cache.set(key, value, timeout=current_app.config["CATALOGUE_CACHE_SECONDS"])
        except Exception:  # noqa: BLE001
            current_app.logger.warning("catalogue cache unavailable; %s not stored", name)
    return value


# --------------------------------------------------------------------------- invalidation hooks
def _note_orm_changes(session, _flush_context) -> None:
    if session.info.get(CATALOGUE_CHANGED):
        return
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, (Event, Offer)):
            session.info[CATALOGUE_CHANGED] = True
            return


def _after_commit(session) -> None:
    changed, seats_moved = session.info.pop(CATALOGUE_CHANGED, False), session.info.pop(SEATS_MOVED, False)
    if changed:
        bump_version()
    elif seats_moved:
        bump_version_soon()


def _after_rollback(session, _previous_transaction) -> None:
    session.info.pop(CATALOGUE_CHANGED, None)
    session.info.pop(SEATS_MOVED, None)


def register_invalidation_hooks() -> None:
    """Listen on Flask-SQLAlchemy's session class once per process (idempotent)."""
    for name, listener in (("after_flush", _note_orm_changes), ("after_commit", _after_commit),
                           ("after_soft_rollback", _after_rollback)):
        if not sa.event.contains(FlaskSQLAlchemySession, name, listener):
            sa.event.listen(FlaskSQLAlchemySession, name, listener)
