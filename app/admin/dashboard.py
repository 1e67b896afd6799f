"""The sales dashboard shown at /admin/ (the view itself is `admin.dashboard` in routes.py).

Statistics come from app/services/stats.py through Flask-Caching. They are invalidated in
one place: a SQLAlchemy session hook installed here notices every committed sale,
cancellation, check-in or catalogue change, whoever makes it, and bumps the stats version.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, has_app_context, render_template, request
from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField
from wtforms.validators import Optional, ValidationError

from app.admin import bp
from app.extensions import cache, db
from app.models import Event
from app.services.stats import (
    StatsFilters,
    bump_stats_version,
    cached_dashboard_stats,
    dashboard_stats,
    install_stats_invalidation,
)


class DateRangeFilterForm(FlaskForm):
    """GET filters: nothing is changed, so no CSRF token (links can be shared and bookmarked)."""

    class Meta:
        csrf = False

    event = SelectField("Event", choices=[], coerce=str, validators=[Optional()])
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


@bp.record_once
def _install_stats_invalidation(_state) -> None:
    install_stats_invalidation(db.session, bump_stats_cache)


def event_choices() -> list[SelectChoice]:
    rows = db.session.execute(sa.select(Event.id, Event.title).order_by(Event.starts_at, Event.id))
    return [SelectChoice("", "All events")] + [SelectChoice(str(event_id), title) for event_id, title in rows]


def filters_from_request() -> tuple[DateRangeFilterForm, StatsFilters, bool]:
    """The filter form read from the query string, the filters to apply and whether they are valid.

    Invalid filters show their message beside the field, and the page falls back to no filter.
    """
    form = DateRangeFilterForm(formdata=request.args)
    form.event.choices = event_choices()
    if not request.args:
        return form, StatsFilters(), True
    if not form.validate():
        return form, StatsFilters(), False
    return form, StatsFilters(event_id=form.event_id, date_from=form.date_from.data, date_to=form.date_to.data), True


def current_stats(filters: StatsFilters) -> dict:
    """The statistics from the cache; straight from the database when the cache is down."""
    try:
        return cached_dashboard_stats(db.session, cache, filters,
                                      timeout=current_app.config["STATS_CACHE_SECONDS"])
    except Exception:
        current_app.logger.warning("statistics cache unavailable; computing without it", exc_info=True)
        db.session.rollback()
        return dashboard_stats(db.session, filters)


def render_dashboard(**context):
    form, filters, valid = filters_from_request()
    stats = current_stats(filters)
    return render_template("admin/dashboard.html", form=form, stats=stats, filters=filters,
                           filters_valid=valid, export_args=_export_args(filters), **context)


def _export_args(filters: StatsFilters) -> dict:
    args = {"event": filters.event_id, "date_from": filters.date_from, "date_to": filters.date_to}
    return {key: value for key, value in args.items() if value is not None}
