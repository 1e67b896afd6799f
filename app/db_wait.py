"""psycopg's waits on gevent's own io watchers, for the gevent worker.

psycopg waits for its socket through a wait function. Its fast one is written in C and blocks the
thread, so when gevent has patched `select`, psycopg falls back to `wait_poll`: for every round
trip a `select.poll()` object, gevent's emulation of it (an io watcher and a timer for the
0.1 s wake-up interval), and the poll's result list. Waiting on a libev io watcher directly is
what gevent's own sockets do. On this machine one prepared SELECT in a greenlet took 68–71 µs of
the client's CPU with `wait_poll` and 57–60 µs with this (bench/gevent_wait.py); in the rush, the
gunicorn workers' CPU per order went from 26.5 to 25.8 ms (bench/README.md).

A wait with a timeout (psycopg's cancel, a connection attempt) still goes to psycopg's function.
The periodic wake-up psycopg asks for lets a blocked thread notice Ctrl-C; under gevent the hub
handles signals, so it is left out.
"""
from __future__ import annotations

from psycopg import waiting
from psycopg.waiting import Ready, Wait

_READ, _WRITE = 1, 2  # libev's event bits, the same values as psycopg's Ready.R and Ready.W
_MASK = {Wait.R: _READ, Wait.W: _WRITE, Wait.RW: _READ | _WRITE}
_READY = {_READ: Ready.R, _WRITE: Ready.W, _READ | _WRITE: Ready.RW}


def wait_on_gevent(gen, fileno: int, interval: float | None = 0.0, timeout: float | None = None):
    """psycopg's `wait(gen, fileno, interval, timeout)`: run the generator, waiting on the hub."""
    if timeout is not None:
        return _psycopg_wait(gen, fileno, interval=interval, timeout=timeout)
    from gevent.hub import Waiter, get_hub

    loop = get_hub().loop
    try:
        state = next(gen)
        while True:
            watcher = loop.io(fileno, _MASK[state])
            waiter = Waiter()
            watcher.start(waiter.switch, pass_events=True)
            try:
                events = waiter.get()
            finally:
                watcher.close()
            state = gen.send(_READY.get(events & (_READ | _WRITE), Ready.RW))
    except StopIteration as done:
        return done.value


_psycopg_wait = waiting.wait


def install() -> None:
    """Make psycopg's connections wait through `wait_on_gevent` (call in a gevent worker)."""
    waiting.wait = wait_on_gevent
