"""Choose the gunicorn worker class and counts by measurement (2 cores).

    .venv/bin/python bench/workers.py [--rounds 1] [--duration 10] [--buyers 120]

For each candidate (sync with 3/5 workers, gthread with 2–4 workers × 4/8 threads) it
starts gunicorn through gunicorn.conf.py (GUNICORN_WORKERS / GUNICORN_THREADS /
GUNICORN_WORKER_CLASS), runs wrk on an event page, the check-in API and a small rush, and
records req/s, p99, orders per minute and worker RSS. Candidates are measured in interleaved
rounds so that a change in the machine's background load hits them all alike; the table keeps
the median over rounds. Results go to bench/results.json under `worker_choice`.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import catalogue, checkin, common, rush

CANDIDATES = [
    common.WorkerModel(3, 1, "sync"), common.WorkerModel(5, 1, "sync"),
    common.WorkerModel(2, 4, "gthread"), common.WorkerModel(3, 4, "gthread"), common.WorkerModel(4, 4, "gthread"),
    common.WorkerModel(2, 8, "gthread"),
]


_stewards = iter(range(10**6))


def measure_model(model: common.WorkerModel, duration: int, buyers: int) -> dict:
    common.flush_redis()
    with common.running_server(model) as server:
        event_url = catalogue.catalogue_urls(server.url)["event"]
        common.http_get(event_url)
        page = common.run_wrk(event_url, duration=duration)
        token = asyncio.run(checkin.scanner_token(server.url, checkin.staff_account(1 + next(_stewards) % 4)))
        path = common.OUT / "workers-payloads.txt"
        path.write_text("\n".join(checkin.payloads_for_unused_tickets(duration * 1500)) + "\n")
        scans = common.run_wrk(f"{server.url}{checkin.API}", duration=duration, script=checkin.LUA,
                               headers={"Authorization": f"Bearer {token}"}, script_args=(path, 2))
        sale = rush.measure(server.url, buyers, buyers * 5 // 6, label="workers",
                            server_pids=tuple(server.worker_pids()))
        rss = common.worker_rss(server)["worker_rss_mb"]
    return {"event_rps": page["rps"], "event_p99_ms": page["p99_ms"], "checkin_rps": scans["rps"],
            "checkin_p99_ms": scans["p99_ms"], "orders_per_minute": sale["orders_per_minute"],
            "purchase_p50_ms": sale["rush_purchase_p50_ms"], "errors": page["errors"] + scans["errors"] + sale["errors_5xx"],
            "oversell": sale["oversell"], "rss_mb": rss, "loadavg": common.loadavg()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--buyers", type=int, default=120)
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {m.label: [] for m in CANDIDATES}
    for n in range(args.rounds):
        for model in CANDIDATES:
            result = measure_model(model, args.duration, args.buyers)
            runs[model.label].append(result)
            print(f"round {n + 1} {model.label:16s} {result}", flush=True)
    table = {}
    for label, results in runs.items():
        row = {key: round(statistics.median(r[key] for r in results), 1)
               for key in results[0] if key not in ("loadavg", "errors", "oversell")}
        row["errors"] = sum(r["errors"] for r in results)
        row["oversell"] = max(r["oversell"] for r in results)
        row["loadavg"] = [r["loadavg"] for r in results]
        table[label] = row
    print("\nmodel             event req/s  p99   check-in/s  p99   orders/min  purchase p50  RSS MB  errors")
    for label, row in table.items():
        print(f"{label:16s} {row['event_rps']:10.0f} {row['event_p99_ms']:6.0f} {row['checkin_rps']:10.0f} "
              f"{row['checkin_p99_ms']:6.0f} {row['orders_per_minute']:10.0f} {row['purchase_p50_ms']:12.0f} "
              f"{row['rss_mb']:7.0f} {row['errors']:6d}")
    common.record("worker_choice", {"worker_choice": table, "worker_choice_rounds": args.rounds})
    return table


if __name__ == "__main__":
    main()
