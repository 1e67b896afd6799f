"""The on-sale rush: N logged-in buyers run the whole purchase at once against too few seats.

    .venv/bin/python bench/rush.py [--buyers 600] [--seats 500]

Setup (not timed): a fresh published event with `--seats` seats and a Solo offer; `--buyers`
verified customers created with SQL COPY whose password hash has bcrypt cost 4 (cost 12 would
make the 600 setup logins take minutes on 2 cores; bench/logins.py measures cost-12 logins).
Every buyer then logs in through the real /auth/login form (CSRF token read from the form) and
keeps its own cookie jar, so each has its own server-side session.

The rush (timed): all buyers start together and each, like a browser, opens the event page,
clicks "Buy Solo now" (the add-to-cart form's second button: added, then straight to the
checkout review), and pays there with the success card 4242 4242 4242 4242 (the review's card
form places the order and pays it), following every redirect: 5 requests. `--journey buy-now`
clicks "Place order, pay later" on the review instead and pays on the order page: 7 requests,
with placement and payment timed apart, as the runs of 2026-11-24 23:41 to 2026-11-25 01:00 did.
`--journey cart` also clicks "Add Solo to cart" (back to the event page), then opens the review:
8 requests, as every run before those did. Times are
client-side round trips on loopback (they include all server time, the client's own parsing,
and queueing when all workers are busy). Afterwards the database is checked: paid seats never
exceed capacity (oversell = 0), and equal capacity (or the demand when it is smaller).

Before the rush, `--solo` other buyers (30 by default) each run the same purchase alone on the
server, one after the other: `purchase_p50_ms` is one buyer's whole purchase without a queue.

The measured rush comes second: a first one, on another event with as many buyers, warms the
server up (an on-sale opens on a shop that has served for hours: its PostgreSQL connections,
caches and compiled templates are warm). Its figures are kept as `rush_cold_…`; `--cold`
measures the first rush instead, as runs before 2026-11-23 22:00 did.

The servers run with MAIL_QUEUE on, as in production: paying queues the confirmation email and
`flask emails work` (started here at nice +19, EMAIL_WORKER_NICE's default; +10 before 2026-11-25)
renders the PDF tickets and sends it. Its CPU during the rush is reported, and how long after the
last buyer's answer the queue was empty.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.browser import Browser, log_in, server_errors
from bench.nginx import two_instances_behind_nginx

SUCCESS_CARD = "4242424242424242"
JOURNEYS = {"pay-now": 5, "buy-now": 7, "cart": 8}  # a purchase's requests, from the event page to the paid order
DEFAULT_JOURNEY = "pay-now"
STEPS_OF_PLACING = ("placement", "payment", "place_and_pay")  # the last is the first two in one request (pay-now)
BUYER_BCRYPT_COST = 4
PRICE_CENTS = 5000


# --------------------------------------------------------------------------- setup (SQL)
def create_rush_event(seats: int, label: str) -> dict:
    stamp = datetime.now(UTC)
    slug = f"rush-{label}-{stamp:%Y%m%d%H%M%S}-{os.urandom(2).hex()}"
    with common.pg_connect() as conn:
        event_id = conn.execute(
            "INSERT INTO events (title, slug, sport, venue, starts_at, capacity, seats_taken, description, "
            "published, created_at) VALUES (%s, %s, 'Athletics', 'Stade de France', %s, %s, 0, %s, true, %s) "
            "RETURNING id",
            (f"Rush — Men's 100m Final ({label})", slug, stamp + timedelta(days=10), seats,
             "On-sale rush benchmark.", stamp)).fetchone()[0]
        offer_id = conn.execute(
            "INSERT INTO offers (event_id, kind, name, persons, price_cents, published) "
            "VALUES (%s, 'solo', 'Solo', 1, %s, true) RETURNING id", (event_id, PRICE_CENTS)).fetchone()[0]
        conn.commit()
    return {"event_id": event_id, "offer_id": offer_id, "slug": slug, "capacity": seats}


def create_buyers(count: int, label: str) -> list[str]:
    """Verified customers, bulk-inserted; one cost-4 bcrypt hash shared by all."""
    import bcrypt

    from bench.seed import copy_rows

    common.use_app()
    password_hash = bcrypt.hashpw(common.PASSWORD.encode(), bcrypt.gensalt(BUYER_BCRYPT_COST)).decode()
    now = datetime.now(UTC)
    tag = f"{label}{now:%H%M%S}{os.urandom(2).hex()}"
    emails = [f"rush{tag}-{i:05d}@bench.test" for i in range(count)]
    rows = [(f"r{tag}{i:05d}", email, f"r{tag}{i:05d}", "Rush", f"Buyer {i:05d}", password_hash, os.urandom(32),
             "customer", now, now) for i, email in enumerate(emails)]
    with common.pg_connect() as conn:
        copy_rows(conn, "users", ["username", "email", "username_key", "first_name", "last_name", "password_hash",
                                  "user_key", "role", "email_verified_at", "created_at"], rows)
        conn.commit()
    return emails


def sold_seats(event_id: int) -> dict:
    with common.pg_connect() as conn:
        capacity, taken = conn.execute("SELECT capacity, seats_taken FROM events WHERE id = %s", (event_id,)).fetchone()
        paid_seats, paid_orders = conn.execute(
            "SELECT coalesce(sum(l.quantity * l.persons), 0), count(DISTINCT o.id) FROM order_lines l "
            "JOIN orders o ON o.id = l.order_id WHERE l.event_id = %s AND o.status = 'paid'", (event_id,)).fetchone()
        tickets = conn.execute("SELECT count(*) FROM tickets WHERE event_id = %s AND voided_at IS NULL",
                               (event_id,)).fetchone()[0]
    return {"capacity": capacity, "seats_taken": taken, "paid_seats": int(paid_seats),
            "paid_orders": paid_orders, "tickets": tickets}


# --------------------------------------------------------------------------- the buyers
async def log_in_all(base: str, emails: list[str], concurrency: int = 24) -> list[Browser]:
    gate = asyncio.Semaphore(concurrency)
    browsers = [Browser(base) for _ in emails]

    async def one(browser: Browser, email: str) -> None:
        async with gate:
            await log_in(browser, email, common.PASSWORD)

    await asyncio.gather(*(one(b, e) for b, e in zip(browsers, emails, strict=True)))
    return browsers


def card_fields() -> dict:
    now = datetime.now(UTC)
    return {"number": SUCCESS_CARD, "exp_month": f"{now.month:02d}", "exp_year": str(now.year + 2), "cvv": "123",
            "holder": "Rush Buyer"}


async def purchase(browser: Browser, event: dict, start: asyncio.Event, journey: str = DEFAULT_JOURNEY) -> dict:
    """One buyer's whole purchase; returns step times (s) and the outcome."""
    await start.wait()
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    page = await browser.get(f"/events/{event['slug']}")
    steps["event_page"] = page.seconds
    try:
        add_form = page.form("/cart/add", offer_id=event["offer_id"])
    except LookupError:
        if page.status == 200 and "Sold out" in page.text:  # every seat held before this page was built
            return {"outcome": "sold_out_on_event_page", "steps": steps, "total": time.perf_counter() - t0}
        raise
    if journey in ("pay-now", "buy-now"):
        page = await browser.submit(add_form, "buy_now", quantity=1)  # answered by the review
        steps["add_to_cart"] = page.seconds
    else:
        page = await browser.submit(add_form, quantity=1)
        steps["add_to_cart"] = page.seconds
        page = await browser.get("/cart/checkout")
        steps["checkout_review"] = page.seconds
    try:
        place_form = page.form("/cart/checkout" if journey == "pay-now" else "/orders")
    except LookupError:
        return {"outcome": "no_checkout", "steps": steps, "total": time.perf_counter() - t0}
    if journey == "pay-now":  # placed and paid by one submit, answered by the order's page
        page = await browser.submit(place_form, **card_fields())
        steps["place_and_pay"] = page.seconds
        if "/orders/" not in page.url or page.status != 200:
            outcome = "sold_out" if page.status < 500 else f"http_{page.status}"
            return {"outcome": outcome, "steps": steps, "total": time.perf_counter() - t0}
        paid = '/pay"' not in page.text  # a refused charge leaves the order pending, its card form shown
        return {"outcome": "paid" if paid else "payment_refused", "steps": steps, "total": time.perf_counter() - t0}
    page = await browser.submit(place_form)
    steps["placement"] = page.seconds
    if "/orders/" not in page.url or page.status != 200:
        outcome = "sold_out" if page.status < 500 else f"http_{page.status}"
        return {"outcome": outcome, "steps": steps, "total": time.perf_counter() - t0}
    page = await browser.submit(page.form("/pay"), **card_fields())
    steps["payment"] = page.seconds
    paid = page.status == 200 and "/pay" not in page.url
    return {"outcome": "paid" if paid else f"payment_{page.status}", "steps": steps,
            "total": time.perf_counter() - t0}


