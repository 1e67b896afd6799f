"""Every benchmark in one go (`make bench`): figures to bench/results.json and the table in bench/README.md.

    .venv/bin/python bench/run_all.py            # seed if needed, then everything (~10 minutes)
    .venv/bin/python bench/run_all.py --quick    # shorter runs (10 s wrk, 300 buyers) for a smoke test
    .venv/bin/python bench/run_all.py --seed     # re-create the bulk data first
    .venv/bin/python bench/run_all.py --table    # only rewrite the README table from results.json

One gunicorn server (common.DEFAULT_MODEL) serves catalogue, login storm, check-in, admin and
rush in turn; the peak RSS of its workers is read after all of them (worker_rss_mb). Then the
rush runs again on the minimal shop (bench/minimal_shop.py, the least a purchase can cost), bare
and on the fixed stack's plumbing; the check-in ladder starts a server per rung
(bench/checkin_ladder.py), and the rush runs again through nginx in front of two gunicorn instances.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    admin,
    catalogue,
    checkin,
    checkin_ladder,
    common,
    emails,
    floor,
    logins,
    rush,
    seed,
    tickets,
)
from bench import nginx as bench_nginx
from bench.report import write_readme

UNUSED_TICKETS_NEEDED = 120_000  # check-in uses ~20 000; the ladder asks for 90 000 unused (5 batches)


def database_seeded() -> bool:
    """The bulk data is there, with enough tickets left unused for the check-in benchmarks, and
    a table for every model of the code measured (a new model since the last seed means seeding
    again: the schema comes from `db.create_all()`)."""
    import app.models  # noqa: F401 - every model registers its table
    from app.extensions import db

    try:
        with common.pg_connect() as conn:
            tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            if not set(db.metadata.tables) <= tables:
                return False
            if conn.execute("SELECT count(*) FROM tickets").fetchone()[0] < seed.TICKETS:
                return False
            unused = conn.execute("SELECT count(*) FROM tickets WHERE checked_in_at IS NULL AND voided_at IS NULL")
            return unused.fetchone()[0] >= UNUSED_TICKETS_NEEDED
    except Exception:  # noqa: BLE001 - no database or no table: seed it
        return False


def pg_commit_ms(samples: int = 200) -> float:
    """Median time of a one-row INSERT + COMMIT here (the disk's fsync sets the floor for writes).

    A regular (WAL-logged) table: a TEMP table's commits never wait for the disk.
    """
    with common.pg_connect() as conn:
        conn.execute("DROP TABLE IF EXISTS bench_commit_probe")
        conn.execute("CREATE TABLE bench_commit_probe (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
        conn.commit()
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            conn.execute("INSERT INTO bench_commit_probe DEFAULT VALUES")
            conn.commit()
            times.append(time.perf_counter() - t0)
        conn.execute("DROP TABLE bench_commit_probe")
        conn.commit()
    return round(sorted(times)[len(times) // 2] * 1000, 2)


def step(name: str, fn, *args, **kwargs) -> dict:
    print(f"\n--- {name} (loadavg {' '.join(map(str, common.loadavg()))})", flush=True)
    t0 = time.perf_counter()
    figures = fn(*args, **kwargs)
    common.print_figures(f"{name} ({time.perf_counter() - t0:.0f} s)", figures)
    common.record(name, figures)
    return figures


def preflight(nginx: bool) -> None:
    """The tools the benchmarks drive, with the command that installs each (Debian)."""
    import shutil

    missing = [tool for tool in ("wrk",) if shutil.which(tool) is None]
    if nginx and not Path(bench_nginx.NGINX).exists():
        missing.append("nginx")
    if missing:
        raise SystemExit(f"bench: missing {', '.join(missing)}: apt-get install -y {' '.join(missing)} "
                         "(or run with --no-nginx)")
    try:
        with common.pg_connect("postgres"):
            pass
        common.flush_redis()
    except Exception as error:  # noqa: BLE001
        raise SystemExit(f"bench: PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 are needed ({error})"
                         ) from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--no-nginx", action="store_true")
    args = parser.parse_args(argv)
    if args.table:
        write_readme()
        return 0
    preflight(nginx=not args.no_nginx)
    duration = 10 if args.quick else 30
    buyers, seats = (300, 250) if args.quick else (600, 500)

    common.use_app()
    if args.seed or not database_seeded():
        seed.main()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=common.ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    step("environment", lambda: {"pg_commit_ms": pg_commit_ms(), "commit": commit,
                                 "command": "make bench" + (" (--quick)" if args.quick else "")})
    tickets.main()
    step("emails", emails.measure_apart)
    common.flush_redis()
    with common.running_server() as server:
        print(f"server: {server.model.label} on {server.url} (pid {server.pid})")
        step("catalogue", catalogue.measure, server.url, duration=duration)
        step("logins", logins.measure, server.url, duration=duration)
        step("checkin", checkin.measure, server.url, duration=duration)
        step("admin", admin.measure, server.url)
        step("rush", rush.measure, server.url, buyers, seats, server_pids=tuple(server.worker_pids()), solo=30)
        step("buy_now_rush", rush.measure_journey, server.url, buyers, seats, tuple(server.worker_pids()))
        memory = common.worker_rss(server)
        memory["workers"] = server.model.label
        step("memory", lambda: memory)
        step("floor", floor.measure, server.url, tuple(server.worker_pids()), duration=10)
    common.flush_redis()
    step("minimal_rush", rush.measure_minimal, common.MINIMAL_SHOP_MODEL, buyers, seats, 0)  # its own server
    common.flush_redis()
    step("fixed_stack_rush", rush.measure_minimal, common.MINIMAL_SHOP_MODEL, buyers, seats, 0, "fixed")
    step("ladder", checkin_ladder.measure, duration=10 if args.quick else 15)  # its own servers, one per rung
    if not args.no_nginx:
        model = common.DEFAULT_MODEL
        common.flush_redis()
        step("nginx_rush", rush.measure_behind_nginx, model, buyers, seats)
    write_readme()
    print(f"\nresults: {common.RESULTS}\ntable:   {common.BENCH / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
