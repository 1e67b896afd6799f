"""app/coalescer.py: one run of the action for a burst of requests, always after the request."""
from __future__ import annotations

import threading
import time

from app.coalescer import Coalescer
from tests.checkers import wait_for


def test_without_a_delay_the_action_runs_at_once_in_the_caller():
    runs = []
    coalescer = Coalescer(lambda: runs.append(threading.current_thread()), 0)
    coalescer.request()
    coalescer.request()
    assert runs == [threading.current_thread()] * 2


def test_a_burst_of_requests_costs_one_run_after_the_delay():
    runs = []
    coalescer = Coalescer(lambda: runs.append(time.monotonic()), 0.2)
    first = time.monotonic()
    for _ in range(50):
        coalescer.request()
    assert runs == []  # not in the caller
    assert wait_for(lambda: runs)
    time.sleep(0.4)  # nothing else was asked for: no second run
    assert len(runs) == 1 and runs[0] - first >= 0.2


def test_a_request_made_during_a_run_gets_a_run_of_its_own():
    started, release, runs = threading.Event(), threading.Event(), []

    def slow_action():
        runs.append(1)
        started.set()
        release.wait(5)

    coalescer = Coalescer(slow_action, 0.05)
    coalescer.request()
    assert started.wait(5)
    coalescer.request()  # the first run already started: it cannot cover this request
    release.set()
    assert wait_for(lambda: len(runs) == 2)


def test_flush_runs_a_waiting_request_now_and_only_then():
    runs = []
    coalescer = Coalescer(lambda: runs.append(1), 60)
    coalescer.flush()
    assert runs == []
    coalescer.request()
    coalescer.flush()  # what happens at exit: no waiting the minute out
    assert runs == [1]


def test_a_failing_action_does_not_stop_later_runs(caplog):
    outcomes = iter([ConnectionError("cache down"), None])
    runs = []

    def action():
        runs.append(1)
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    coalescer = Coalescer(action, 0.02, name="test-bump")
    coalescer.request()
    assert wait_for(lambda: len(runs) == 1)
    assert wait_for(lambda: "test-bump: action failed" in caplog.text)
    coalescer.request()
    assert wait_for(lambda: len(runs) == 2)