async def solo_purchases(base: str, count: int, label: str, journey: str) -> dict:
    """`count` buyers, one after the other, each alone on the server: one buyer's whole purchase.

    Client round trips on loopback with nothing else running, so each is the server's time for
    the request plus well under a millisecond of loopback and client parsing: an upper bound of
    the server time. Their own event has a seat for each, so they take nothing from the rush."""
    if count <= 0:
        return {}
    event = create_rush_event(count, f"{label}-solo")
    browsers = await log_in_all(base, create_buyers(count, f"{label}-solo"))
    go = asyncio.Event()
    go.set()
    results = []
    for browser in browsers:
        results.append(await purchase(browser, event, go, journey))
        await browser.close()
    paid = [r for r in results if r["outcome"] == "paid"]
    whole = common.summary_ms([r["total"] for r in paid])

    def step(name):
        return common.summary_ms([r["steps"][name] for r in paid if name in r["steps"]])["p50"]

    return {"purchase_p50_ms": whole["p50"], "purchase_p99_ms": whole["p99"], "solo_buyers": count,
            "solo_paid": len(paid), "solo_add_to_cart_p50_ms": step("add_to_cart"),
            **{f"solo_{name}_p50_ms": step(name) if any(name in r["steps"] for r in paid) else None
               for name in STEPS_OF_PLACING}}


