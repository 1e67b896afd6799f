"""The results table of bench/README.md, generated from bench/results.json.

    .venv/bin/python bench/report.py        # rewrite the table between the README markers
"""
from __future__ import annotations

import json
import operator
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

README = common.BENCH / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"

# (key, label, comparison, target, unit, benchmark whose loadavg applies)
TARGETS = [
    ("orders_per_minute", "rush: completed orders per minute", operator.ge, 5000, "", "rush"),
    ("oversell", "rush: oversell (seats sold beyond capacity)", operator.eq, 0, "", "rush"),
    ("errors_5xx", "rush: 5xx answers", operator.eq, 0, "", "rush"),
    ("rush_cold_oversell", "rush: oversell in the warm-up rush before it", operator.eq, 0, "", "rush"),
    ("rush_cold_errors_5xx", "rush: 5xx answers in the warm-up rush before it", operator.eq, 0, "", "rush"),
    ("purchase_p50_ms", "one buyer's whole purchase p50 (cart → order → paid), alone on the server", operator.le,
     150, "ms", "rush"),
    ("catalogue_rps", "catalogue pages req/s (worse of /events/ and an event)", operator.ge, 800, "", "catalogue"),
    ("catalogue_p99_ms", "catalogue p99", operator.le, 50, "ms", "catalogue"),
    ("pdf_render_ms_median", "PDF ticket render, median", operator.le, 15, "ms", "tickets"),
    ("verify_ms_median", "QR payload verify, median", operator.le, 0.2, "ms", "tickets"),
    ("checkin_rps", "check-in API scans/s (distinct tickets, 16 conn.)", operator.ge, 500, "", "checkin"),
    ("checkin_p99_ms", "check-in API p99", operator.le, 30, "ms", "checkin"),
    ("admin_cold_ms", "admin dashboard cold (cache cleared), 100 000 orders", operator.le, 300, "ms", "admin"),
    ("admin_warm_ms", "admin dashboard warm", operator.le, 20, "ms", "admin"),
    ("login_storm_catalogue_p99_ms", "catalogue p99 during 20 concurrent bcrypt-12 logins", operator.le, 150, "ms",
     "logins"),
    ("worker_rss_mb", "peak RSS of a gunicorn worker after the runs", operator.le, 150, "MB", "memory"),
]
SYMBOL = {operator.ge: "≥", operator.le: "≤", operator.eq: "="}

# bench/checkin_ladder.py: the check-in's load on ever fuller versions of the endpoint
LADDER_RUNGS = (
    ("flask", "bare Flask, JSON in and out"),
    ("write", "+ one committed write"),
    ("minimal", "beside the ladder, the least a valid scan needs (one hand-written statement, no ORM, no Redis)"),
    ("check_in", "+ the real check-in service"),
    ("services", "+ the bearer token and the shared stats bump"),
    ("app", "the real endpoint"),
)

