"""The email outbox (a transactional outbox): emails are queued as rows in the transaction of
the change they announce, and sent afterwards, by the request itself or by `flask emails work`.

A paid order therefore always has its confirmation job, even if the process dies right after
the commit; and the slow parts (PDF rendering, SMTP) leave the payment request when a worker
runs. Delivery is at least once: a job is claimed for a lease (its `next_attempt_at` moves past
the lease and `attempts` goes up, committed at once), so a crashed worker's job comes back
after the lease, and a job that keeps crashing its worker still runs out of attempts.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.db_late_begin import only_write
from app.models import EmailJob, EmailJobStatus
from app.services.transactions import commit_keeping_loaded

ORDER_CONFIRMATION = "order_confirmation"
ORDER_CANCELLED = "order_cancelled"  # the customer cancelled it
ORDER_CANCELLED_BY_ORGANISER = "order_cancelled_by_organiser"  # an administrator did
PENDING, SENT, FAILED = (EmailJobStatus.PENDING.value, EmailJobStatus.SENT.value,
                         EmailJobStatus.FAILED.value)

FIRST_RETRY = timedelta(minutes=1)  # then 2, 4, 8 … minutes
LONGEST_RETRY = timedelta(hours=1)
MAX_ATTEMPTS = 10  # about 4 h of retries with the schedule above
LEASE = timedelta(minutes=10)  # how long a claimed job is left to its worker


_INSERT_JOB = sa.insert(EmailJob.__table__)  # built once: every payment runs it


def enqueue(session: Session, kind: str, order_id: int, now: datetime) -> EmailJob:
    """Add the job to the caller's transaction (no commit). Queuing the same email twice
    returns the job already there."""
    query = sa.select(EmailJob).where(EmailJob.kind == kind, EmailJob.order_id == order_id)
    job = session.scalar(query)
    if job is None:
        enqueue_new(session, kind, order_id, now)
        job = session.scalar(query)
    return job


def enqueue_new(session: Session, kind: str, order_id: int, now: datetime) -> None:
    """Like `enqueue`, for an email that cannot have been queued yet (its change happens in this
    very transaction): no lookup first, and one INSERT. A second one would break the unique constraint."""
    session.execute(_INSERT_JOB, {"kind": kind, "order_id": order_id, "created_at": now, "next_attempt_at": now,
                                  "attempts": 0, "status": PENDING})


def claim_due(session: Session, now: datetime, limit: int, *, lease: timedelta = LEASE) -> list[EmailJob]:
    """Take up to `limit` pending jobs due at `now`, oldest first, and commit the claim.

    PostgreSQL skips rows another worker has locked (FOR UPDATE SKIP LOCKED); on every
    database the claim is a conditional update, so two workers never get the same job.
    """
    query = (sa.select(EmailJob.id)
             .where(EmailJob.status == PENDING, EmailJob.next_attempt_at <= now)
             .order_by(EmailJob.next_attempt_at, EmailJob.id)
             .limit(limit))
    return _claim(session, query, now, lease)


def claim_job(session: Session, job_id: int, now: datetime, *, lease: timedelta = LEASE) -> EmailJob | None:
    """Take one given job if it is still pending and due (None when a worker has it, or it is done)."""
    query = sa.select(EmailJob.id).where(EmailJob.id == job_id, EmailJob.status == PENDING,
                                         EmailJob.next_attempt_at <= now)
    claimed = _claim(session, query, now, lease)
    return claimed[0] if claimed else None


def _claim(session: Session, query: sa.Select, now: datetime, lease: timedelta) -> list[EmailJob]:
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    table = EmailJob.__table__
    claimed = []
    for job_id in session.scalars(query).all():
        taken = session.execute(
            sa.update(table)
            .where(table.c.id == job_id, table.c.status == PENDING, table.c.next_attempt_at <= now)
            .values(attempts=table.c.attempts + 1, next_attempt_at=now + lease)
        ).rowcount
        if taken == 1:
            claimed.append(job_id)
    session.commit()
    if not claimed:
        return []
    jobs = session.scalars(sa.select(EmailJob).where(EmailJob.id.in_(claimed))
                           .execution_options(populate_existing=True)).all()
    return sorted(jobs, key=lambda job: claimed.index(job.id))


def release(session: Session, jobs: Iterable[EmailJob], now: datetime) -> None:
    """Give claimed jobs back untried (a worker stopping mid-batch): due at once, attempt not counted."""
    for job in jobs:
        if job.is_pending:
            job.attempts = max(job.attempts - 1, 0)
            job.next_attempt_at = now
    session.commit()


def retry_delay(attempts: int) -> timedelta:
    """1 minute after the first failed attempt, doubling each time, at most an hour."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


_JOBS = EmailJob.__table__
_MARK_SENT = (sa.update(_JOBS).where(_JOBS.c.id == sa.bindparam("job_id"))
              .values(status=SENT, sent_at=sa.bindparam("sent_at"), last_error=None))


def mark_sent(session: Session, job: EmailJob, now: datetime) -> None:
    """One UPDATE, committed without expiring what the session holds: the worker's other claimed
    jobs are leased to it, and re-reading each one after its predecessor's commit was a statement
    per email. The job is told its new values as if read back, so the commit has nothing to
    flush (py-spy put the flush at about 8 % of the worker's loop; bench/emails.py measured 2 %
    less CPU per email without it)."""
    with only_write(session):  # alone in autocommit: no BEGIN, no COMMIT
        session.execute(_MARK_SENT, {"job_id": job.id, "sent_at": now})
    for name, value in (("status", SENT), ("sent_at", now), ("last_error", None)):
        set_committed_value(job, name, value)
    commit_keeping_loaded(session)


def mark_failed(session: Session, job: EmailJob, now: datetime, error: str, *,
                max_attempts: int = MAX_ATTEMPTS, retry: bool = True) -> None:
    """Schedule the next attempt after `retry_delay`, or give up (status failed) after
    `max_attempts` or when `retry` is False. `error` is an exception class name, never its
    message (which may hold an address)."""
    job.last_error = error[:80]
    if retry and job.attempts < max_attempts:
        job.next_attempt_at = now + retry_delay(job.attempts)
    else:
        job.status = FAILED
    session.commit()


def pending_count(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(EmailJob).where(EmailJob.status == PENDING))


def failed_count(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(EmailJob).where(EmailJob.status == FAILED))


def oldest_pending_age(session: Session, now: datetime) -> timedelta | None:
    """How long the oldest unsent email has waited (None when nothing is pending): the number
    to alert on when the worker is down or the SMTP server refuses."""
    oldest = session.scalar(sa.select(EmailJob.created_at).where(EmailJob.status == PENDING)
                            .order_by(EmailJob.created_at).limit(1))
    return None if oldest is None else now - oldest


def purge_finished(session: Session, before: datetime) -> int:
    """Delete the jobs that are done with — sent before `before`, or given up and created
    before it — and commit; the number deleted. Pending jobs are never touched. Without this the
    table grows by a row per paid order forever, and so does the worker's index."""
    table = EmailJob.__table__
    deleted = session.execute(
        sa.delete(table).where(sa.or_(
            sa.and_(table.c.status == SENT, table.c.sent_at < before),
            sa.and_(table.c.status == FAILED, table.c.created_at < before)))
    ).rowcount
    session.commit()
    return deleted
