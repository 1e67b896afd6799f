"""Admin dashboard (/admin/) with the bulk data: cold (cache cleared) and warm response times.

    .venv/bin/python bench/admin.py [--cold 10] [--warm 50]

The seeded admin logs in through the real login form and the TOTP second step (2FA stays
required for staff, as in production). "Cold": every Flask-Caching key in the bench Redis DB
is deleted before the request (statistics, catalogue and the per-session auth cache), so the
page recomputes everything from PostgreSQL. "Warm": the same page again with the cache full.
Times are client-side round trips on loopback, one request at a time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.browser import Browser, log_in

PAGE = "/admin/"


def admin_account() -> dict:
    accounts = json.loads(common.ACCOUNTS_FILE.read_text())
    return next(a for a in accounts["staff"] if a["role"] == "admin")


async def timings(base: str, cold_runs: int, warm_runs: int) -> dict:
    admin = admin_account()
    browser = Browser(base)
    try:
        await log_in(browser, admin["email"], common.PASSWORD, admin["totp_secret"])
        cold, warm = [], []
        for _ in range(cold_runs):
            common.clear_app_cache()
            page = await browser.get(PAGE)
            if page.status != 200 or "/auth/" in page.url:
                raise RuntimeError(f"admin dashboard answered {page.status} at {page.url}")
            cold.append(page.seconds)
        await browser.get(PAGE)
        for _ in range(warm_runs):
            page = await browser.get(PAGE)
            warm.append(page.seconds)
        size = len(page.text)
    finally:
        await browser.close()
    return {
        "admin_cold_ms": round(statistics.median(cold) * 1000, 1),
        "admin_cold_max_ms": round(max(cold) * 1000, 1),
        "admin_warm_ms": round(statistics.median(warm) * 1000, 1),
        "admin_warm_p99_ms": round(common.percentile(warm, 99) * 1000, 1),
        "admin_page_bytes": size, "admin_runs": f"{cold_runs} cold, {warm_runs} warm",
    }


def measure(base: str, cold_runs: int = 10, warm_runs: int = 50) -> dict:
    return asyncio.run(timings(base, cold_runs, warm_runs))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--warm", type=int, default=50)
    args = parser.parse_args(argv)
    common.flush_redis()
    with common.running_server() as server:
        figures = measure(server.url, args.cold, args.warm)
        figures.update(common.worker_rss(server, "admin"))
    common.print_figures("admin dashboard (100 000 paid orders)", figures)
    common.record("admin", figures)
    return figures


if __name__ == "__main__":
    main()
