"""Demo data: a realistic programme of sessions and a few accounts, for `make run` and the docs."""
from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Event, Offer, Role, User
from app.services.signing import make_user_key

PARIS = ZoneInfo("Europe/Paris")

# (sport, title, venue, day offset, local start "HH:MM", capacity, solo price in cents)
PROGRAMME = [
    ("Athletics", "Athletics — Men's 100m Final", "Stade de France", 0, "21:10", 800, 8500),
    ("Athletics", "Athletics — Women's Marathon", "Invalides", 6, "08:00", 1200, 2400),
    ("Swimming", "Swimming — Finals Session", "Paris La Défense Arena", 1, "20:30", 600, 9500),
    ("Swimming", "Swimming — Heats Session", "Paris La Défense Arena", 2, "11:00", 600, 4500),
    ("Basketball", "Basketball — Men's Quarter-final", "Bercy Arena", 3, "17:30", 500, 7000),
    ("Basketball", "Basketball — Women's Semi-final", "Bercy Arena", 5, "21:00", 500, 7500),
    ("Fencing", "Fencing — Sabre Team Final", "Grand Palais", 2, "19:00", 300, 6500),
    ("Judo", "Judo — Mixed Team Final", "Champ-de-Mars Arena", 4, "16:00", 400, 5500),
    ("Tennis", "Tennis — Women's Singles Final", "Roland-Garros, Court Philippe-Chatrier", 5, "14:00", 700, 12000),
    ("Beach volleyball", "Beach Volleyball — Men's Final", "Eiffel Tower Stadium", 7, "21:00", 450, 8000),
    ("Cycling", "Track Cycling — Keirin Finals", "Saint-Quentin-en-Yvelines Velodrome", 3, "18:00", 350, 5000),
    ("Rugby sevens", "Rugby Sevens — Women's Final", "Stade de France", 1, "16:30", 900, 6000),
    ("Handball", "Handball — Men's Final", "Pierre Mauroy Stadium", 8, "14:30", 1000, 5500),
    ("Gymnastics", "Artistic Gymnastics — All-around Final", "Bercy Arena", 4, "18:15", 500, 9000),
]

# (kind, name, persons, multiplier of the solo price in percent)
STANDARD_OFFERS = [("solo", "Solo", 1, 100), ("duo", "Duo", 2, 190), ("family", "Family", 4, 340)]

DEMO_PASSWORD = "Podium-Relay-2026"
DEMO_ACCOUNTS = [
    ("admin", "admin@guichet.test", "Ada", "Admin", Role.ADMIN.value),
    ("staff", "staff@guichet.test", "Sam", "Steward", Role.STAFF.value),
    ("customer", "customer@guichet.test", "Camille", "Martin", Role.CUSTOMER.value),
]


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def load_demo_events(session: Session, *, now: datetime) -> list[Event]:
    """Fourteen published sessions starting a month from `now`, each with Solo, Duo and Family."""
    first_day = (now.astimezone(PARIS) + timedelta(days=30)).date()
    events = []
    for sport, title, venue, offset, hhmm, capacity, solo_cents in PROGRAMME:
        hours, minutes = map(int, hhmm.split(":"))
        local_start = datetime.combine(first_day + timedelta(days=offset), time(hours, minutes), tzinfo=PARIS)
        event = Event(
            title=title, slug=slugify(title), sport=sport, venue=venue,
            starts_at=local_start.astimezone(UTC), capacity=capacity, seats_taken=0,
            description=f"{title} at {venue}. Doors open one hour before the start.", published=True,
        )
        for kind, name, persons, percent in STANDARD_OFFERS:
            price = round(solo_cents * percent / 100 / 100) * 100  # whole euros
            event.offers.append(Offer(kind=kind, name=name, persons=persons, price_cents=price, published=True))
        session.add(event)
        events.append(event)
    return events


def load_demo_accounts(session: Session, *, password_hash: str, now: datetime) -> list[User]:
    users = []
    for username, email, first, last, role in DEMO_ACCOUNTS:
        user = User(
            username=username, username_key=username.lower(), email=email, first_name=first,
            last_name=last, password_hash=password_hash, user_key=make_user_key(), role=role,
            email_verified_at=now,
        )
        session.add(user)
        users.append(user)
    return users


def database_is_empty(session: Session) -> bool:
    return session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0 and (
        session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
    )
