"""Catalogue pages under wrk: /events/ and one event page, 30 s each at 16 connections.

    .venv/bin/python bench/catalogue.py [--duration 30] [--connections 16]

Needs the seeded bench database (bench/seed.py). Starts its own gunicorn (DEFAULT_MODEL in
common.py) on a free 127.0.0.1 port and stops it by PID. The headline keys (catalogue_rps,
catalogue_p50_ms, catalogue_p99_ms) are the worse of the two pages; errors are summed
(non-2xx/3xx answers + socket errors).

wrk sends no cookie, so those two runs are first visits, whose whole page is cached. A third run,
`catalogue_returning_*`, loads the event page with a visitor's session cookie (the layout is
rendered for them, their session read from Redis): what a shopper who came back sees.
"""
from __future__ import annotations

import argparse
import sys
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common


def busiest_event_slug() -> str:
    with common.pg_connect() as conn:
        row = conn.execute("SELECT slug FROM events WHERE published ORDER BY seats_taken DESC, id LIMIT 1").fetchone()
    if row is None:
        raise SystemExit("no published event: run bench/seed.py first")
    return row[0]


def catalogue_urls(base: str) -> dict:
    return {"list": f"{base}/events/", "event": f"{base}/events/{busiest_event_slug()}"}


def check_pages(urls: dict) -> None:
    for url in urls.values():
        status, body = common.http_get(url)
        if status != 200:
            raise SystemExit(f"catalogue: {url} answered {status}, not 200: {body[:300]!r}")


def visitor_cookie(url: str) -> str:
    """The session cookie a first visit to an event page hands out (its forms need a CSRF token)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        cookie = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie.load(header)
    if "guichet_session" not in cookie:
        raise SystemExit(f"catalogue: {url} set no session cookie")
    return f"guichet_session={cookie['guichet_session'].value}"


def measure(base: str, *, duration: int = 30, connections: int = 16, threads: int = 2) -> dict:
    """wrk on both pages of a running server; flat figures with list_/event_ prefixes + headline."""
    urls = catalogue_urls(base)
    check_pages(urls)  # also warms the cache, as any visitor would
    figures = {}
    for name, url in urls.items():
        result = common.run_wrk(url, threads=threads, connections=connections, duration=duration)
        for key in ("rps", "p50_ms", "p99_ms", "errors", "requests"):
            figures[f"catalogue_{name}_{key}"] = result[key]
    figures["catalogue_rps"] = min(figures["catalogue_list_rps"], figures["catalogue_event_rps"])
    figures["catalogue_p50_ms"] = max(figures["catalogue_list_p50_ms"], figures["catalogue_event_p50_ms"])
    figures["catalogue_p99_ms"] = max(figures["catalogue_list_p99_ms"], figures["catalogue_event_p99_ms"])
    figures["catalogue_errors"] = figures["catalogue_list_errors"] + figures["catalogue_event_errors"]
    returning = common.run_wrk(urls["event"], threads=threads, connections=connections, duration=duration,
                               headers={"Cookie": visitor_cookie(urls["event"])})
    for key in ("rps", "p50_ms", "p99_ms", "errors"):
        figures[f"catalogue_returning_{key}"] = returning[key]
    return figures


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    common.flush_redis()
    with common.running_server() as server:
        figures = measure(server.url, duration=args.duration, connections=args.connections)
        figures["catalogue_workers"] = server.model.label
        figures.update(common.worker_rss(server, "catalogue"))
    common.print_figures(f"catalogue (wrk -t2 -c{args.connections} -d{args.duration}s)", figures)
    common.record("catalogue", figures)
    return figures


if __name__ == "__main__":
    main()