async def rush(base: str, buyers: int, seats: int, label: str = "single", check_bases: tuple = (),
               server_pids: tuple = (), solo: int = 0, warm_up: bool = True, journey: str = DEFAULT_JOURNEY) -> dict:
    with common.running_email_worker() as worker:
        cold = {}
        if warm_up:  # an on-sale opens on a shop that has been serving for hours: warm processes
            figures, _ = await _rush(base, buyers, seats, f"{label}-warm-up", (), server_pids, 0, worker.pid,
                                     journey)
            await drain_emails()
            cold = cold_figures(figures)
        figures, event_id = await _rush(base, buyers, seats, label, check_bases, server_pids, solo, worker.pid,
                                        journey)
        figures |= cold
        t_end = time.perf_counter()
        await drain_emails()
        figures["rush_email_drain_s"] = round(time.perf_counter() - t_end, 1)  # after the last buyer's answer
        figures["rush_emails_pending_after_drain"] = common.pending_emails()
        figures["rush_email_worker_cpu_s_total"] = round(common.cpu_seconds([worker.pid]), 2)
    figures["rush_confirmation_emails_sent"] = emails_sent(event_id)
    figures["rush_journey"] = f"{journey}: {JOURNEYS[journey]} requests a purchase"
    return figures


# The warm-up rush's figures kept beside the measured rush's (as rush_cold_…).
COLD_FIGURES = ("orders_per_minute", "oversell", "errors_5xx", "rush_machine_cpu_ms_per_order",
                "rush_app_cpu_ms_per_order")


def measure_journey(base: str, buyers: int, seats: int, server_pids: tuple = (), journey: str = "buy-now") -> dict:
    """The rush again on a server already warm, with another journey; its figures prefixed
    (`buy_now_…`). The buy-now journey times placing and paying apart, as two requests."""
    figures = measure(base, buyers, seats, label=journey, server_pids=server_pids, warm_up=False, journey=journey)
    prefix = journey.replace("-", "_")
    return {f"{prefix}_{key}": value for key, value in figures.items()}


def step_figures(paid: list[dict], step) -> dict:
    """p50 and p99 of placing and paying: two requests (`placement_…`, `payment_…`), or one that does
    both (`place_and_pay_…`, the pay-now journey)."""
    figures = {}
    for name in STEPS_OF_PLACING:
        times = step(name, paid) if any(name in r["steps"] for r in paid) else {"p50": None, "p99": None}
        figures |= {f"{name}_p50_ms": times["p50"], f"{name}_p99_ms": times["p99"]}  # None: not this journey's
    return figures


