"""What each step of a purchase costs the server, independent of machine load: SQL statements,
commits, Redis commands and CPU time, counted in-process with the production configuration.

    .venv/bin/python bench/roundtrips.py [--buyers 30]

Each buyer (a fresh verified customer) logs in and runs the rush's steps through Flask's test
client (CSRF on, tokens read from the forms, redirects followed). `--minimal` runs the same
buyers' steps on the minimal shop (bench/minimal_shop.py) instead: its statements are counted at
psycopg, the app's at SQLAlchemy. CPU is `time.process_time()`
of this process around each step, so it covers the app only (not PostgreSQL or Redis). Counts
are per step, median over the buyers (rounded); also the catalogue pages and the check-in API.

`--apart` counts each of the eight requests of the rush's cart journey (`rush.py --journey cart`;
"buy now" leaves out the page the add redirects to) on its own (a POST apart from the page it
redirects to); `--apart --pay-now`, each of the five of the pay-now journey (the rush's default); with `--minimal` and `MINIMAL_STACK=fixed` in the environment, the same on the
fixed-stack shop: which requests of a purchase cost the app more than the least they could.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, rush
from bench.browser import parse_forms

SERVER_ENV = ("GUICHET_ENV", "SECRET_KEY", "TICKET_SIGNING_KEY", "DATABASE_URL", "REDIS_URL", "SESSION_COOKIE_SECURE",
              "RATELIMIT_ENABLED", "LOG_LEVEL", "INSTANCE_PATH", "MAIL_OUTBOX_DIR", "PUBLIC_BASE_URL", "MAIL_QUEUE")


class Counter:
    def __init__(self):
        self.sql = self.commits = self.redis = 0

    def install(self, engine) -> None:
        import sqlalchemy as sa

        sa.event.listen(engine, "before_cursor_execute", lambda *a, **k: self._sql())
        sa.event.listen(engine, "commit", lambda *a: self._commit())
        self.install_redis()

    def install_redis(self) -> None:
        import redis

        original = redis.Redis.execute_command

        def counted(client, *args, **kwargs):
            self.redis += 1
            return original(client, *args, **kwargs)

        redis.Redis.execute_command = counted

    def _sql(self):
        self.sql += 1

    def _commit(self):
        self.commits += 1

    def snapshot(self) -> tuple:
        return self.sql, self.commits, self.redis, time.process_time()


def make_minimal_shop():
    """bench/minimal_shop.py with the bench's settings; statements counted at psycopg."""
    import psycopg

    common.use_app()
    os.environ.update({k: v for k, v in common.server_env().items() if k in SERVER_ENV})
    from bench import minimal_shop

    counter = Counter()
    counter.install_redis()
    original = psycopg.Connection.execute

    def counted(conn, *args, **kwargs):
        counter._sql()
        return original(conn, *args, **kwargs)

    psycopg.Connection.execute = counted
    return minimal_shop.app, counter


def make_app():
    common.use_app()
    os.environ.update({k: v for k, v in common.server_env().items() if k in SERVER_ENV})
    from app import create_app
    from app.extensions import db

    app = create_app()
    app.config["PREFERRED_URL_SCHEME"] = "http"  # the test client's scheme: plain HTTP like the bench servers
    counter = Counter()
    with app.app_context():
        counter.install(db.engine)
    return app, counter


class Step:
    def __init__(self, client, counter):
        self.client, self.counter, self.costs = client, counter, {}

    def __call__(self, name, method, path, data=None, json=None, headers=None, follow=True):
        before = self.counter.snapshot()
        response = self.client.open(path, method=method, data=data, json=json, headers=headers,
                                    follow_redirects=follow)
        after = self.counter.snapshot()
        cost = (after[0] - before[0], after[1] - before[1], after[2] - before[2], (after[3] - before[3]) * 1000)
        self.costs.setdefault(name, []).append(cost)
        if response.status_code >= 500:
            raise RuntimeError(f"{name}: {response.status_code}")
        return response


def form(response, action_contains: str, **fields) -> tuple[str, dict]:
    for f in parse_forms(response.get_data(as_text=True)):
        if action_contains in f.action:
            return f.action, f.filled(**fields)
    raise LookupError(f"no form {action_contains!r}")


def buyer_flow(step: Step, email: str, event: dict, *, events_list: bool = True) -> None:
    page = step("login page", "GET", "/auth/login")
    action, data = form(page, "/auth/login", email=email, password=common.PASSWORD)
    step("login (bcrypt cost 4)", "POST", action, data)
    page = step("event page", "GET", f"/events/{event['slug']}")
    action, data = form(page, "/cart/add")
    page = step("add to cart", "POST", action, data | {"offer_id": str(event["offer_id"]), "quantity": "1"})
    page = step("checkout review", "GET", "/cart/checkout")
    action, data = form(page, "/orders")
    page = step("place order (+ order page)", "POST", action, data)
    now = datetime.now(UTC)
    action, data = form(page, "/pay", number=rush.SUCCESS_CARD, exp_month=f"{now.month:02d}",
                        exp_year=str(now.year + 2), cvv="123", holder="Rush Buyer")
    step("pay (+ order page)", "POST", action, data)
    if events_list:  # the minimal shop has no list page
        step("events list", "GET", "/events/")


