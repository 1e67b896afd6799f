"""bcrypt runs on one low-priority background thread per process (app/auth/hashing.py)."""
from __future__ import annotations

import os
import signal
import threading

import pytest

from app.auth.hashing import LowPriorityThread, hasher


def _where_am_i():
    return threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_work_runs_on_a_background_thread_at_the_lower_priority():
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    name, priority = LowPriorityThread().run(10, _where_am_i)
    assert name.startswith("bcrypt")
    assert priority == min(19, caller + 10)  # relative: still below a caller started under `nice`
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller  # the caller keeps its priority


def test_nice_zero_runs_in_the_calling_thread():
    name, _ = LowPriorityThread().run(0, _where_am_i)
    assert name == threading.current_thread().name


def test_one_thread_serves_every_caller_in_order():
    worker = LowPriorityThread()
    names = {worker.run(5, _where_am_i)[0] for _ in range(5)}
    assert len(names) == 1


def test_exceptions_reach_the_caller():
    def boom():
        raise ValueError("bad hash")

    with pytest.raises(ValueError, match="bad hash"):
        LowPriorityThread().run(10, boom)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_process_starts_its_own_thread():
    worker = LowPriorityThread()
    worker.run(10, _where_am_i)  # the parent's thread exists; a child does not inherit it
    pid = os.fork()
    if pid == 0:  # child: the executor must be rebuilt, or submit() would wait forever
        signal.alarm(10)  # … and then SIGALRM ends the child with a failure status
        try:
            name, _ = worker.run(10, _where_am_i)
            os._exit(0 if name.startswith("bcrypt") else 1)
        except BaseException:  # noqa: BLE001 - whatever happens, the forked child must exit here
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_hasher_checks_passwords_on_the_hashing_thread(app):
    with app.app_context():
        app.config["PASSWORD_HASHING_NICE"] = 10
        stored = hasher.hash("Podium-Relay-2026")
        assert hasher.check(stored, "Podium-Relay-2026")
        assert not hasher.check(stored, "Podium-Relay-2025")
        assert not hasher.check(stored, "x" * 73)  # beyond bcrypt's 72 bytes: refused, same work


GEVENT_SCRIPT = """
from gevent import monkey; monkey.patch_all()
import sys, gevent, bcrypt
from app.auth.hashing import LowPriorityThread

hashed = bcrypt.hashpw(b"Podium-Relay-2026", bcrypt.gensalt(12))
ticks = 0

def other_requests():
    global ticks
    while True:
        ticks += 1
        gevent.sleep(0.001)

gevent.spawn(other_requests)
gevent.sleep(0)
worker = LowPriorityThread()
assert worker.run(10, bcrypt.checkpw, b"Podium-Relay-2026", hashed)
try:
    worker.run(10, bcrypt.checkpw, b"x", b"not a bcrypt hash")
except ValueError:
    pass
else:
    sys.exit("the error did not reach the caller")
print(ticks)
"""


def test_under_gevent_bcrypt_leaves_the_other_greenlets_running():
    """gunicorn's gevent worker patches threading into greenlets: a bcrypt-12 check on such a
    'thread' would stop the whole process; on gevent's real thread the others keep running."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("gevent")
    result = subprocess.run([sys.executable, "-c", GEVENT_SCRIPT], check=False, capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 20  # one tick per millisecond of waiting; blocked, it stays at 1


def test_the_dummy_hash_for_unknown_accounts_is_made_on_the_hashing_thread(app, monkeypatch):
    """Made in the request itself, it would stop a gevent worker for a whole bcrypt hash."""
    from app.auth import hashing

    hashing._dummy_hash.cache_clear()
    ran = []

    def recording_run(fn, *args):
        ran.append(fn)
        return fn(*args)

    monkeypatch.setattr(hashing, "_run", recording_run)
    with app.app_context():
        assert hasher.check_dummy("Podium-Relay-2026") is False
    hashing._dummy_hash.cache_clear()
    assert ran[0] == hashing.bcrypt.generate_password_hash  # the hash, then the check, both through _run
    assert len(ran) == 2