# Other figures worth a line: (key, label, unit, benchmark)
DETAILS = [
    ("orders_completed", "rush: orders paid / buyers; the journey", "", "rush"),
    ("rush_cold_orders_per_minute", ("rush: the warm-up rush just before, the first after the server started: "
     "orders/min; oversell / 5xx; whole-machine CPU per order"), "", "rush"),
    ("place_and_pay_p50_ms", "rush: place order and pay, one request (the review's \"Pay\") p50 / p99", "ms", "rush"),
    ("solo_place_and_pay_p50_ms", "one buyer alone: place order and pay p50", "ms", "rush"),
    ("buy_now_orders_per_minute", ("rush again on the warm server, placing (\"Place order, pay later\") and paying "
     "on the order page apart (`--journey buy-now`, 7 requests): orders/min; oversell / 5xx"), "", "buy_now_rush"),
    ("buy_now_placement_p50_ms", "… its place order p50 / p99", "ms", "buy_now_rush"),
    ("buy_now_payment_p50_ms", "… its payment p50 / p99", "ms", "buy_now_rush"),
    ("placement_p50_ms", "rush: place order p50 / p99 (journeys that place and pay apart)", "ms", "rush"),
    ("payment_p50_ms", "rush: payment p50 / p99 (journeys that place and pay apart)", "ms", "rush"),
    ("rush_purchase_p50_ms", "rush: whole purchase p50 / p99 (waiting for the 2 cores included)", "ms", "rush"),
    ("rush_app_cpu_ms_per_order", "rush: gunicorn CPU per paid order", "ms", "rush"),
    ("rush_cpu_s", ("rush: CPU per paid order, whole machine (every process and the kernel) / gunicorn / "
     "PostgreSQL / load generator / email worker"), "ms", "rush"),
    ("rush_email_drain_s", "rush: confirmation emails sent by `flask emails work` (nice +19) / queue empty after", "",
     "rush"),
    ("emails_cpu_ms_per_email", ("confirmation email with one PDF ticket, `flask emails work` in-process "
     "(`emails.py`; the rush counts only what the worker gets during it): CPU per email (PDF, MIME); statements; "
     "emails a minute one core sends"), "", "emails"),
    ("floor_signed_in_page_cpu_ms", ("floor: CPU per request of a signed-in page (/orders/, no order), /auth/login, "
     "/healthz"), "ms", "floor"),
    ("rush_ceiling_orders_per_minute", ("floor: most orders/min 2 cores allow (5 × floor + load generator + "
     "PostgreSQL per order)"), "", "floor"),
    ("minimal_orders_per_minute", ("minimal shop (`rush.py --minimal`, gthread workers, the least a purchase can cost here), same rush: "
     "orders/min, oversell / 5xx (its warm-up rush: the same)"), "", "minimal_rush"),
    ("minimal_rush_cpu_s", ("minimal shop: CPU per paid order, whole machine / gunicorn / PostgreSQL / load generator "
     "/ email worker"), "ms", "minimal_rush"),
    ("minimal_rush_server_ceiling_orders_per_minute", ("minimal shop: most orders/min 2 cores allow at the whole "
     "machine's CPU per order / with a load generator that cost nothing (server, PostgreSQL and email worker)"), "",
     "minimal_rush"),
    ("fixed_stack_orders_per_minute", ("minimal shop on the fixed stack's plumbing (`rush.py --fixed-stack`: "
     "Flask-Session, Flask-WTF, Flask-Login, Flask-SQLAlchemy; gthread), same rush: orders/min, oversell / 5xx (its "
     "warm-up rush: the same)"), "",
     "fixed_stack_rush"),
    ("fixed_stack_rush_cpu_s", ("minimal shop, fixed stack: CPU per paid order, whole machine / gunicorn / PostgreSQL "
     "/ load generator / email worker"), "ms", "fixed_stack_rush"),
    ("fixed_stack_rush_server_ceiling_orders_per_minute", ("minimal shop, fixed stack: most orders/min 2 cores allow "
     "at the whole machine's CPU per order / with a load generator that cost nothing"), "", "fixed_stack_rush"),
    ("nginx_orders_per_minute", "nginx + 2 instances: orders per minute", "", "nginx_rush"),
    ("nginx_oversell", "nginx + 2 instances: oversell / 5xx", "", "nginx_rush"),
    ("nginx_rush_purchase_p50_ms", "nginx + 2 instances: whole purchase p50 during the rush", "ms", "nginx_rush"),
    ("catalogue_list_rps", "/events/ req/s, p50, p99", "", "catalogue"),
    ("catalogue_event_rps", "event page req/s, p50, p99", "", "catalogue"),
    ("catalogue_returning_rps", "event page for a returning visitor (session cookie) req/s, p50, p99", "",
     "catalogue"),
    ("checkin_same_ticket_exactly_one_valid", "same ticket ×16 connections: rounds with exactly one VALID", "",
     "checkin"),
    *((f"ladder_{rung}_rps", f"check-in ladder: {label} — scans/s, p50, p99; CPU per scan app / PostgreSQL", "",
       "ladder") for rung, label in LADDER_RUNGS),
    ("pdf_render_ms_p99", "PDF render p99 / size", "ms", "tickets"),
    ("pdf_render_cpu_ms_median", "PDF render, CPU time of the rendering thread (median)", "ms", "tickets"),
    ("verify_cpu_ms_median", "QR verify, CPU time of the thread (median)", "ms", "tickets"),
    ("sign_ms_median", "sign one payload, median", "ms", "tickets"),
    ("login_storm_logins", "logins completed during the storm (p50 login)", "", "logins"),
    ("login_storm_split_catalogue_p99_ms", ("storm with /auth/ on its own gunicorn at nice +10 behind nginx "
     "(`logins.py --split`): catalogue p99"), "ms", "logins_split"),
    ("login_storm_split_catalogue_rps", "… and catalogue req/s during that storm", "", "logins_split"),
    ("instructions_per_purchase_m", ("instructions (`instructions.py`, callgrind, compare side by side): one buyer's "
     "sign-in + purchase / one signed-in GET /cart/ / one valid scan on the check-in API"), "", "instructions"),
    ("seed_seconds", "seed: 50 events, 10 000 customers, 100 000 orders, 300 000 tickets", "s", "seed"),
    ("pg_commit_ms", "PostgreSQL one-row INSERT + COMMIT here (fsync floor)", "ms", "environment"),
]


def fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def load(results: dict, bench: str) -> str:
    value = results.get(f"{bench}_loadavg")
    return " ".join(f"{x:.1f}" for x in value) if value else "—"


def cpu_per_order(cpu: dict | None, orders: int | None) -> str:
    """A rush's CPU seconds (`…rush_cpu_s`) per paid order: machine / app / PostgreSQL / client /
    email worker ("—" for a part an older run did not measure)."""
    if not (cpu and orders):
        return "—"
    return " / ".join(fmt(round(cpu[part] * 1000 / orders, 1)) if part in cpu else "—"
                      for part in ("machine", "app", "postgres", "client", "email_worker")) + " ms"


def minimal_lines(prefix: str, r) -> dict:
    """The detail lines of a minimal shop's rush (`minimal_` or `fixed_stack_` keys)."""
    return {
        f"{prefix}_orders_per_minute": lambda: (f"{fmt(r(f'{prefix}_orders_per_minute'))}, "
                                                f"{fmt(r(f'{prefix}_oversell'))} / {fmt(r(f'{prefix}_errors_5xx'))} "
                                                f"({fmt(r(f'{prefix}_rush_cold_orders_per_minute'))}, "
                                                f"{fmt(r(f'{prefix}_rush_cold_oversell'))} / "
                                                f"{fmt(r(f'{prefix}_rush_cold_errors_5xx'))})"),
        f"{prefix}_rush_cpu_s": lambda: cpu_per_order(r(f"{prefix}_rush_cpu_s"), r(f"{prefix}_orders_completed")),
        f"{prefix}_rush_server_ceiling_orders_per_minute": lambda: (
            f"{fmt(r(f'{prefix}_rush_machine_ceiling_orders_per_minute'))} / "
            f"{fmt(r(f'{prefix}_rush_server_ceiling_orders_per_minute'))} "
            f"({fmt(r(f'{prefix}_rush_server_cpu_ms_per_order'))} ms per order)"),
    }


