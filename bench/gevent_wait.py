"""What psycopg's wait costs under gevent: one prepared one-row SELECT in autocommit, in a greenlet of
a gevent-patched process, with psycopg's own choice there (`wait_poll` on gevent's emulated poll)
and with app/db_wait.py (gevent's io watchers), alternated.

    .venv/bin/python bench/gevent_wait.py [--reads 20000]

Each mode runs in a fresh subprocess (gevent patches the whole process). CPU is the client's
(`time.process_time()`) and the PostgreSQL backend's (/proc), per read.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.transaction_trips import alternated, best_figures

CHILD = r'''
from gevent import monkey; monkey.patch_all()
import json, os, sys, time
import gevent, psycopg
sys.path.insert(0, sys.argv[3])
if sys.argv[1] == "db_wait":
    from app import db_wait
    db_wait.install()

def backend_cpu(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def run(url, reads):
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(200):
            conn.execute("SELECT id FROM events WHERE id = %s", (1,)).fetchone()
        pid = conn.info.backend_pid
        app, server, wall = time.process_time(), backend_cpu(pid), time.perf_counter()
        for _ in range(reads):
            conn.execute("SELECT id FROM events WHERE id = %s", (1,)).fetchone()
        return {"app_us": 1e6 * (time.process_time() - app) / reads,
                "postgres_us": 1e6 * (backend_cpu(pid) - server) / reads,
                "wall_us": 1e6 * (time.perf_counter() - wall) / reads}

print(json.dumps(gevent.spawn(run, sys.argv[2], int(sys.argv[4])).get()))
'''


def measure(mode: str, reads: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, common.LIBPQ_URL, str(common.use_app()), str(reads)],
                          capture_output=True, text=True, check=True, timeout=600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=20_000)
    args = parser.parse_args(argv)
    runs = alternated(("wait_poll", "db_wait"), lambda mode: measure(mode, args.reads))
    figures = best_figures("gevent_read", runs)
    common.record("gevent_wait", figures)
    return figures


if __name__ == "__main__":
    main()
