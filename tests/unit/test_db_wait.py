"""psycopg's waits on gevent's io watchers (app/db_wait.py), in a gevent-patched subprocess against
PostgreSQL: results, errors, large messages both ways, other greenlets running during a wait, and a
wait with a timeout left to psycopg's own function."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_DATABASE_URL

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="set TEST_DATABASE_URL: psycopg on PostgreSQL")

SCRIPT = r'''
from gevent import monkey; monkey.patch_all()
import sys
import gevent, psycopg
from psycopg import waiting
from app import db_wait

db_wait.install()
assert waiting.wait is db_wait.wait_on_gevent
url = sys.argv[1]

with psycopg.connect(url, autocommit=True) as conn:
    assert conn.execute("SELECT %s::int + 1", (41,)).fetchone() == (42,)
    big = "x" * 5_000_000  # sent in pieces: psycopg waits to write
    assert conn.execute("SELECT length(%s)", (big,)).fetchone() == (5_000_000,)
    rows = conn.execute("SELECT g, repeat('y', 100) FROM generate_series(1, 50000) g").fetchall()
    assert len(rows) == 50000 and rows[-1][0] == 50000  # read in pieces
    try:
        conn.execute("SELECT 1 / 0")
    except psycopg.errors.DivisionByZero:
        pass
    else:
        raise AssertionError("the error must come through")
    assert conn.execute("SELECT 'still usable'").fetchone() == ("still usable",)
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
    assert conn.execute("SELECT sum(n) FROM t").fetchone() == (3,)

# Another greenlet runs while one waits for PostgreSQL.
order = []

def slow():
    with psycopg.connect(url, autocommit=True) as conn:
        order.append("query sent")
        conn.execute("SELECT pg_sleep(0.3)")
        order.append("answer")

def meanwhile():
    order.append("meanwhile")

first = gevent.spawn(slow)
gevent.sleep(0.1)  # the query is on its way
second = gevent.spawn(meanwhile)
gevent.joinall([first, second], raise_error=True)
assert order == ["query sent", "meanwhile", "answer"], order

# A wait with a timeout goes to psycopg's own function (waiting for notifications uses one): it
# returns when the time is up rather than waiting on the hub for ever.
delegated = []
original = db_wait._psycopg_wait
def recording(*args, **kwargs):
    delegated.append(kwargs.get("timeout"))
    return original(*args, **kwargs)
db_wait._psycopg_wait = recording
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute("LISTEN guichet_test")
    assert list(conn.notifies(timeout=0.3)) == []
assert delegated and all(timeout is not None for timeout in delegated), delegated
print("ok")
'''


def test_psycopg_under_gevent_waits_on_the_hub():
    url = TEST_DATABASE_URL.replace("postgresql+psycopg://", "postgresql://")
    result = subprocess.run([sys.executable, "-c", SCRIPT, url], check=False, capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
