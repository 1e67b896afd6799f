"""bcrypt through Flask-Bcrypt, shaped as the `PasswordHasher` the account services take.

Every hash and check runs on one background thread per process at a lower CPU priority
(`PASSWORD_HASHING_NICE`, default +10). A bcrypt cost-12 check is ~0.25 s of pure CPU; twenty
people signing in at once would otherwise take both cores for seconds and every page other
visitors load would wait behind them. On the low-priority thread the sign-ins queue and use the
CPU the pages leave over. bcrypt releases the GIL, so the waiting request thread costs nothing.

Under gunicorn's gevent worker, `threading` is monkey-patched and a thread it starts is a
greenlet on the worker's one OS thread: bcrypt there would stop every request of the process for
its quarter second. The hashing thread is then one of gevent's own real threads, and the waiting
request yields to the others, and gives its in-flight slot back meanwhile (app/in_flight.py).
"""
from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from flask import current_app

from app.extensions import bcrypt
from app.in_flight import slot_given_back
from app.services.passwords import BCRYPT_MAX_BYTES


class LowPriorityThread:
    """A single-thread executor whose thread runs `nice` steps below the threads that use it
    (Linux: priority is per thread; relative, so a server started under `nice` keeps the order)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._nice = 0
        if hasattr(os, "register_at_fork"):  # a forked gunicorn worker starts its own thread
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._executor = None

    def _lower_priority(self) -> None:
        try:
            thread = threading.get_native_id()  # starts with the priority of the thread that made it
            os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + self._nice))
        except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
            pass

    def run(self, nice: int, fn, *args):
        if nice <= 0:
            return fn(*args)
        with self._lock:
            if self._executor is None:
                self._nice = nice
                self._executor = _GeventThread(self._lower_priority) if _threads_are_greenlets() else \
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix="bcrypt", initializer=self._lower_priority)
            executor = self._executor
        with slot_given_back():  # queued behind other sign-ins: the request's slot serves pages meanwhile
            return executor.submit(fn, *args).result()


def _threads_are_greenlets() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


class _GeventThread:
    """One real OS thread from gevent's pool, with ThreadPoolExecutor's submit().result()."""

    def __init__(self, initializer) -> None:
        from gevent.threadpool import ThreadPool

        self._pool = ThreadPool(1, idle_task_timeout=-1)  # the thread stays, with its priority
        self._pool.spawn(initializer).get()

    def submit(self, fn, *args):
        return self._pool.spawn(fn, *args)  # an AsyncResult: .result() waits, yielding to the others


_hashing_thread = LowPriorityThread()


def _run(fn, *args):
    return _hashing_thread.run(int(current_app.config["PASSWORD_HASHING_NICE"]), fn, *args)


@lru_cache(maxsize=4)
def _dummy_hash(rounds: int) -> str:
    """Made once per process and cost, on the hashing thread like every other bcrypt call."""
    return _run(bcrypt.generate_password_hash, "guichet-dummy-password", rounds).decode()


class FlaskBcryptHasher:
    def hash(self, password: str) -> str:
        if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:  # refused by the policy before this
            raise ValueError("password longer than bcrypt's 72 bytes")
        return _run(bcrypt.generate_password_hash, password).decode()

    def check(self, password_hash: str, password: str) -> bool:
        if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
            _run(bcrypt.check_password_hash, password_hash, "x")  # same cost as a real check
            return False
        return _run(bcrypt.check_password_hash, password_hash, password)

    def check_dummy(self, password: str) -> bool:
        """Spend the time of a real check when there is no account (same timing either way)."""
        self.check(_dummy_hash(int(current_app.config["BCRYPT_LOG_ROUNDS"])), password)
        return False


hasher = FlaskBcryptHasher()
