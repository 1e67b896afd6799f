"""The sales dashboard shown at /admin/ (the view itself is `admin.dashboard` in routes.py).

Statistics come from app/services/stats.py. They are invalidated in one place: a SQLAlchemy
session hook installed here notices every committed sale, cancellation, check-in or catalogue
change, whoever makes it, and bumps the stats version: at once, or for check-ins and customers'
payments (noted "soon" by the check-in and payment services) once per STATS_REFRESH_DELAY_SECONDS
for all of them.

Cached under that version, so never stale: the statistics section rendered as HTML (one
entry per set of filters and per version of its template), the catalogue overview (the
filter menu's events, the paid orders count) and the accounts and staff counts (until the
next pending invitation expires). A warm view reads the version (one Redis GET) and finds
all three in this process's memory; only the filter form is made for each request.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from flask import current_app, has_app_context, render_template, request
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import DateField, SelectChoice, SelectField
from wtforms.validators import Optional, ValidationError
from wtforms.widgets import Select

from app.admin import bp
from app.coalescer import Coalescer
from app.extensions import cache, db
from app.services.admin_counts import account_counts
from app.services.stats import (
    StatsFilters,
    bump_stats_version,
    catalogue_overview,
    dashboard_stats,
    install_stats_invalidation,
    stats_key,
    stats_version,
)

SECTION_TEMPLATE = "admin/_dashboard_stats.html"
LOCAL_SECONDS = 60


class EventSelect(Select):
    """wtforms' Select with plain options written directly: the menu has one option per event,
    and wtforms' generic option rendering (attribute dict, sort, Markup.format) was ~1.3 ms of
    every dashboard view. Same HTML (a test compares them); anything unusual goes to wtforms."""

    @classmethod
    def render_option(cls, choice: SelectChoice, **kwargs) -> Markup:
        if kwargs or choice.render_kw or not isinstance(choice.value, str):
            return super().render_option(choice, **kwargs)
        selected = "selected " if choice.selected else ""
        return Markup(f'<option {selected}value="{escape(choice.value)}">{escape(choice.label or choice.value)}</option>')


class DateRangeFilterForm(FlaskForm):
    """GET filters: nothing is changed, so no CSRF token (links can be shared and bookmarked)."""

    class Meta:
        csrf = False

    event = SelectField("Event", choices=[], coerce=str, validators=[Optional()], widget=EventSelect())
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])

    def validate_date_to(self, field) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date must be on or after the start date.")

    @property
    def event_id(self) -> int | None:
        value = self.event.data
        return int(value) if value and value.isdigit() else None


def bump_stats_cache() -> None:
    """Called after a commit that changed sales data. Never lets a cache outage break that commit."""
    if not has_app_context():
        return
    try:
        bump_stats_version(cache)
    except Exception:
        current_app.logger.warning("could not invalidate the statistics cache", exc_info=True)


def bump_stats_cache_soon() -> None:
    """Called after a commit that only checked tickets in or paid an order: one bump for those of
    the next STATS_REFRESH_DELAY_SECONDS, from this app's background thread (app/coalescer.py)."""
    if has_app_context():
        current_app.extensions[_SOON].request()


_SOON = "guichet_stats_bump_soon"


def _bump_for(app) -> Callable[[], None]:
    def bump() -> None:
        with app.app_context():
            bump_stats_cache()
    return bump


@bp.record_once
def _install_stats_invalidation(state) -> None:
    app = state.app
    app.extensions[_SOON] = Coalescer(_bump_for(app), app.config["STATS_REFRESH_DELAY_SECONDS"],
                                      name="stats-bump")
    install_stats_invalidation(db.session, bump_stats_cache, bump_stats_cache_soon)


class VersionCopies:
    """This process's copies of values cached under a stats version.

    A versioned entry never changes (only the version does), so a copy is never stale while
    the version is read from the shared cache on every view; it saves a Redis round trip and
    unpickling ~100 KB of HTML. One version at a time (a new one drops the old copies), a few
    entries, each for at most `LOCAL_SECONDS` (a safety net, like the shared cache's timeout).
    """

    def __init__(self, max_entries: int = 16):
        self.max_entries = max_entries
        self._state: tuple[str | None, dict[str, tuple[float, Any]]] = (None, {})
        self._lock = threading.Lock()

    def get(self, version: str, name: str) -> Any:
        held, values = self._state  # one read: a version with its own values
        entry = values.get(name) if held == version else None
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, version: str, name: str, value: Any, seconds: float) -> None:
        with self._lock:
            held, values = self._state
            if held != version or len(values) >= self.max_entries:
                values = {}
                self._state = (version, values)
            values[name] = (time.monotonic() + seconds, value)

    def clear(self) -> None:
        with self._lock:
            self._state = (None, {})


