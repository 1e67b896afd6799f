"""What BEGIN and COMMIT cost a one-SELECT read, on a bare psycopg connection: the app's CPU (this
process) and PostgreSQL's (the backend, from /proc) per read, inside a transaction and in autocommit.

    .venv/bin/python bench/transaction_trips.py [--reads 20000]

psycopg sends BEGIN before a transaction's first statement and COMMIT at its end, each a round
trip of its own; in autocommit the SELECT goes alone. app/db_late_begin.py runs a request's reads
that way until its first write. Modes alternate (transaction, autocommit, transaction, autocommit)
so that a change in the machine's speed shows as a difference between the two runs of one mode.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

READ = "SELECT id FROM events WHERE id = %s"


def backend_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(autocommit: bool, reads: int) -> dict:
    with common.pg_connect(autocommit=autocommit) as connection:
        backend = connection.info.backend_pid
        for _ in range(200):  # prepared from the 5th run, caches warm
            connection.execute(READ, (1,)).fetchone()
            connection.commit()
        app_before, server_before, wall_before = time.process_time(), backend_cpu_seconds(backend), time.perf_counter()
        for _ in range(reads):
            connection.execute(READ, (1,)).fetchone()
            connection.commit()  # sends COMMIT inside a transaction, nothing in autocommit
        app_s, wall_s = time.process_time() - app_before, time.perf_counter() - wall_before
        server_s = backend_cpu_seconds(backend) - server_before
    return {"app_us": 1e6 * app_s / reads, "postgres_us": 1e6 * server_s / reads, "wall_us": 1e6 * wall_s / reads}


def alternated(modes: tuple[str, str], measure, *, rounds: int = 2) -> dict[str, list[dict]]:
    """Run `measure(mode)` for each mode in turn, `rounds` times (a b a b), printing each run."""
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            run = measure(mode)
            runs[mode].append(run)
            print(f"{mode:12s} per read: app {run['app_us']:5.1f} µs, PostgreSQL {run['postgres_us']:5.1f} µs, "
                  f"wall {run['wall_us']:5.1f} µs", flush=True)
    return runs


def best_figures(prefix: str, runs: dict[str, list[dict]]) -> dict:
    """`<prefix>_<mode>_<part>`: each mode's best (lowest) run, the one least disturbed."""
    return {f"{prefix}_{mode}_{part}": round(min(run[part] for run in values), 1)
            for mode, values in runs.items() for part in ("app_us", "postgres_us", "wall_us")}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=20_000)
    args = parser.parse_args(argv)
    runs = alternated(("transaction", "autocommit"), lambda mode: measure(mode == "autocommit", args.reads))
    figures = best_figures("read", runs)
    common.record("transaction_trips", figures)
    return figures


if __name__ == "__main__":
    main()
