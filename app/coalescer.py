"""Run an action once for a burst of requests, on a background thread, a moment later.

For a write whose only effect is to invalidate a cache: the statistics version after check-ins
(app/admin/dashboard.py). At the gates a process checks in hundreds of tickets a second; a Redis
SET for each scan cost about a quarter of the check-in API's CPU (`bench/checkin_ladder.py`),
while one SET every `delay` seconds keeps the dashboard just as right, at most `delay` later.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Coalescer:
    """`request()` promises one run of `action` that starts after the request was made; requests
    made while one waits share it. With `delay` <= 0 the action runs at once, in the caller.

    The thread starts on the first request in each process (a gunicorn worker forks after the
    app is loaded, and a thread does not survive a fork); a request still waiting when the
    process exits normally runs then (atexit)."""

    def __init__(self, action: Callable[[], None], delay: float, *, name: str = "coalescer"):
        self.action, self.delay, self.name = action, delay, name
        self._pending = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def request(self) -> None:
        if self.delay <= 0:
            self._run()
            return
        self._pending.set()
        if not self._running():
            self._start()

    def flush(self) -> None:
        """Run the action now if a request is waiting."""
        if self._pending.is_set():
            self._pending.clear()
            self._run()

    def _running(self) -> bool:
        return self._thread is not None and self._pid == os.getpid() and self._thread.is_alive()

    def _start(self) -> None:
        with self._lock:
            if self._running():
                return
            if self._pid is None:
                atexit.register(self.flush)
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self._pending.wait()
            time.sleep(self.delay)
            self._pending.clear()  # before the run: a request made from now on gets the next one
            self._run()

    def _run(self) -> None:
        try:
            self.action()
        except Exception:
            log.warning("%s: action failed", self.name, exc_info=True)