def cold_figures(warm_up: dict) -> dict:
    """The warm-up rush's figures worth keeping, renamed rush_cold_…."""
    return {f"rush_cold_{key.removeprefix('rush_')}": warm_up[key] for key in COLD_FIGURES}


async def drain_emails(timeout: float = 600) -> None:
    """Wait until `flask emails work` has sent every queued email (or `timeout` seconds)."""
    t0 = time.perf_counter()
    while common.pending_emails() and time.perf_counter() - t0 < timeout:
        await asyncio.sleep(0.2)


def emails_sent(event_id: int) -> int:
    with common.pg_connect() as conn:
        return conn.execute(
            "SELECT count(*) FROM email_jobs j WHERE j.status = 'sent' AND j.order_id IN "
            "(SELECT order_id FROM order_lines WHERE event_id = %s)", (event_id,)).fetchone()[0]


async def _rush(base: str, buyers: int, seats: int, label: str, check_bases: tuple, server_pids: tuple,
                solo: int, worker_pid: int, journey: str) -> tuple[dict, int]:
    """The figures of the rush, and its event's id."""
    solo_figures = await solo_purchases(base, solo, label, journey)
    event = create_rush_event(seats, label)
    emails = create_buyers(buyers, label)
    t_login = time.perf_counter()
    browsers = await log_in_all(base, emails)
    login_seconds = time.perf_counter() - t_login
    valid_elsewhere = await sessions_valid_on(check_bases, browsers[:20]) if check_bases else None
    start = asyncio.Event()
    tasks = [asyncio.create_task(purchase(b, event, start, journey)) for b in browsers]
    await asyncio.sleep(0.5)  # every buyer is waiting at the gate
    cpu0, t0 = time.process_time(), time.perf_counter()
    server_cpu0, pg_cpu0 = common.cpu_seconds(server_pids), common.postgres_cpu()
    worker_cpu0, machine_cpu0 = common.cpu_seconds([worker_pid]), common.machine_busy_seconds()
    start.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    wall, client_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    cpu = {"app": common.cpu_seconds(server_pids) - server_cpu0,
           "postgres": common.postgres_cpu_since(pg_cpu0), "client": client_cpu,
           "email_worker": common.cpu_seconds([worker_pid]) - worker_cpu0,
           "machine": common.machine_busy_seconds() - machine_cpu0}
    errors_5xx = server_errors(browsers)
    for b in browsers:
        await b.close()
    figures = summarise(results, event, wall, cpu, errors_5xx, buyers, login_seconds, valid_elsewhere) | solo_figures
    return figures, event["event_id"]


async def sessions_valid_on(bases: tuple, browsers: list[Browser]) -> dict:
    """Each buyer's session cookie, sent straight to every instance, is still logged in there."""
    valid = {}
    for base in bases:
        ok = 0
        for browser in browsers:
            page = await browser.get(f"{base}/orders/")
            ok += page.status == 200 and "/auth/login" not in page.url
        valid[base] = f"{ok}/{len(browsers)}"
    return valid


