"""Bulk data for the benchmarks: 50 events × 3 offers, 10 000 customers, 100 000 paid orders,
300 000 tickets, plus one admin and four gate stewards (with TOTP), on PostgreSQL.

    .venv/bin/python bench/seed.py            # drops and recreates the guichet_bench database

The schema comes from the models with `db.create_all()` (run once here, in this process, before
any server starts): the models move faster than the single initial migration while the other
areas are being built. Rows go in with PostgreSQL COPY (psycopg `cursor.copy`); every customer
shares one bcrypt (cost 12) hash; keys and digests are os.urandom + hashlib.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

EVENTS = 50
CUSTOMERS = 10_000
ORDERS = 100_000
TICKETS = 300_000
STEWARDS = 4
SPORTS = [
    ("Athletics", "Stade de France"), ("Swimming", "Paris La Défense Arena"), ("Basketball", "Bercy Arena"),
    ("Fencing", "Grand Palais"), ("Judo", "Champ-de-Mars Arena"), ("Tennis", "Roland-Garros"),
    ("Beach volleyball", "Eiffel Tower Stadium"), ("Track cycling", "Saint-Quentin Velodrome"),
    ("Rugby sevens", "Stade de France"), ("Handball", "Pierre Mauroy Stadium"),
]
OFFERS = [("solo", "Solo", 1, 100), ("duo", "Duo", 2, 190), ("family", "Family", 4, 340)]
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def create_schema() -> None:
    from app import create_app
    from app.extensions import db
    from config import Config

    app = create_app(Config, common.app_overrides())
    with app.app_context():
        db.create_all()
        db.engine.dispose()


def table_defaults(table_name: str, given: list[str]) -> tuple[list[str], list]:
    """Columns the seed does not set but the table requires, with their model defaults.

    Other areas add columns while the benchmark is written; a NOT NULL column with a Python
    default gets that default, and one without any default stops the seed with its name.
    """
    import app.models  # noqa: F401 (registers every table)
    from app.extensions import db

    table = db.metadata.tables[table_name]
    names, values = [], []
    for column in table.columns:
        if column.name in given or column.server_default is not None:
            continue
        default = column.default
        if default is not None and default.is_scalar:
            names.append(column.name)
            values.append(default.arg)
        elif default is not None and default.is_callable:
            names.append(column.name)
            values.append(default.arg(None))
        elif not column.nullable and not column.primary_key:
            raise SystemExit(f"seed: {table_name}.{column.name} is NOT NULL without a default; teach seed.py")
    return names, values


def copy_rows(conn, table: str, columns: list[str], rows) -> int:
    extra_names, extra_values = table_defaults(table, columns)
    extra = tuple(json.dumps(v) if isinstance(v, (dict, list)) else v for v in extra_values)
    count = 0
    with conn.cursor() as cur, cur.copy(f'COPY "{table}" ({", ".join(columns + extra_names)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(tuple(row) + extra)
            count += 1
    return count


def order_code(index: int, taken: set) -> str:
    """Unique 'GCH-XXXXXX' codes from os.urandom (the app's own codes are random too)."""
    while True:
        raw = os.urandom(6)
        code = "GCH-" + "".join(ALPHABET[b % len(ALPHABET)] for b in raw)
        if code not in taken:
            taken.add(code)
            return code


def quantities() -> list[int]:
    """1..5 tickets per order (mean 3), nudged so the total is exactly TICKETS."""
    qty = [1 + (i // 3) % 5 for i in range(ORDERS)]
    deficit = TICKETS - sum(qty)
    i = ORDERS - 1
    while deficit > 0:
        add = min(deficit, 5)
        qty[i] += add
        deficit -= add
        i -= 1
    return qty


def build(now: datetime, password_hash: str) -> dict:
    """All rows in memory as tuples (a few hundred MB at most for 300 000 tickets)."""
    import pyotp

    events, offers = [], []
    for e in range(EVENTS):
        sport, venue = SPORTS[e % len(SPORTS)]
        starts = now + timedelta(days=20 + e, hours=e % 7)
        title = f"{sport} — Session {e + 1:02d}"
        events.append([e + 1, title, f"bench-{e + 1:02d}-{sport.lower().replace(' ', '-')}", sport, venue,
                       starts, 0, 0, f"{title} at {venue}.", True, now - timedelta(days=60)])
        solo = 4000 + 500 * (e % 12)
        for k, (kind, name, persons, pct) in enumerate(OFFERS):
            offers.append((e * 3 + k + 1, e + 1, kind, name, persons, round(solo * pct / 100 / 100) * 100, True))

    users = []
    user_keys = []
    for c in range(CUSTOMERS):
        key = os.urandom(32)
        user_keys.append(key)
        users.append((c + 1, f"buyer{c + 1:05d}", f"buyer{c + 1:05d}@bench.test", f"buyer{c + 1:05d}",
                      "Bench", f"Buyer {c + 1:05d}", password_hash, key, "customer", now - timedelta(days=90),
                      None, now - timedelta(days=90), None, None, None))
    staff_accounts = []
    for s in range(STEWARDS + 1):
        uid = CUSTOMERS + s + 1
        role, name = ("admin", "benchadmin") if s == 0 else ("staff", f"steward{s}")
        secret = pyotp.random_base32()
        users.append((uid, name, f"{name}@bench.test", name, "Bench", name.title(), password_hash, os.urandom(32),
                       role, now - timedelta(days=90), None, now - timedelta(days=90), secret, now - timedelta(days=89),
                       None))
        staff_accounts.append({"id": uid, "email": f"{name}@bench.test", "role": role, "totp_secret": secret})

    qty = quantities()
    taken: set = set()
    orders, lines, payments, tickets = [], [], [], []
    seats = [0] * EVENTS
    purchase_keys = os.urandom(32 * TICKETS)
    ticket_id = 0
    for i in range(ORDERS):
        c = i % CUSTOMERS
        e = (c * 7 + (i // CUSTOMERS) * 5) % EVENTS  # ten distinct events per customer
        offer = offers[e * 3 + i % 3]
        persons, price = offer[4], offer[5]
        q = qty[i]
        created = now - timedelta(days=30) + timedelta(seconds=i * 25.9)  # spread over 30 days
        paid = created + timedelta(seconds=70)
        code = order_code(i, taken)
        oid = i + 1
        orders.append((oid, code, c + 1, "paid", q * price, "EUR", created, created + timedelta(minutes=15),
                       paid, None, os.urandom(16).hex()))
        lines.append((oid, oid, offer[0], e + 1, q, persons, price))
        payments.append((oid, oid, "charge", q * price, True, None, "visa", "4242", f"mock_{os.urandom(8).hex()}",
                         paid))
        seats[e] += q * persons
        holder = f"Bench Buyer {c + 1:05d}"
        for n in range(q):
            pk = purchase_keys[ticket_id * 32:(ticket_id + 1) * 32]
            ticket_id += 1
            tickets.append((ticket_id, f"{code}-{n + 1:02d}", oid, oid, c + 1, e + 1, offer[0], persons, holder, pk,
                            hashlib.sha256(user_keys[c] + pk).digest(), paid, None, None, None))
    for e, event in enumerate(events):
        event[6] = max(1000, -(-seats[e] * 5 // 4 // 1000) * 1000)  # capacity: ~80 % sold
        event[7] = seats[e]
    return {"events": events, "offers": offers, "users": users, "orders": orders, "lines": lines,
            "payments": payments, "tickets": tickets, "staff": staff_accounts}


COLUMNS = {
    "events": ["id", "title", "slug", "sport", "venue", "starts_at", "capacity", "seats_taken", "description",
               "published", "created_at"],
    "offers": ["id", "event_id", "kind", "name", "persons", "price_cents", "published"],
    "users": ["id", "username", "email", "username_key", "first_name", "last_name", "password_hash", "user_key",
              "role", "email_verified_at", "disabled_at", "created_at", "totp_secret", "totp_enabled_at",
              "totp_last_step"],
    "orders": ["id", "code", "user_id", "status", "total_cents", "currency", "created_at", "expires_at", "paid_at",
               "cancelled_at", "idempotency_key"],
    "order_lines": ["id", "order_id", "offer_id", "event_id", "quantity", "persons", "unit_price_cents"],
    "payments": ["id", "order_id", "kind", "amount_cents", "succeeded", "error_code", "card_brand", "card_last4",
                 "transaction_id", "created_at"],
    "tickets": ["id", "number", "order_id", "order_line_id", "user_id", "event_id", "offer_id", "persons",
                "holder_name", "purchase_key", "key_digest", "issued_at", "voided_at", "checked_in_at",
                "checked_in_by_id"],
}
SOURCE = {"events": "events", "offers": "offers", "users": "users", "orders": "orders", "order_lines": "lines",
          "payments": "payments", "tickets": "tickets"}


def load(data: dict) -> dict:
    counts = {}
    with common.pg_connect() as conn:
        for table, columns in COLUMNS.items():
            counts[table] = copy_rows(conn, table, columns, data[SOURCE[table]])
        for table in COLUMNS:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM \"{table}\"))")
        conn.commit()
    with common.pg_connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return counts


def main() -> dict:
    import bcrypt

    common.use_app()
    started = time.perf_counter()
    common.recreate_database()
    create_schema()
    t_schema = time.perf_counter()
    password_hash = bcrypt.hashpw(common.PASSWORD.encode(), bcrypt.gensalt(12)).decode()
    now = datetime.now(UTC)
    data = build(now, password_hash)
    t_build = time.perf_counter()
    counts = load(data)
    common.OUT.mkdir(parents=True, exist_ok=True)
    common.ACCOUNTS_FILE.write_text(json.dumps({"password": common.PASSWORD, "staff": data["staff"]}, indent=2))
    common.flush_redis()
    total = time.perf_counter() - started
    print(f"seed: schema {t_schema - started:.1f}s, rows built {t_build - t_schema:.1f}s, "
          f"COPY + VACUUM ANALYZE {time.perf_counter() - t_build:.1f}s — total {total:.1f}s")
    print("seed: " + ", ".join(f"{table} {n}" for table, n in counts.items()))
    figures = {"seed_seconds": round(total, 1), "seed_orders": counts["orders"], "seed_tickets": counts["tickets"],
               "seed_customers": CUSTOMERS}
    common.record("seed", figures)
    return figures


if __name__ == "__main__":
    main()