copies = VersionCopies()


def _cache_call(operation: Callable, *args, **kwargs) -> Any:
    """A shared-cache read or write that never breaks the page: an outage only costs a rebuild."""
    try:
        return operation(*args, **kwargs)
    except Exception:
        current_app.logger.warning("statistics cache unavailable; computing without it", exc_info=True)
        return None


def cached(version: str | None, name: str, build: Callable[[], Any],
           fresh: Callable[[Any], bool] = lambda value: True) -> Any:
    """The value `name` for this stats version: this process's copy, else the shared cache's,
    else `build()` (then kept in both). Without a version (cache down) it is built each time;
    only what the shared cache holds is copied here. A value for which `fresh` says no (one
    that time alone made out of date) is built again and replaces it."""
    if version is None:
        return build()
    value = copies.get(version, name)
    if value is not None and fresh(value):
        return value
    timeout = current_app.config["STATS_CACHE_SECONDS"]
    key = stats_key(version, name)
    value = _cache_call(cache.get, key)
    if value is None or not fresh(value):
        value = build()
        if not _cache_call(cache.set, key, value, timeout=timeout):
            return value  # not shared: no copy, which would outlive a version bump failing alike
    copies.put(version, name, value, seconds=min(timeout, LOCAL_SECONDS) if timeout > 0 else LOCAL_SECONDS)
    return value


_fingerprints: WeakKeyDictionary = WeakKeyDictionary()


def section_template():
    """The statistics section's template and a digest of its source: part of the cache key, so
    instances running another version of the template never serve each other's HTML."""
    env = current_app.jinja_env
    template = env.get_template(SECTION_TEMPLATE)
    fingerprint = _fingerprints.get(template)
    if fingerprint is None:
        source = env.loader.get_source(env, SECTION_TEMPLATE)[0]
        fingerprint = _fingerprints[template] = hashlib.sha256(source.encode()).hexdigest()[:12]
    return template, fingerprint


def catalogue(version: str | None) -> dict:
    """The filter menu's events and the paid orders count, cached under the stats version."""
    return cached(version, "overview", lambda: catalogue_overview(db.session))


def accounts(version: str | None, now: datetime) -> dict:
    """The accounts and staff counts as of `now`, cached under the stats version (users, people
    and invitations are watched with the sales) until a pending invitation expires."""
    return cached(version, "accounts", lambda: account_counts(db.session, now=now),
                  fresh=lambda counts: counts["changes_at"] is None or now < counts["changes_at"])


def filters_from_request(events: list[tuple[int, str]] | None = None
                         ) -> tuple[DateRangeFilterForm, StatsFilters, bool]:
    """The filter form read from the query string, the filters to apply and whether they are valid.

    Invalid filters show their message beside the field, and the page falls back to no filter.
    `events` are the menu's (id, title) pairs: by default the cached catalogue's (CSV exports).
    """
    if events is None:
        events = catalogue(_cache_call(stats_version, cache))["events"]
    form = DateRangeFilterForm(formdata=request.args)
    form.event.choices = [SelectChoice("", "All events")] + [SelectChoice(str(i), title) for i, title in events]
    if not request.args:
        return form, StatsFilters(), True
    if not form.validate():
        return form, StatsFilters(), False
    return form, StatsFilters(event_id=form.event_id, date_from=form.date_from.data, date_to=form.date_to.data), True


def statistics_section(version: str | None, filters: StatsFilters) -> Markup:
    """The totals, tables and chart data for `filters`, as HTML. Rendered from the template alone
    (no request context: nothing about the visitor, no CSRF token) since every admin shares it."""
    template, fingerprint = section_template()
    html = cached(version, f"section:{fingerprint}:{filters.cache_key()}",
                  lambda: template.render(stats=dashboard_stats(db.session, filters)))
    return Markup(html)


def render_dashboard(**context):
    """The page, with the admin areas and anything else the route gives in `context`."""
    version = _cache_call(stats_version, cache)
    overview = catalogue(version)
    form, filters, valid = filters_from_request(overview["events"])
    counts = {**accounts(version, datetime.now(UTC)), "events": len(overview["events"]),
              "paid_orders": overview["paid_orders"]}
    return render_template("admin/dashboard.html", form=form, stats_section=statistics_section(version, filters),
                           filters_valid=valid, export_args=_export_args(filters), counts=counts, **context)


def _export_args(filters: StatsFilters) -> dict:
    args = {"event": filters.event_id, "date_from": filters.date_from, "date_to": filters.date_to}
    return {key: value for key, value in args.items() if value is not None}
