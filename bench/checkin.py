"""Gate check-in API under load: distinct valid tickets with wrk, then one ticket scanned 16 times at once.

    .venv/bin/python bench/checkin.py [--duration 30] [--connections 16]

A seeded steward logs in through the real login + TOTP second step and creates a scanner
token on /tickets/scanner-tokens (what a gate scanner app uses: `Authorization: Bearer …`).
Payloads are made for seeded, unused tickets with the bench server's signing key, exactly as
the app signs them (app.services.signing.sign_payload over the ticket id and key digest).
wrk (bench/lua/checkin.lua) posts a different payload on every request and counts verdicts.
Then, for several tickets, 16 connections scan the same payload at the same moment: exactly
one answer may be VALID.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.browser import Browser, log_in

LUA = common.BENCH / "lua" / "checkin.lua"
API = "/tickets/api/check-in"


TOKEN_NAME = "Bench gate scanner"


def staff_account(index: int = 1) -> dict:
    accounts = json.loads(common.ACCOUNTS_FILE.read_text())
    return [a for a in accounts["staff"] if a["role"] == "staff"][index - 1]


async def scanner_token(base: str, steward: dict) -> str:
    browser = Browser(base)
    try:
        await log_in(browser, steward["email"], common.PASSWORD, steward["totp_secret"])
        page = await browser.get("/tickets/scanner-tokens")
        page = await browser.submit(page.form("/tickets/scanner-tokens"), name=TOKEN_NAME)
        match = re.search(r'id="new-token"[^>]*>([^<]+)<', page.text)
        if not match:
            raise RuntimeError(f"no scanner token on {page.url} ({page.status})")
        return match.group(1).strip()
    finally:
        await browser.close()


def payloads_for_unused_tickets(count: int, offset: int = 0, *, newest_first: bool = False) -> list[str]:
    """Signed payloads of `count` valid tickets not checked in yet (distinct, seeded); this benchmark
    takes the oldest, `newest_first` the other end (bench/roundtrips.py), so neither runs out of
    the other's tickets while unused ones remain."""
    common.use_app()
    from app.services.signing import load_private_key, sign_payload

    key = load_private_key(common.signing_key_pem())
    with common.pg_connect() as conn:
        rows = conn.execute(
            "SELECT id, key_digest FROM tickets WHERE checked_in_at IS NULL AND voided_at IS NULL "
            f"ORDER BY id {'DESC' if newest_first else 'ASC'} LIMIT %s OFFSET %s", (count, offset)).fetchall()
    return [sign_payload(key, ticket_id, bytes(digest)) for ticket_id, digest in rows]


def parse_verdicts(output: str) -> dict:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^verdict (\w+) (\d+)$", output, re.MULTILINE)}


async def same_ticket(base: str, token: str, payloads: list[str], connections: int = 16) -> list[dict]:
    """Each payload scanned by `connections` separate connections released at the same instant."""
    rounds = []
    headers = {"Authorization": f"Bearer {token}"}
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for _ in range(connections)]
    try:
        for s in sessions:  # open every connection first, so the scans leave together
            async with s.get(f"{base}/healthz") as resp:
                await resp.read()
        for payload in payloads:
            async def scan(session: aiohttp.ClientSession, payload=payload) -> str:
                async with session.post(f"{base}{API}", json={"payload": payload}, headers=headers) as resp:
                    body = await resp.json(content_type=None)
                    return body.get("verdict", f"http_{resp.status}") if resp.status == 200 else f"http_{resp.status}"

            verdicts = await asyncio.gather(*(scan(s) for s in sessions))
            counts: dict[str, int] = {}
            for verdict in verdicts:
                counts[verdict] = counts.get(verdict, 0) + 1
            rounds.append(counts)
    finally:
        for s in sessions:
            await s.close()
    return rounds


def revoke_bench_tokens(name: str) -> None:
    """Revoke the scanner tokens a benchmark created, as a gate would at the end of the day: a
    steward may hold SCANNER_TOKENS_PER_USER active tokens, and each run makes one."""
    with common.pg_connect() as conn:
        conn.execute("UPDATE scanner_tokens SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", (name,))
        conn.commit()


def measure(base: str, *, duration: int = 30, connections: int = 16, rounds: int = 20) -> dict:
    try:
        return _measure(base, duration=duration, connections=connections, rounds=rounds)
    finally:
        revoke_bench_tokens(TOKEN_NAME)


def _measure(base: str, *, duration: int, connections: int, rounds: int) -> dict:
    token = asyncio.run(scanner_token(base, staff_account(1)))
    # Enough distinct tickets for ~3000 scans/s over the run; wrk wraps around only beyond that.
    payloads = payloads_for_unused_tickets(max(20_000, duration * 3000) + rounds)
    if len(payloads) < rounds + 1000:
        raise SystemExit(f"check-in: only {len(payloads)} unused seeded tickets left; re-seed (bench/seed.py)")
    race, distinct = payloads[:rounds], payloads[rounds:]
    path = common.OUT / "checkin-payloads.txt"
    path.write_text("\n".join(distinct) + "\n")
    result = common.run_wrk(f"{base}{API}", threads=2, connections=connections, duration=duration, script=LUA,
                            headers={"Authorization": f"Bearer {token}"}, script_args=(path, 2))
    verdicts = parse_verdicts(result["raw"])
    race_rounds = asyncio.run(same_ticket(base, token, race, connections))
    exactly_one = sum(1 for r in race_rounds if r.get("VALID", 0) == 1)
    return {
        "checkin_rps": result["rps"], "checkin_p50_ms": result["p50_ms"], "checkin_p99_ms": result["p99_ms"],
        "checkin_errors": result["errors"], "checkin_requests": result["requests"],
        "checkin_distinct_payloads": len(distinct), "checkin_verdicts": verdicts,
        "checkin_same_ticket_rounds": len(race_rounds),
        "checkin_same_ticket_exactly_one_valid": exactly_one,
        "checkin_same_ticket_verdicts": race_rounds[0] if race_rounds else {},
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    common.flush_redis()
    with common.running_server() as server:
        figures = measure(server.url, duration=args.duration, connections=args.connections)
        figures["checkin_workers"] = server.model.label
        figures.update(common.worker_rss(server, "checkin"))
    common.print_figures(f"check-in (wrk -t2 -c{args.connections} -d{args.duration}s, distinct tickets)", figures)
    common.record("checkin", figures)
    return figures


if __name__ == "__main__":
    main()
