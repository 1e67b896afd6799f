"""Cached catalogue fragments, invalidated by a version token rather than by deleting keys.

Every fragment key embeds the current catalogue version. A commit that touched an Event or
an Offer (seen by the ORM) or moved seats (services call `mark_catalogue_changed`) replaces
the version after the commit, so the next request builds fresh fragments and the old ones
simply age out. The token is random, so two writers bumping at once can never leave it
unchanged. The TTL is only a safety net (for sessions that start, i.e. time passing).
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from itertools import chain

import sqlalchemy as sa
from flask import current_app
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from markupsafe import Markup

from app.extensions import cache
from app.models import Event, Offer
from app.services.catalogue import CATALOGUE_CHANGED

VERSION_KEY = "catalogue:version"
CSRF_PLACEHOLDER = "__CSRF_TOKEN__"


def current_version() -> str:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, secrets.token_hex(8), timeout=0)
        version = cache.get(VERSION_KEY) or "uncached"
    return version


def bump_version() -> None:
    """Invalidate every catalogue fragment (call after the commit that changed the catalogue)."""
    try:
        cache.set(VERSION_KEY, secrets.token_hex(8), timeout=0)
    except Exception:
        current_app.logger.exception("could not bump the catalogue cache version")


def cached_fragment(name: str, build: Callable[[], str]) -> Markup:
    """The HTML fragment `name` for the current catalogue version, built at most once per version."""
    try:
        key = f"catalogue:{current_version()}:{name}"
        html = cache.get(key)
    except Exception:  # noqa: BLE001 — without a cache the page is built every time, still correct
        current_app.logger.warning("catalogue cache unavailable; building %s", name)
        return Markup(build())
    if html is None:
        html = build()
        try:
            cache.set(key, html, timeout=current_app.config["CATALOGUE_CACHE_SECONDS"])
        except Exception:  # noqa: BLE001
            current_app.logger.warning("catalogue cache unavailable; %s not stored", name)
    return Markup(html)


def cached_value(name: str, build: Callable[[], object]):
    """Like `cached_fragment`, for small picklable data (e.g. the filter options)."""
    try:
        key = f"catalogue:{current_version()}:{name}"
        value = cache.get(key)
    except Exception:  # noqa: BLE001
        return build()
    if value is None:
        value = build()
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
    if session.info.pop(CATALOGUE_CHANGED, False):
        bump_version()


def _after_rollback(session, _previous_transaction) -> None:
    session.info.pop(CATALOGUE_CHANGED, None)


def register_invalidation_hooks() -> None:
    """Listen on Flask-SQLAlchemy's session class once per process (idempotent)."""
    for name, listener in (("after_flush", _note_orm_changes), ("after_commit", _after_commit),
                           ("after_soft_rollback", _after_rollback)):
        if not sa.event.contains(FlaskSQLAlchemySession, name, listener):
            sa.event.listen(FlaskSQLAlchemySession, name, listener)