def detail_value(key: str, unit: str, results: dict) -> str:
    r = results.get
    pairs = {
        "orders_completed": lambda: f"{fmt(r('orders_completed'))} / {fmt(r('rush_buyers'))} "
                                    f"(seats sold {fmt(r('rush_seats_sold'))} of {fmt(r('rush_capacity'))}); "
                                    f"{r('rush_journey') or 'cart: 8 requests a purchase'}",
        **{f"{prefix}{name}_p50_ms": (lambda key=f"{prefix}{name}": f"{fmt(r(f'{key}_p50_ms'))} / "
                                                                  f"{fmt(r(f'{key}_p99_ms'))} ms")
           for prefix in ("", "buy_now_") for name in ("placement", "payment", "place_and_pay")},
        "buy_now_orders_per_minute": lambda: (f"{fmt(r('buy_now_orders_per_minute'))}; "
                                              f"{fmt(r('buy_now_oversell'))} / {fmt(r('buy_now_errors_5xx'))}"),
        "rush_email_drain_s": lambda: (f"{fmt(r('rush_confirmation_emails_sent'))} sent; queue empty "
                                       f"{fmt(r('rush_email_drain_s'))} s after the last buyer's answer"),
        "emails_cpu_ms_per_email": lambda: (
            f"{fmt(r('emails_cpu_ms_per_email'))} ms ({fmt((r('emails_cpu_ms_parts') or {}).get('PDF (QR symbol included)'))}, "
            f"{fmt((r('emails_cpu_ms_parts') or {}).get('MIME message + file'))} ms); "
            f"{fmt(r('emails_statements_per_email'))}; {fmt(r('emails_per_minute_one_core'))}"),
        "floor_signed_in_page_cpu_ms": lambda: (f"{fmt(r('floor_signed_in_page_cpu_ms'))} / "
                                                f"{fmt(r('floor_login_page_cpu_ms'))} / {fmt(r('floor_healthz_cpu_ms'))} ms"),
        "rush_ceiling_orders_per_minute": lambda: (f"{fmt(r('rush_ceiling_orders_per_minute'))} "
                                                   f"({fmt(r('floor_app_cpu_ms_per_order'))} + "
                                                   f"{fmt(r('rush_others_cpu_ms_per_order'))} ms per order)"),
        "rush_cpu_s": lambda: cpu_per_order(r("rush_cpu_s"), r("orders_completed")),
        "rush_cold_orders_per_minute": lambda: (f"{fmt(r('rush_cold_orders_per_minute'))}; "
                                                f"{fmt(r('rush_cold_oversell'))} / {fmt(r('rush_cold_errors_5xx'))}; "
                                                f"{fmt(r('rush_cold_machine_cpu_ms_per_order'))} ms"),
        **{key: value for prefix in ("minimal", "fixed_stack") for key, value in minimal_lines(prefix, r).items()},
        "rush_purchase_p50_ms": lambda: f"{fmt(r('rush_purchase_p50_ms'))} / {fmt(r('rush_purchase_p99_ms'))} ms",
        "nginx_oversell": lambda: f"{fmt(r('nginx_oversell'))} / {fmt(r('nginx_errors_5xx'))}; sessions valid on "
                                  f"each instance: {', '.join((r('nginx_rush_sessions_valid_on_each_instance') or {}).values()) or '—'}",
        "catalogue_list_rps": lambda: f"{fmt(r('catalogue_list_rps'))}, {fmt(r('catalogue_list_p50_ms'))} ms, "
                                      f"{fmt(r('catalogue_list_p99_ms'))} ms",
        "catalogue_returning_rps": lambda: f"{fmt(r('catalogue_returning_rps'))}, "
                                           f"{fmt(r('catalogue_returning_p50_ms'))} ms, "
                                           f"{fmt(r('catalogue_returning_p99_ms'))} ms",
        "catalogue_event_rps": lambda: f"{fmt(r('catalogue_event_rps'))}, {fmt(r('catalogue_event_p50_ms'))} ms, "
                                       f"{fmt(r('catalogue_event_p99_ms'))} ms",
        "checkin_same_ticket_exactly_one_valid": lambda: f"{fmt(r(key))} / {fmt(r('checkin_same_ticket_rounds'))}",
        "pdf_render_ms_p99": lambda: f"{fmt(r('pdf_render_ms_p99'))} ms / {fmt(r('pdf_bytes'))} bytes",
        "instructions_per_purchase_m": lambda: (f"{r('instructions_per_purchase_m'):.1f} M / "
                                                f"{r('instructions_per_page_m'):.2f} M"
                                                + (f" / {r('instructions_per_checkin_m'):.2f} M"
                                                   if r("instructions_per_checkin_m") else " / —")
                                                + f" (commit {r('instructions_commit') or '—'})"
                                                if r("instructions_per_purchase_m") and r("instructions_per_page_m")
                                                else "—"),
        "login_storm_logins": lambda: f"{fmt(r('login_storm_logins'))} ({fmt(r('login_storm_login_p50_ms'))} ms)",
    }
    if key in pairs:
        return pairs[key]()
    if key.startswith("ladder_") and r(key) is not None:
        rung = key.removeprefix("ladder_").removesuffix("_rps")
        return (f"{fmt(r(key))}, {fmt(r(f'ladder_{rung}_p50_ms'))} ms, {fmt(r(f'ladder_{rung}_p99_ms'))} ms; "
                f"{fmt(r(f'ladder_{rung}_app_cpu_ms'))} / {fmt(r(f'ladder_{rung}_pg_cpu_ms'))} ms")
    return fmt(r(key)) + (f" {unit}" if unit and r(key) is not None else "")


def table(results: dict) -> str:
    machine = results.get("machine", {})
    lines = [
        (f"Latest run: {results.get('date', '—')} · commit {results.get('commit', '—')} · "
         f"`{results.get('command', 'make bench')}` · server {results.get('workers', '—')}  "),
        (f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, {machine.get('ram_gb', '?')} GB "
         f"RAM, Python {machine.get('python', '?')} ({machine.get('python_executable', '?')}); PostgreSQL, Redis, gunicorn and the load generators all on it.  "),
        "loadavg = `os.getloadavg()` (1, 5, 15 min) when the figure was recorded.",
        "",
        "| figure | target | result | met | loadavg |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, label, op, target, unit, bench in TARGETS:
        value = results.get(key)
        met = "—" if value is None else ("yes" if op(value, target) else "**no**")
        shown = f"{fmt(value)} {unit}".strip() if value is not None else "—"
        lines.append(f"| {label} | {SYMBOL[op]} {fmt(target)} {unit} | {shown} | {met} | {load(results, bench)} |")
    lines += ["", "| other figures | value | loadavg |", "| --- | --- | --- |"]
    for key, label, unit, bench in DETAILS:
        lines.append(f"| {label} | {detail_value(key, unit, results)} | {load(results, bench)} |")
    return "\n".join(lines)


def write_readme(path: Path = README) -> None:
    results = json.loads(common.RESULTS.read_text()) if common.RESULTS.exists() else {}
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{START}\n{table(results)}\n{END}{tail}")


if __name__ == "__main__":
    write_readme()
    print(README.read_text())