def summarise(results, event, wall, cpu, errors_5xx, buyers, login_seconds, valid_elsewhere) -> dict:
    crashed = [r for r in results if isinstance(r, BaseException)]
    done = [r for r in results if isinstance(r, dict)]
    paid = [r for r in done if r["outcome"] == "paid"]
    outcomes: dict[str, int] = {}
    for r in done:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    if crashed:
        outcomes["client_exception"] = len(crashed)
        print(f"rush: {len(crashed)} buyers failed in the client, first: {crashed[0]!r}", file=sys.stderr)
    db = sold_seats(event["event_id"])
    demand = buyers  # one seat each
    sold = db["paid_seats"]

    def step(name, rows):
        return common.summary_ms([r["steps"][name] for r in rows if name in r["steps"]])

    whole = common.summary_ms([r["total"] for r in paid])
    return {
        "rush_buyers": buyers, "rush_capacity": db["capacity"], "rush_seats_sold": sold,
        "rush_sold_equals_expected": sold == min(db["capacity"], demand),
        "oversell": max(0, sold - db["capacity"]), "rush_tickets_issued": db["tickets"],
        "orders_completed": len(paid), "rush_wall_s": round(wall, 2),
        "orders_per_minute": round(len(paid) / wall * 60, 1) if wall else 0.0,
        **step_figures(paid, step),
        # During the rush a purchase mostly waits its turn: 600 buyers share 2 cores.
        "rush_purchase_p50_ms": whole["p50"], "rush_purchase_p99_ms": whole["p99"],
        "add_to_cart_p50_ms": step("add_to_cart", paid)["p50"], "event_page_p50_ms": step("event_page", paid)["p50"],
        **({"checkout_review_p50_ms": step("checkout_review", paid)["p50"]}
           if any("checkout_review" in r["steps"] for r in paid) else {}),  # its own step in the cart journey
        "errors_5xx": errors_5xx, "rush_outcomes": outcomes,
        # CPU seconds spent during the rush: gunicorn workers, every PostgreSQL process on the
        # machine (other people's test runs included, backends that ended too), this load
        # generator, the email worker, and the whole machine (those, Redis and the kernel).
        "rush_cpu_s": {name: round(value, 2) for name, value in cpu.items()},
        "rush_app_cpu_ms_per_order": round(cpu["app"] * 1000 / len(paid), 1) if paid else None,
        "rush_machine_cpu_ms_per_order": round(cpu["machine"] * 1000 / len(paid), 1) if paid else None,
        "rush_login_setup_s": round(login_seconds, 1),
        **({"rush_sessions_valid_on_each_instance": valid_elsewhere} if valid_elsewhere else {}),
    }


def measure(base: str, buyers: int = 600, seats: int = 500, label: str = "single", check_bases: tuple = (),
            server_pids: tuple = (), solo: int = 0, warm_up: bool = True, journey: str = DEFAULT_JOURNEY) -> dict:
    """The rush's figures; `warm_up`: after a first rush on another event (rush_cold_… figures)."""
    if seats >= buyers:
        raise SystemExit("rush: the event must have fewer seats than buyers")
    return asyncio.run(rush(base, buyers, seats, label, check_bases, server_pids, solo, warm_up, journey))


def measure_behind_nginx(model: common.WorkerModel, buyers: int, seats: int, warm_up: bool = True,
                         journey: str = DEFAULT_JOURNEY) -> dict:
    """The same rush through nginx to two gunicorn instances; keys prefixed with nginx_."""
    with two_instances_behind_nginx(model) as (proxy, instances):
        pids = tuple(pid for server in instances for pid in server.worker_pids())
        cpu_before = [common.cpu_seconds(server.worker_pids()) for server in instances]
        figures = measure(proxy.url, buyers, seats, label="nginx", check_bases=tuple(s.url for s in instances),
                          server_pids=pids, warm_up=warm_up, journey=journey)
        share = [round(common.cpu_seconds(s.worker_pids()) - before, 2)
                 for s, before in zip(instances, cpu_before, strict=True)]
        rss = [common.worker_rss(server)["worker_rss_mb"] for server in instances]
    prefixed = {f"nginx_{key}" if not key.startswith("rush_") else key.replace("rush_", "nginx_rush_", 1): value
                for key, value in figures.items()}
    prefixed["nginx_instances"] = f"2 x {model.label}"
    prefixed["nginx_instance_cpu_s"] = share  # both instances did real work
    prefixed["nginx_worker_rss_mb"] = max(rss)
    return prefixed


def ceilings(cpu: dict, orders: int, cores: int) -> dict:
    """CPU per order and the most orders a minute `cores` could complete at that cost, all busy:
    at the server's cost alone (app, PostgreSQL, email worker: a load generator that cost
    nothing) and at the whole machine's."""
    if not orders:
        return {}
    server_side = (cpu["app"] + cpu["postgres"] + cpu["email_worker"]) * 1000 / orders
    return {"rush_server_cpu_ms_per_order": round(server_side, 1),
            "rush_client_cpu_ms_per_order": round(cpu["client"] * 1000 / orders, 1),
            "rush_server_ceiling_orders_per_minute": round(cores * 60_000 / server_side),
            "rush_machine_ceiling_orders_per_minute": round(cores * 60 * orders / cpu["machine"])}


