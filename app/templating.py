"""Jinja filters and globals: money in cents, dates in the event's time zone, the layout's links and bar."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, has_request_context, render_template, request
from flask_wtf.csrf import generate_csrf
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

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


# Kinds of navigation bar: a page's endpoint × role × cart count, a few hundred at most.
_MAX_REMEMBERED_BARS = 1024
_CSRF_PLACEHOLDER = "__NAVBAR_CSRF_TOKEN__"


def remembering_navigation_bar():
    """`navigation_bar()` for the layout: `_navbar.html`, rendered once per kind of bar.

    The bar varies only with the page's endpoint (its active link), the visitor's role (none when
    signed out) and the cart's count; the log-out form's CSRF token, the one per-visitor part, is
    filled in per request. Rendered through its macros on every page, it was 16 % of a signed-in
    page's instructions (bench/instructions.py). Kept per script root, like the links it holds.
    """
    remembered: dict[tuple, str] = {}

    @pass_context
    def navigation_bar(context: Context) -> Markup:
        if not has_request_context():
            return Markup(render_template("_navbar.html", csrf_placeholder=_CSRF_PLACEHOLDER))
        user = context.get("current_user")
        role = user.role if user is not None and user.is_authenticated else None
        key = (request.script_root, request.endpoint, role, context.get("cart_count"))
        html = remembered.get(key)
        if html is None:
            html = render_template("_navbar.html", csrf_placeholder=_CSRF_PLACEHOLDER)
            if len(remembered) < _MAX_REMEMBERED_BARS:
                remembered[key] = html
        if _CSRF_PLACEHOLDER in html:  # signed in: the log-out form
            html = html.replace(_CSRF_PLACEHOLDER, generate_csrf())
        return Markup(html)

    return navigation_bar


def register(app: Flask) -> None:
    zone = ZoneInfo(app.config["DISPLAY_TIMEZONE"])

    def local(value: datetime | None, fmt: str = "%a %d %b %Y, %H:%M") -> str:
        if value is None:
            return ""
        return value.astimezone(zone).strftime(fmt)

    app.jinja_env.globals["url_for"] = remembering_url_for(app)
    app.jinja_env.globals["navigation_bar"] = remembering_navigation_bar()
    app.jinja_env.filters["money"] = format_cents
    app.jinja_env.filters["local"] = local
    app.jinja_env.globals["message_for"] = message_for
    app.jinja_env.globals["ROLE_ADMIN"] = ADMIN
    app.jinja_env.globals["DISPLAY_TIMEZONE"] = app.config["DISPLAY_TIMEZONE"]
