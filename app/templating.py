"""Jinja filters and globals: money in cents, dates in the event's time zone, the layout's links."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, has_request_context, request

from app.access import ADMIN
from app.messages import message_for


def format_cents(cents: int | None, currency: str = "EUR") -> str:
    """Integer cents to a display amount; money is never a float."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    symbol = "€" if currency == "EUR" else f"{currency} "
    return f"{sign}{symbol}{cents // 100:,}.{cents % 100:02d}"


# The layout's links take no values (a navbar endpoint, a static file): a few dozen in all.
_MAX_REMEMBERED_URLS = 512


def remembering_url_for(app: Flask):
    """`url_for` for templates, remembering the URLs built without values.

    Every page's layout builds about a dozen links that never change (its stylesheets and
    scripts, the navbar's endpoints); building them through Werkzeug's map each time was about
    4 % of a signed-in page's instructions (bench/instructions.py). They are remembered per
    script root (the path the app is mounted under), so an app served under two prefixes links
    each correctly. Links with values (an order's code, `_external`, ...) and blueprint-relative
    endpoints are built as usual. The app registers no `url_defaults` hook, which would make an
    endpoint's URL vary.
    """
    build = app.url_for
    remembered: dict[tuple[str, str, str | None], str] = {}

    def url_for(endpoint: str, /, **values) -> str:
        plain = not values or (len(values) == 1 and isinstance(values.get("filename"), str))
        if not plain or endpoint.startswith(".") or not has_request_context():
            return build(endpoint, **values)
        key = (request.script_root, endpoint, values.get("filename"))
        url = remembered.get(key)
        if url is None:
            url = build(endpoint, **values)
            if len(remembered) < _MAX_REMEMBERED_URLS:
                remembered[key] = url
        return url

    return url_for


def register(app: Flask) -> None:
    zone = ZoneInfo(app.config["DISPLAY_TIMEZONE"])

    def local(value: datetime | None, fmt: str = "%a %d %b %Y, %H:%M") -> str:
        if value is None:
            return ""
        return value.astimezone(zone).strftime(fmt)

    app.jinja_env.globals["url_for"] = remembering_url_for(app)
    app.jinja_env.filters["money"] = format_cents
    app.jinja_env.filters["local"] = local
    app.jinja_env.globals["message_for"] = message_for
    app.jinja_env.globals["ROLE_ADMIN"] = ADMIN
    app.jinja_env.globals["DISPLAY_TIMEZONE"] = app.config["DISPLAY_TIMEZONE"]
