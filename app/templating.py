"""Jinja filters and globals: money in cents, dates in the event's time zone."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask

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


def register(app: Flask) -> None:
    zone = ZoneInfo(app.config["DISPLAY_TIMEZONE"])

    def local(value: datetime | None, fmt: str = "%a %d %b %Y, %H:%M") -> str:
        if value is None:
            return ""
        return value.astimezone(zone).strftime(fmt)

    app.jinja_env.filters["money"] = format_cents
    app.jinja_env.filters["local"] = local
    app.jinja_env.globals["message_for"] = message_for
    app.jinja_env.globals["ROLE_ADMIN"] = ADMIN
    app.jinja_env.globals["DISPLAY_TIMEZONE"] = app.config["DISPLAY_TIMEZONE"]
