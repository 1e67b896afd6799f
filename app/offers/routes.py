"""HTTP views of the catalogue: the events list (with filters) and one event with its offers."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import abort, current_app, render_template, request
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from app.access import ANYONE, allow
from app.extensions import db
from app.offers import bp
from app.offers.cache import (
    CSRF_PLACEHOLDER,
    cached_fragment,
    cached_value,
    sees_the_shared_layout,
)
from app.services import catalogue
from app.services.cart import MAX_QUANTITY
from app.services.errors import NotFound

MAX_SLUG_LENGTH = 180


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])


@bp.get("/")
@allow(ANYONE)
def list_events():
    now = datetime.now(UTC)
    options = cached_value("filter-options", lambda: catalogue.filter_options(db.session, now=now, zone=_zone()))
    filters = catalogue.clean_filters(options, sport=request.args.get("sport"), venue=request.args.get("venue"),
                                      day=request.args.get("day"))

    def build() -> str:
        events = catalogue.list_events(db.session, filters, now=now, zone=_zone())
        return render_template("offers/_event_list.html", events=events, options=options, filters=filters,
                               availability=catalogue.availability, lowest_price=catalogue.lowest_price_cents)

    name = f"list:{filters.sport or ''}|{filters.venue or ''}|{filters.day or ''}"

    def page() -> str:
        return render_template("offers/list.html", body=cached_fragment(name, build), filters=filters)

    if sees_the_shared_layout():
        return cached_fragment(f"page:{name}", page)
    return page()


@bp.get("/<slug>")
@allow(ANYONE)
def show_event(slug: str):
    if len(slug) > MAX_SLUG_LENGTH:
        abort(404)
    now = datetime.now(UTC)

    def build() -> dict:
        event = catalogue.get_event(db.session, slug)  # NotFound is raised, never cached
        html = render_template("offers/_event_detail.html", event=event, on_sale=event.starts_at > now,
                               offers=catalogue.offers_on_sale(event), availability=catalogue.availability(event),
                               quantities=range(1, MAX_QUANTITY + 1), csrf_placeholder=CSRF_PLACEHOLDER)
        return {"title": event.title, "html": html}

    try:
        page = cached_value(f"event:{slug}", build)
    except NotFound:
        abort(404)

    def whole_page() -> str:
        return render_template("offers/show.html", body=Markup(page["html"]), title=page["title"])

    # The fragment is shared by every visitor: each gets their own CSRF token in its forms.
    html = cached_fragment(f"page:event:{slug}", whole_page) if sees_the_shared_layout() else Markup(whole_page())
    return html.replace(CSRF_PLACEHOLDER, generate_csrf())