def buyer_flow_apart(step: Step, email: str, event: dict) -> None:
    """The cart journey's eight requests, each counted on its own: a POST apart from the page it redirects to."""
    page = step("login page", "GET", "/auth/login")
    action, data = form(page, "/auth/login", email=email, password=common.PASSWORD)
    step("login (bcrypt cost 4)", "POST", action, data)  # and the page after it, as a browser would
    page = step("event page", "GET", f"/events/{event['slug']}")
    action, data = form(page, "/cart/add")
    added = step("add to cart (POST)", "POST", action, data | {"offer_id": str(event["offer_id"]), "quantity": "1"},
                 follow=False)
    step("cart page", "GET", added.headers["Location"])
    page = step("checkout review", "GET", "/cart/checkout")
    action, data = form(page, "/orders")
    placed = step("place order (POST)", "POST", action, data, follow=False)
    page = step("order page, pending", "GET", placed.headers["Location"])
    now = datetime.now(UTC)
    action, data = form(page, "/pay", number=rush.SUCCESS_CARD, exp_month=f"{now.month:02d}",
                        exp_year=str(now.year + 2), cvv="123", holder="Rush Buyer")
    paid = step("pay (POST)", "POST", action, data, follow=False)
    step("order page, paid", "GET", paid.headers["Location"])


def buyer_flow_pay_now_apart(step: Step, email: str, event: dict) -> None:
    """The rush's pay-now journey, each request counted on its own: "buy now", the review, its
    card form (placed and paid), the paid order's page."""
    page = step("login page", "GET", "/auth/login")
    action, data = form(page, "/auth/login", email=email, password=common.PASSWORD)
    step("login (bcrypt cost 4)", "POST", action, data)
    page = step("event page", "GET", f"/events/{event['slug']}")
    action, data = form(page, "/cart/add")
    added = step("buy now (POST)", "POST", action, data | {"offer_id": str(event["offer_id"]), "quantity": "1",
                                                          "buy_now": "1"}, follow=False)
    page = step("checkout review", "GET", added.headers["Location"])
    action, data = form(page, "/cart/checkout", **rush.card_fields())
    paid = step("place and pay (POST)", "POST", action, data, follow=False)
    step("order page, paid", "GET", paid.headers["Location"])


def staff_login(step: Step, account: dict) -> None:
    import pyotp

    page = step("staff login page", "GET", "/auth/login")
    action, data = form(page, "/auth/login", email=account["email"], password=common.PASSWORD)
    page = step("staff login (bcrypt 12)", "POST", action, data)
    action, data = form(page, "/auth/2fa", code=pyotp.TOTP(account["totp_secret"]).now())
    page = step("staff 2FA step", "POST", action, data)
    if "/auth/" in page.request.path:
        raise RuntimeError(f"{account['email']}: 2FA refused (code used in this 30 s step?)")


def staff_flows(app, counter, scans: int) -> dict:
    import re

    from bench import admin, checkin

    step = Step(app.test_client(), counter)
    staff_login(step, checkin.staff_account(4))
    page = step("scanner token page", "GET", "/tickets/scanner-tokens")
    action, data = form(page, "/tickets/scanner-tokens", name="roundtrips")
    page = step("create scanner token", "POST", action, data)
    token = re.search(r'id="new-token"[^>]*>([^<]+)<', page.get_data(as_text=True)).group(1).strip()
    for payload in checkin.payloads_for_unused_tickets(scans, newest_first=True):
        step("check-in API (bearer token)", "POST", checkin.API, json={"payload": payload},
             headers={"Authorization": f"Bearer {token}"})
    costs = step.costs
    step = Step(app.test_client(), counter)
    step.costs = costs
    staff_login(step, admin.admin_account())
    for _ in range(5):
        common.clear_app_cache()
        step("admin dashboard, cache cleared", "GET", admin.PAGE)
    for _ in range(10):
        step("admin dashboard, warm", "GET", admin.PAGE)
    checkin.revoke_bench_tokens("roundtrips")
    return step.costs


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=30)
    parser.add_argument("--no-staff", action="store_true", help="skip the check-in and admin requests")
    parser.add_argument("--minimal", action="store_true", help="the buyers' steps on bench/minimal_shop.py")
    parser.add_argument("--apart", action="store_true",
                        help="each request on its own (redirects not followed): where a purchase's CPU goes")
    parser.add_argument("--pay-now", action="store_true",
                        help="with --apart: the rush's pay-now journey (5 requests) instead of the cart journey")
    args = parser.parse_args(argv)
    app, counter = make_minimal_shop() if args.minimal else make_app()
    event = rush.create_rush_event(args.buyers * 2, "roundtrips")
    emails = rush.create_buyers(args.buyers, "roundtrips")
    costs: dict[str, list] = {}
    for email in emails:
        client = app.test_client()
        step = Step(client, counter)
        if args.apart:
            (buyer_flow_pay_now_apart if args.pay_now else buyer_flow_apart)(step, email, event)
        else:
            buyer_flow(step, email, event, events_list=not args.minimal)
        for name, values in step.costs.items():
            costs.setdefault(name, []).extend(values)
    if not (args.no_staff or args.minimal or args.apart):
        for name, values in staff_flows(app, counter, 30).items():
            costs.setdefault(name, []).extend(values)
    shop = "the minimal shop" if args.minimal else "the app"
    print(f"\nper request on {shop}, median of {args.buyers} buyers (CPU in-process; loadavg {common.loadavg()})")
    print(f"{'step':32s} {'SQL':>5s} {'commits':>8s} {'Redis':>6s} {'CPU ms':>7s}")
    figures = {}
    for name, values in costs.items():
        med = [statistics.median(v[i] for v in values) for i in range(4)]
        print(f"{name:32s} {med[0]:5.0f} {med[1]:8.0f} {med[2]:6.0f} {med[3]:7.1f}")
        figures[name] = {"sql": med[0], "commits": med[1], "redis": med[2], "cpu_ms": round(med[3], 1)}
    name = ("minimal_" if args.minimal else "") + ("roundtrips_apart" if args.apart else "roundtrips")
    common.record(name, {f"{name}_per_step": figures})
    return figures


if __name__ == "__main__":
    main()
