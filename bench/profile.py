"""Profile one gunicorn worker with py-spy while wrk (or a callable) loads it; print the hot spots.

    .venv/bin/python bench/profile.py /events/ [--seconds 10] [--connections 4]

Starts a single sync worker (so every sample is a request of interest), records with py-spy
(raw collapsed stacks in bench/out/profile-*.txt) and prints the functions with the largest
inclusive share, restricted to frames from the app and its libraries.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

PY_SPY = Path(sys.executable).parent / "py-spy"


def hot_spots(raw: Path, top: int = 45) -> list[tuple[float, str]]:
    inclusive: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        seen = set()
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            key = f"{name} ({where.rsplit('/', 2)[-2:] and '/'.join(where.rsplit('/', 2)[-2:])}"
            key = key.split(":")[0] + ")"
            if key not in seen:
                seen.add(key)
                inclusive[key] += n
    return [(100 * n / total, key) for key, n in inclusive.most_common(top)] if total else []


def profile(path: str, seconds: int = 10, connections: int = 4, headers: dict | None = None,
            script: Path | None = None, model: common.WorkerModel | None = None, script_args=(),
            prepare=None) -> Path:
    """`prepare(base_url)` may return extra headers (e.g. a scanner token) before the run."""
    model = model or common.WorkerModel(1, 1, "sync")
    out = common.OUT / f"profile-{path.strip('/').replace('/', '_') or 'root'}.txt"
    with common.running_server(model) as server:
        if prepare is not None:
            headers = {**(headers or {}), **prepare(server.url)}
        else:
            common.http_get(server.url + path, headers=headers)
        spy = subprocess.Popen([str(PY_SPY), "record", "-p", str(server.worker_pids()[0]), "-d", str(seconds),
                                "-r", "250", "-f", "raw", "-o", str(out), "--gil"],  # CPU: GIL holders only
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = common.run_wrk(server.url + path, threads=1, connections=connections, duration=seconds,
                                headers=headers, script=script, script_args=script_args)
        spy.wait(seconds + 30)
    print(f"{path}: {result['rps']} req/s, p50 {result['p50_ms']} ms (1 sync worker, {connections} connections, "
          f"loadavg {common.loadavg()})")
    return out


def profile_checkin(seconds: int, connections: int) -> Path:
    import asyncio

    from bench import checkin

    path = common.OUT / "profile-checkin-payloads.txt"
    path.write_text("\n".join(checkin.payloads_for_unused_tickets(5000 * seconds // 10, offset=100_000)) + "\n")

    def prepare(base: str) -> dict:
        token = asyncio.run(checkin.scanner_token(base, checkin.staff_account(2)))
        return {"Authorization": f"Bearer {token}"}

    return profile(checkin.API, seconds, connections, script=checkin.LUA, script_args=(path, 1), prepare=prepare)


def profile_rush(buyers: int = 120) -> Path:
    """py-spy on every worker of a 1-worker server while `buyers` run the whole purchase."""
    from bench import rush

    out = common.OUT / "profile-rush.txt"
    with common.running_server(common.WorkerModel(1, 4, "gthread")) as server:
        spy = subprocess.Popen([str(PY_SPY), "record", "-p", str(server.worker_pids()[0]), "-d", "600",
                                "-r", "250", "-f", "raw", "-o", str(out), "--gil"],  # CPU: GIL holders only
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            figures = rush.measure(server.url, buyers, buyers - 10, label="profile",
                                   server_pids=tuple(server.worker_pids()))
        finally:
            spy.send_signal(2)  # SIGINT: py-spy writes what it has
            spy.wait(60)
    print({k: v for k, v in figures.items() if "cpu" in k or "per_minute" in k})
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--checkin", action="store_true", help="profile the check-in API (scanner token)")
    parser.add_argument("--rush", type=int, default=0, help="profile the whole purchase with this many buyers")
    args = parser.parse_args(argv)
    if args.rush:
        raw = profile_rush(args.rush)
    elif args.checkin:
        raw = profile_checkin(args.seconds, args.connections)
    else:
        raw = profile(args.path, args.seconds, args.connections)
    for share, key in hot_spots(raw, args.top):
        print(f"{share:5.1f}%  {key}")


if __name__ == "__main__":
    main()
