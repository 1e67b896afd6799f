"""The check-in ladder: the check-in benchmark's load on ever fuller versions of the endpoint.

    .venv/bin/python bench/checkin_ladder.py [--duration 15] [--connections 16]

The same wrk script (bench/lua/checkin.lua, a different signed payload on every request, the
steward's bearer token) and the same gunicorn settings (gunicorn.conf.py, bench worker model)
run against five servers, from bare Flask up to the real app, and a sixth beside them: the
least a valid scan can cost (bench/ladder_app.py says what each rung adds):

    flask      HTTP, gunicorn and Flask: what any endpoint costs at this load
    write      + one committed write per scan
    minimal    (beside the ladder) all a valid scan must do, hand-written: the signature, then
               one raw statement (token, owner, digest, check-in, audit event, scan record)
    check_in   + the real check-in service (SQLAlchemy, signature, the one statement)
    services   + the bearer token (checked in the same statement) and the shared statistics bump
    app        the real endpoint: + the app's extensions, hooks and middlewares

At 16 connections every scan waits for the 15 others (Little's law: mean latency =
connections / throughput), and wrk, PostgreSQL, Redis and gunicorn share the two cores, so the
p99 of a rung is, run-to-run noise aside, the least the rungs above it can reach: the ladder
shows which layer keeps the check-in from p99 ≤ 30 ms, and whether any version of it could get
there on this machine.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import checkin, common

RUNGS = ("flask", "write", "minimal", "check_in", "services")  # bench/ladder_app.py; then the app itself


def steward_id(email: str) -> int:
    with common.pg_connect() as conn:
        return conn.execute("SELECT id FROM users WHERE email = %s", (email,)).fetchone()[0]


def run_rung(server: common.Server, token: str, payloads: list[str], *, duration: int, connections: int,
             name: str) -> dict:
    """wrk on one rung; also the CPU each scan cost the gunicorn workers and PostgreSQL."""
    path = common.OUT / f"ladder-{name}-payloads.txt"
    path.write_text("\n".join(payloads) + "\n")
    workers = server.worker_pids()
    app_cpu, pg_cpu = common.cpu_seconds(workers), common.postgres_cpu()
    result = common.run_wrk(f"{server.url}{checkin.API}", connections=connections, duration=duration,
                            script=checkin.LUA, headers={"Authorization": f"Bearer {token}"}, script_args=(path, 2))
    app_cpu, pg_cpu = common.cpu_seconds(workers) - app_cpu, common.postgres_cpu_since(pg_cpu)
    scans = max(result["requests"], 1)
    verdicts = checkin.parse_verdicts(result["raw"])
    figures = {f"ladder_{name}_rps": result["rps"], f"ladder_{name}_p50_ms": result["p50_ms"],
               f"ladder_{name}_p99_ms": result["p99_ms"], f"ladder_{name}_errors": result["errors"],
               f"ladder_{name}_app_cpu_ms": round(app_cpu * 1000 / scans, 2),
               f"ladder_{name}_pg_cpu_ms": round(pg_cpu * 1000 / scans, 2)}
    if name not in ("flask", "write"):  # these answer FLOOR: they check nobody in
        figures[f"ladder_{name}_valid"] = verdicts.get("VALID", 0)
    return figures


ALL_RUNGS = (*RUNGS, "app")
SHARED_BATCH = ("flask", "write")  # they use no ticket up


def measure(*, duration: int = 15, connections: int = 16, rungs: tuple[str, ...] = ALL_RUNGS) -> dict:
    steward = checkin.staff_account(1)
    env = {"LADDER_STAFF_ID": str(steward_id(steward["email"]))}
    per_rung = max(10_000, duration * 1200)  # distinct tickets per rung: more than one can scan
    figures: dict = {}
    try:
        with common.running_server() as app_server:  # the steward's token, made as a gate app would
            token = asyncio.run(checkin.scanner_token(app_server.url, steward))
        using = [name for name in rungs if name not in SHARED_BATCH]
        payloads = checkin.payloads_for_unused_tickets(per_rung * max(1, len(using)))
        if len(payloads) < per_rung * max(1, len(using)):
            raise SystemExit(f"ladder: fewer than {per_rung * max(1, len(using))} unused tickets left; "
                             "re-seed (bench/seed.py)")
        batches = {name: payloads[i * per_rung:(i + 1) * per_rung] for i, name in enumerate(using)}
        for name in rungs:
            batch = batches.get(name, payloads[:per_rung])
            if name == "app":
                server_context = common.running_server()
            else:
                server_context = common.running_server(env={**env, "LADDER_RUNG": name},
                                                       app_spec="bench.ladder_app:app")
            with server_context as server:
                figures.update(run_rung(server, token, batch, duration=duration, connections=connections,
                                        name=name))
                figures["ladder_workers"] = server.model.label
    finally:
        checkin.revoke_bench_tokens(checkin.TOKEN_NAME)
    return figures


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rungs", default=",".join(ALL_RUNGS),
                        help="a comma-separated subset, e.g. 'app' to compare two snapshots (BENCH_SOURCE); "
                             "a subset is printed, not recorded")
    args = parser.parse_args(argv)
    rungs = tuple(name.strip() for name in args.rungs.split(",") if name.strip())
    unknown = set(rungs) - set(ALL_RUNGS)
    if unknown or not rungs:
        parser.error(f"--rungs: choose among {', '.join(ALL_RUNGS)}")
    common.flush_redis()
    figures = measure(duration=args.duration, connections=args.connections, rungs=rungs)
    common.print_figures(f"check-in ladder (wrk -t2 -c{args.connections} -d{args.duration}s per rung)", figures)
    if rungs == ALL_RUNGS:
        common.record("ladder", figures)
    return figures


if __name__ == "__main__":
    main()