def measure_minimal(model: common.WorkerModel, buyers: int, seats: int, solo: int, stack: str = "bare",
                    warm_up: bool = True, journey: str = DEFAULT_JOURNEY) -> dict:
    """The same rush against bench/minimal_shop.py (the least a purchase can cost on this stack);
    keys prefixed with minimal_. `minimal_rush_server_ceiling_orders_per_minute` is the most
    orders two cores could complete if the load generator cost nothing: only the server's,
    PostgreSQL's and the email worker's CPU per order; `…_machine_ceiling_…` the most they could
    at the whole machine's CPU per order (load generator, Redis and kernel included), all busy.

    `stack="fixed"`: the minimal shop on the fixed stack's plumbing (Flask-Session, Flask-WTF,
    Flask-Login, Flask-SQLAlchemy); keys prefixed with fixed_stack_ instead."""
    prefix = "minimal" if stack == "bare" else "fixed_stack"
    with common.running_server(model, app_spec="bench.minimal_shop:app", env={"MINIMAL_STACK": stack}) as server:
        figures = measure(server.url, buyers, seats, label=prefix.replace("_", "-"),
                          server_pids=tuple(server.worker_pids()), solo=solo, warm_up=warm_up, journey=journey)
    prefixed = {key.replace("rush_", f"{prefix}_rush_", 1) if key.startswith("rush_") else f"{prefix}_{key}": value
                for key, value in figures.items()}
    prefixed[f"{prefix}_rush_workers"] = model.label
    prefixed.update({f"{prefix}_{key}": value for key, value in
                     ceilings(figures["rush_cpu_s"], figures["orders_completed"], common.machine()["cores"]).items()})
    return prefixed


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=600)
    parser.add_argument("--seats", type=int, default=500)
    parser.add_argument("--nginx", action="store_true", help="two gunicorn instances behind nginx")
    parser.add_argument("--solo", type=int, default=30, help="buyers timed alone first (0: none)")
    parser.add_argument("--minimal", action="store_true",
                        help="against bench/minimal_shop.py: the least a purchase can cost on this stack")
    parser.add_argument("--fixed-stack", action="store_true",
                        help="against the minimal shop on the fixed stack's plumbing (MINIMAL_STACK=fixed)")
    parser.add_argument("--cold", action="store_true",
                        help="measure the first rush after the server starts (no warm-up rush before it)")
    parser.add_argument("--journey", choices=tuple(JOURNEYS), default=DEFAULT_JOURNEY,
                        help='"pay-now": "Buy now", then pay on the review (5 requests); "buy-now": "Buy now", '
                             '"Place order, pay later", pay on the order page (7 requests); "cart": "Add to cart", '
                             'then the review, place, pay (8 requests)')
    args = parser.parse_args(argv)
    warm_up = not args.cold
    common.flush_redis()
    if args.minimal or args.fixed_stack:
        stack, name = ("fixed", "fixed_stack") if args.fixed_stack else ("bare", "minimal")
        figures = measure_minimal(common.MINIMAL_SHOP_MODEL, args.buyers, args.seats, args.solo, stack=stack,
                                  warm_up=warm_up, journey=args.journey)
        common.print_figures(f"rush on the minimal shop, {stack} stack ({args.buyers} buyers, {args.seats} seats)",
                             figures)
        common.record(f"{name}_rush", figures)
        return figures
    if args.nginx:
        figures = measure_behind_nginx(common.DEFAULT_MODEL, args.buyers, args.seats, warm_up, args.journey)
        common.print_figures(f"rush behind nginx ({args.buyers} buyers, {args.seats} seats)", figures)
        common.record("nginx_rush", figures)
        return figures
    with common.running_server() as server:
        figures = measure(server.url, args.buyers, args.seats, server_pids=tuple(server.worker_pids()),
                          solo=args.solo, warm_up=warm_up, journey=args.journey)
        figures["rush_workers"] = server.model.label
        figures.update(common.worker_rss(server, "rush"))
    common.print_figures(f"rush ({args.buyers} buyers, {args.seats} seats)", figures)
    common.record("rush", figures)
    return figures


if __name__ == "__main__":
    main()
