"""Independent checkers shared by the tests: tools that are not the code under test."""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa


def oathtool(secret: str, when: datetime) -> str:
    """A TOTP code from oath-toolkit, an implementation independent of pyotp, at a fixed time."""
    if shutil.which("oathtool") is None:
        pytest.skip("oathtool missing: apt-get install -y oathtool")
    stamp = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    done = subprocess.run(["oathtool", "--totp", "-b", "--now", stamp, secret],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def wait_for_mail(outbox, n: int, timeout: float = 10.0):
    """The n-th captured email, once the live server's thread has sent it."""
    deadline = time.monotonic() + timeout
    while len(outbox) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(outbox) >= n, "the email was not sent"
    return outbox[n - 1]


def wait_for(condition, seconds: float = 5.0) -> bool:
    """Whether `condition()` became true within `seconds` (work done by a background thread)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return bool(condition())


@contextlib.contextmanager
def orm_flushes(session):
    """A list that gets one entry per flush of `session` (a scoped session too) inside the block."""
    seen: list[int] = []

    def on_flush(_session, _context):
        seen.append(1)

    sa.event.listen(session, "after_flush", on_flush)
    try:
        yield seen
    finally:
        sa.event.remove(session, "after_flush", on_flush)


@contextlib.contextmanager
def orm_loads(*models):
    """A list that gets the class name of each instance of `models` the ORM loads inside the block."""
    seen: list[str] = []

    def on_load(target, _context):
        seen.append(type(target).__name__)

    for model in models:
        sa.event.listen(model, "load", on_load)
    try:
        yield seen
    finally:
        for model in models:
            sa.event.remove(model, "load", on_load)


@contextlib.contextmanager
def sql_statements(engine):
    """Every statement `engine` sends inside the block, in order, with "COMMIT" where it commits."""
    seen: list[str] = []

    def on_statement(_conn, _cursor, statement, *_args):
        seen.append(statement)

    def on_commit(_conn):
        seen.append("COMMIT")

    sa.event.listen(engine, "before_cursor_execute", on_statement)
    sa.event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_statement)
        sa.event.remove(engine, "commit", on_commit)
