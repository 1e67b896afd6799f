"""Catalogue latency during a login storm: 20 concurrent logins (bcrypt cost 12) while wrk runs.

    .venv/bin/python bench/logins.py [--duration 30] [--concurrency 20]

Twenty virtual users log in over and over for the whole wrk run (each login: GET the form for
its CSRF token, POST email + password, follow the redirect), each time with a fresh cookie jar
and a different seeded customer (password hash bcrypt cost 12). wrk measures /events/ at 16
connections meanwhile. The figure is the catalogue p99 during the storm; the same page without
the storm is catalogue_list_p99_ms (bench/catalogue.py).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.browser import Browser, LoginFailed, log_in
from bench.nginx import start_nginx, stop_nginx
from bench.seed import CUSTOMERS


async def storm(base: str, concurrency: int, stop: asyncio.Event) -> dict:
    times: list[float] = []
    failures = 0
    counter = iter(range(10**9))

    async def user_loop() -> None:
        nonlocal failures
        while not stop.is_set():
            n = next(counter) % CUSTOMERS + 1
            browser = Browser(base)
            t0 = time.perf_counter()
            try:
                await log_in(browser, f"buyer{n:05d}@bench.test", common.PASSWORD)
                times.append(time.perf_counter() - t0)
            except LoginFailed:
                failures += 1
            finally:
                await browser.close()

    await asyncio.gather(*(user_loop() for _ in range(concurrency)))
    summary = common.summary_ms(times)
    return {"logins": len(times), "failures": failures, "p50": summary["p50"], "p99": summary["p99"]}


async def run(base: str, duration: int, concurrency: int) -> dict:
    stop = asyncio.Event()
    storm_task = asyncio.create_task(storm(base, concurrency, stop))
    await asyncio.sleep(2)  # the storm is under way before wrk starts measuring
    result = await asyncio.to_thread(common.run_wrk, f"{base}/events/", duration=duration)
    stop.set()
    logins = await storm_task
    return {
        "login_storm_catalogue_p99_ms": result["p99_ms"], "login_storm_catalogue_p50_ms": result["p50_ms"],
        "login_storm_catalogue_rps": result["rps"], "login_storm_catalogue_errors": result["errors"],
        "login_storm_logins": logins["logins"], "login_storm_login_failures": logins["failures"],
        "login_storm_logins_per_s": round(logins["logins"] / (duration + 2), 1),
        "login_storm_login_p50_ms": logins["p50"], "login_storm_login_p99_ms": logins["p99"],
        "login_storm_concurrency": concurrency,
    }


def measure(base: str, duration: int = 30, concurrency: int = 20) -> dict:
    status, _ = common.http_get(f"{base}/events/")
    if status != 200:
        raise SystemExit(f"logins: /events/ answered {status}")
    return asyncio.run(run(base, duration, concurrency))


@contextlib.contextmanager
def split_login_pool(model: common.WorkerModel):
    """nginx sends /auth/ to its own small gunicorn at nice +10, everything else to the main one.

    The deployment answer to a login storm: bcrypt never runs in the workers that serve the
    catalogue, and the kernel gives the catalogue's processes the CPU first.
    """
    main_server = common.start_server(model)
    try:
        auth_server = common.start_server(common.WorkerModel(1, 8, "gthread"), nice=10)
        try:
            proxy = start_nginx([main_server.port], routes={"/auth/": [auth_server.port]})
            try:
                yield proxy, main_server, auth_server
            finally:
                stop_nginx(proxy)
        finally:
            common.stop_server(auth_server)
    finally:
        common.stop_server(main_server)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--split", action="store_true",
                        help="through nginx, with /auth/ on its own gunicorn at nice +10")
    args = parser.parse_args(argv)
    common.flush_redis()
    if args.split:
        with split_login_pool(common.DEFAULT_MODEL) as (proxy, main_server, _auth):
            figures = measure(proxy.url, args.duration, args.concurrency)
            figures.update(common.worker_rss(main_server, "logins_split"))
        figures = {k.replace("login_storm_", "login_storm_split_", 1): v for k, v in figures.items()}
        common.print_figures("login storm, /auth/ on its own nice +10 gunicorn behind nginx", figures)
        common.record("logins_split", figures)
        return figures
    with common.running_server() as server:
        figures = measure(server.url, args.duration, args.concurrency)
        figures.update(common.worker_rss(server, "logins"))
    common.print_figures(f"login storm ({args.concurrency} concurrent bcrypt-12 logins during wrk /events/)", figures)
    common.record("logins", figures)
    return figures


if __name__ == "__main__":
    main()
