"""`flask emails work` (the outbox worker), `flask emails status` (its monitoring numbers) and
`flask emails purge` (deleting the jobs that are done with).

With MAIL_QUEUE on, the pay and cancel requests only queue their emails; this worker renders
the PDF tickets and sends them. It runs at a lower CPU priority (EMAIL_WORKER_NICE), so during an
on-sale rush the web workers keep the CPU and the emails catch up afterwards. It also deletes
the sent and given-up jobs older than EMAIL_JOBS_KEEP_DAYS, once an hour.
"""
from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.extensions import db
from app.orders.emails import deliver_job
from app.services import email_jobs

emails_cli = AppGroup("emails", help="The email outbox: queued order emails and their worker.")


@dataclass
class Tally:
    sent: int = 0
    failed: int = 0


def deliver_due(now: datetime, batch: int, stop: threading.Event, tally: Tally) -> int:
    """Claim up to `batch` jobs due at `now` and send them one by one; the number claimed.
    When asked to stop, the jobs not tried yet are given back at once."""
    jobs = email_jobs.claim_due(db.session, now, batch)
    for index, job in enumerate(jobs):
        if stop.is_set():
            email_jobs.release(db.session, jobs[index:], datetime.now(UTC))
            break
        # Outside a request: links in the email start from PUBLIC_BASE_URL (as `flask users rotate-key`).
        with current_app.test_request_context(base_url=current_app.config["PUBLIC_BASE_URL"]):
            if deliver_job(job):
                tally.sent += 1
            else:
                tally.failed += 1
    return len(jobs)


PURGE_EVERY = timedelta(hours=1)


def purge_old_jobs(now: datetime, keep_days: int) -> int:
    """Delete the sent and given-up jobs older than `keep_days` days; how many."""
    return email_jobs.purge_finished(db.session, now - timedelta(days=keep_days))


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(_signum, _frame):
        stop.set()  # the current email is finished first; nothing else happens in a signal handler

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _lower_priority(nice: int) -> None:
    if nice > 0:
        try:
            os.nice(nice)
        except OSError:  # not allowed here: run at normal priority
            current_app.logger.warning("email worker: could not lower the CPU priority")


@emails_cli.command("work")
@click.option("--poll", default=5.0, show_default=True, type=click.FloatRange(min=0.05),
              help="Seconds to wait when nothing is due.")
@click.option("--batch", default=10, show_default=True, type=click.IntRange(min=1),
              help="Emails claimed at a time.")
@click.option("--once", is_flag=True, help="Send what is due now, print the counts and exit.")
def work(poll: float, batch: int, once: bool) -> None:
    """Send the queued emails (run one or more next to the web servers when MAIL_QUEUE is on)."""
    stop = threading.Event()
    tally = Tally()
    if once:
        now = datetime.now(UTC)  # a job failing during this run is not retried in it
        while deliver_due(now, batch, stop, tally) == batch:
            pass
        click.echo(f"Sent {tally.sent} email{'s' if tally.sent != 1 else ''}; {tally.failed} failed "
                   "(retried later, or given up after too many attempts).")
        return

    _lower_priority(int(current_app.config["EMAIL_WORKER_NICE"]))
    _stop_on_signals(stop)
    current_app.logger.info("email worker started (poll %ss, batch %s, nice %s)", poll, batch, os.nice(0))
    keep_days = int(current_app.config["EMAIL_JOBS_KEEP_DAYS"])
    next_purge = datetime.now(UTC)
    while not stop.is_set():
        try:
            now = datetime.now(UTC)
            if now >= next_purge:
                purged = purge_old_jobs(now, keep_days)
                if purged:
                    current_app.logger.info("email worker: deleted %s jobs done with more than %s days ago",
                                            purged, keep_days)
                next_purge = now + PURGE_EVERY
            claimed = deliver_due(now, batch, stop, tally)
        except Exception as error:  # noqa: BLE001 — the database restarting, say: wait and try again
            db.session.rollback()
            current_app.logger.warning("email worker: %s while purging or claiming emails; retrying in %ss",
                                       type(error).__name__, poll)
            claimed = 0
        if claimed < batch:
            stop.wait(poll)
        db.session.remove()  # nothing cached from one round to the next
    current_app.logger.info("email worker stopped: %s sent, %s failed", tally.sent, tally.failed)
    click.echo(f"Stopped: sent {tally.sent}, failed {tally.failed}.")


@emails_cli.command("status")
def status() -> None:
    """Print the queue's numbers: pending, failed (given up) and the oldest pending email's age."""
    age = email_jobs.oldest_pending_age(db.session, datetime.now(UTC))
    click.echo(f"pending: {email_jobs.pending_count(db.session)}")
    click.echo(f"failed: {email_jobs.failed_count(db.session)}")
    click.echo(f"oldest pending: {int(age.total_seconds())} s" if age is not None else "oldest pending: none")


@emails_cli.command("purge")
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Keep the jobs finished within this many days (default: EMAIL_JOBS_KEEP_DAYS).")
def purge(days: int | None) -> None:
    """Delete the sent and given-up email jobs finished more than --days days ago (pending ones stay)."""
    keep_days = int(current_app.config["EMAIL_JOBS_KEEP_DAYS"]) if days is None else days
    purged = purge_old_jobs(datetime.now(UTC), keep_days)
    click.echo(f"Deleted {purged} email job{'s' if purged != 1 else ''} finished more than {keep_days} days ago.")


def register_email_commands(app: Flask) -> None:
    app.cli.add_command(emails_cli)
