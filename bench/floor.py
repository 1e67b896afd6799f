"""The floor: what the cheapest pages cost the server per request, and what that means for the rush.

    .venv/bin/python bench/floor.py [--duration 10]

wrk (16 connections) on three pages that do almost nothing, while the gunicorn workers' CPU
time is read from /proc before and after: CPU milliseconds per request = CPU seconds / requests.

    /healthz        no template, no session: one database and one Redis round trip
    /auth/login     the layout and a form for an anonymous visitor (a new session each time)
    /orders/        a signed-in customer with no order (cookie of a real login): the layout,
                    the session and user checks, one query — the least any buyer's page costs

A purchase in the rush is 5 requests (bench/rush.py), all at least as heavy as /orders/. So
5 × the /orders/ figure is a lower bound of the app's CPU per order, whatever the code of
placing and paying; with the load generator's and PostgreSQL's CPU per order measured in the
rush (results.json), `rush_ceiling_orders_per_minute` is the most two cores could complete.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, rush
from bench.browser import Browser, log_in

REQUESTS_PER_PURCHASE = rush.JOURNEYS[rush.DEFAULT_JOURNEY]  # event, buy now (+ review), pay there (+ order page)
PAGES = {"healthz": "/healthz", "login_page": "/auth/login", "signed_in_page": "/orders/"}


async def customer_cookie(base: str) -> str:
    email = rush.create_buyers(1, "floor")[0]
    browser = Browser(base)
    try:
        await log_in(browser, email, common.PASSWORD)
        return f"guichet_session={browser.cookie('guichet_session')}"
    finally:
        await browser.close()


def measure(base: str, server_pids: tuple, *, duration: int = 10) -> dict:
    cookie = asyncio.run(customer_cookie(base))
    figures = {}
    for name, path in PAGES.items():
        headers = {"Cookie": cookie} if name == "signed_in_page" else None
        status, body = common.http_get(base + path, headers=headers)
        if status != 200 or (name == "signed_in_page" and b"logout" not in body):
            raise SystemExit(f"floor: {path} answered {status} (signed in: {b'logout' in body})")
        cpu0 = common.cpu_seconds(server_pids)
        result = common.run_wrk(base + path, connections=16, duration=duration, headers=headers)
        cpu = common.cpu_seconds(server_pids) - cpu0
        figures[f"floor_{name}_rps"] = result["rps"]
        figures[f"floor_{name}_cpu_ms"] = round(cpu * 1000 / max(result["requests"], 1), 2)
        figures[f"floor_{name}_errors"] = result["errors"]
    figures["floor_app_cpu_ms_per_order"] = round(REQUESTS_PER_PURCHASE * figures["floor_signed_in_page_cpu_ms"], 1)
    figures.update(ceiling(figures["floor_app_cpu_ms_per_order"], common.load_results()))
    return figures


def ceiling(app_floor_ms: float, results: dict) -> dict:
    """Orders per minute two cores could complete if the app cost only its floor per order."""
    cpu, orders = results.get("rush_cpu_s"), results.get("orders_completed")
    if not cpu or not orders:
        return {}
    others = (cpu.get("client", 0) + cpu.get("postgres", 0)) * 1000 / orders
    cores = common.machine()["cores"]
    return {"rush_others_cpu_ms_per_order": round(others, 1),
            "rush_ceiling_orders_per_minute": round(cores * 60_000 / (app_floor_ms + others))}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args(argv)
    common.flush_redis()
    with common.running_server() as server:
        figures = measure(server.url, tuple(server.worker_pids()), duration=args.duration)
    common.print_figures("floor (cheapest pages, CPU per request)", figures)
    common.record("floor", figures)
    return figures


if __name__ == "__main__":
    main()
