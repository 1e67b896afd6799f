"""The email outbox service on its own in-memory SQLite session (no app): enqueue, claim, backoff,
giving up, sent, release and the monitoring numbers."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from app.extensions import db
from app.models import EmailJob, Order, User
from app.services import email_jobs
from app.services.email_jobs import LEASE, ORDER_CONFIRMATION, enqueue

T0 = datetime(2030, 7, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


@pytest.fixture
def session():
    engine = sa.create_engine("sqlite://", poolclass=StaticPool)  # one in-memory database per test

    @sa.event.listens_for(engine, "connect")
    def _foreign_keys(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    db.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(User(id=1, username="ada", username_key="ada", email="ada@example.test", first_name="Ada",
                         last_name="Lovelace", password_hash="x", user_key=b"k" * 32))
        session.commit()
        yield session
    engine.dispose()


def make_order(session: Session, n: int) -> int:
    order = Order(code=f"GCH-T{n:05d}", user_id=1, status="paid", total_cents=5000, expires_at=T0, paid_at=T0,
                  idempotency_key=f"key-{n}")
    session.add(order)
    session.commit()
    return order.id


def queued(session: Session, *created_at: datetime) -> list[int]:
    """One job per time given, each for its own order, committed; their ids."""
    ids = []
    for n, at in enumerate(created_at):
        ids.append(enqueue(session, ORDER_CONFIRMATION, make_order(session, n), at).id)
        session.commit()
    return ids


def fetch(session: Session, job_id: int) -> EmailJob:
    session.expire_all()
    return session.get(EmailJob, job_id)


# --------------------------------------------------------------------------- enqueue
def test_enqueue_adds_a_pending_job_due_at_once_without_committing(session):
    order_id = make_order(session, 1)
    job = enqueue(session, ORDER_CONFIRMATION, order_id, T0)
    assert (job.kind, job.order_id, job.status, job.attempts) == (ORDER_CONFIRMATION, order_id, "pending", 0)
    assert job.created_at == job.next_attempt_at == T0 and job.sent_at is None and job.last_error is None
    session.rollback()  # the caller's transaction decides
    assert session.scalar(sa.select(sa.func.count()).select_from(EmailJob)) == 0


def test_enqueue_is_idempotent(session):
    order_id = make_order(session, 1)
    first = enqueue(session, ORDER_CONFIRMATION, order_id, T0)
    again = enqueue(session, ORDER_CONFIRMATION, order_id, T0 + MINUTE)  # same transaction
    session.commit()
    later = enqueue(session, ORDER_CONFIRMATION, order_id, T0 + 2 * MINUTE)  # a later one
    session.commit()
    assert first.id == again.id == later.id
    assert session.scalar(sa.select(sa.func.count()).select_from(EmailJob)) == 1
    assert enqueue(session, "another_kind", order_id, T0).id != first.id  # one job per kind and order


def test_the_database_refuses_a_second_job_for_the_same_email(session):
    order_id = make_order(session, 1)
    enqueue(session, ORDER_CONFIRMATION, order_id, T0)
    session.commit()
    session.add(EmailJob(kind=ORDER_CONFIRMATION, order_id=order_id, next_attempt_at=T0))
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()


def test_jobs_go_with_their_order(session):
    [job_id] = queued(session, T0)
    session.execute(sa.delete(Order))
    session.commit()
    assert fetch(session, job_id) is None


# --------------------------------------------------------------------------- claim
def test_claim_takes_due_jobs_oldest_first_up_to_the_limit(session):
    late, early, future, middle = queued(session, T0 + 2 * MINUTE, T0, T0 + 10 * MINUTE, T0 + MINUTE)
    now = T0 + 5 * MINUTE
    assert [job.id for job in email_jobs.claim_due(session, now, 2)] == [early, middle]
    assert [job.id for job in email_jobs.claim_due(session, now, 10)] == [late]  # claimed ones are not due
    assert email_jobs.claim_due(session, now, 10) == []
    assert fetch(session, future).attempts == 0  # not due yet
    assert [job.id for job in email_jobs.claim_due(session, T0 + 10 * MINUTE, 10)] == [future]


def test_a_claim_is_committed_counts_an_attempt_and_lasts_a_lease(session):
    [job_id] = queued(session, T0)
    [job] = email_jobs.claim_due(session, T0, 1)
    session.rollback()  # already committed: a second worker's session sees the claim
    job = fetch(session, job_id)
    assert job.attempts == 1 and job.status == "pending" and job.next_attempt_at == T0 + LEASE
    assert email_jobs.claim_due(session, T0 + LEASE - MINUTE, 1) == []
    # A worker that died with the job: it comes back after the lease, attempt counted again.
    [again] = email_jobs.claim_due(session, T0 + LEASE, 1)
    assert again.id == job_id and again.attempts == 2


def test_sent_and_failed_jobs_are_never_claimed(session):
    sent, given_up = queued(session, T0, T0)
    email_jobs.mark_sent(session, fetch(session, sent), T0)
    email_jobs.mark_failed(session, fetch(session, given_up), T0, "SMTPException", retry=False)
    assert email_jobs.claim_due(session, T0 + timedelta(days=1), 10) == []


def test_claim_job_takes_one_given_job_once(session):
    first, second = queued(session, T0, T0)
    job = email_jobs.claim_job(session, second, T0)
    assert job.id == second and job.attempts == 1
    assert email_jobs.claim_job(session, second, T0) is None  # taken
    assert email_jobs.claim_job(session, first, T0 - MINUTE) is None  # not due yet
    assert email_jobs.claim_job(session, 999, T0) is None


def test_release_gives_untried_jobs_back_at_once(session):
    ids = queued(session, T0, T0)
    jobs = email_jobs.claim_due(session, T0, 10)
    email_jobs.release(session, jobs, T0 + MINUTE)
    assert [(fetch(session, i).attempts, fetch(session, i).next_attempt_at) for i in ids] == [(0, T0 + MINUTE)] * 2
    assert [job.id for job in email_jobs.claim_due(session, T0 + MINUTE, 10)] == ids


# --------------------------------------------------------------------------- failures
def test_retry_delay_doubles_from_one_minute_up_to_an_hour():
    assert [email_jobs.retry_delay(n) for n in range(1, 10)] == [
        MINUTE, 2 * MINUTE, 4 * MINUTE, 8 * MINUTE, 16 * MINUTE, 32 * MINUTE,
        timedelta(hours=1), timedelta(hours=1), timedelta(hours=1)]


def test_each_failure_waits_longer_then_the_job_is_given_up(session):
    [job_id] = queued(session, T0)
    now, waits = T0, []
    for attempt in range(1, 5):
        [job] = email_jobs.claim_due(session, now, 1)
        assert job.attempts == attempt
        email_jobs.mark_failed(session, job, now, "ConnectionRefusedError", max_attempts=4)
        job = fetch(session, job_id)
        assert job.last_error == "ConnectionRefusedError" and job.sent_at is None
        if attempt < 4:
            assert job.status == "pending"
            waits.append(job.next_attempt_at - now)
            assert email_jobs.claim_due(session, job.next_attempt_at - timedelta(seconds=1), 1) == []
            now = job.next_attempt_at
    assert waits == [MINUTE, 2 * MINUTE, 4 * MINUTE]
    assert job.status == "failed" and job.attempts == 4  # given up
    assert email_jobs.claim_due(session, now + timedelta(days=1), 1) == []
    assert email_jobs.failed_count(session) == 1 and email_jobs.pending_count(session) == 0


def test_a_failure_without_retry_gives_up_at_once(session):
    [job_id] = queued(session, T0)
    [job] = email_jobs.claim_due(session, T0, 1)
    email_jobs.mark_failed(session, job, T0, "NothingToSend", retry=False)
    assert (fetch(session, job_id).status, fetch(session, job_id).attempts) == ("failed", 1)


def test_the_default_gives_up_after_ten_attempts(session):
    [job_id] = queued(session, T0)
    now = T0
    for _ in range(email_jobs.MAX_ATTEMPTS):
        [job] = email_jobs.claim_due(session, now, 1)
        email_jobs.mark_failed(session, job, now, "TimeoutError")
        now = fetch(session, job_id).next_attempt_at
    assert fetch(session, job_id).status == "failed" and email_jobs.MAX_ATTEMPTS == 10


def test_the_error_kept_is_short(session):
    [job_id] = queued(session, T0)
    [job] = email_jobs.claim_due(session, T0, 1)
    email_jobs.mark_failed(session, job, T0, "E" * 200)
    assert fetch(session, job_id).last_error == "E" * 80


# --------------------------------------------------------------------------- sent, monitoring
def test_mark_sent(session):
    [job_id] = queued(session, T0)
    [job] = email_jobs.claim_due(session, T0, 1)
    email_jobs.mark_failed(session, job, T0, "SMTPServerDisconnected")
    [job] = email_jobs.claim_due(session, T0 + MINUTE, 1)
    email_jobs.mark_sent(session, job, T0 + 2 * MINUTE)
    assert (job.status, job.sent_at, job.last_error, job.attempts) == ("sent", T0 + 2 * MINUTE, None, 2)
    assert not session.dirty
    session.expire_all()  # and so it is in the database
    job = fetch(session, job_id)
    assert (job.status, job.sent_at, job.last_error, job.attempts) == ("sent", T0 + 2 * MINUTE, None, 2)


def test_pending_count_and_oldest_pending_age(session):
    assert email_jobs.pending_count(session) == 0
    assert email_jobs.oldest_pending_age(session, T0) is None
    first, _, _ = queued(session, T0 - 3 * MINUTE, T0 - MINUTE, T0)
    now = T0 + MINUTE
    assert email_jobs.pending_count(session) == 3
    assert email_jobs.oldest_pending_age(session, now) == 4 * MINUTE
    email_jobs.mark_sent(session, fetch(session, first), now)
    assert email_jobs.pending_count(session) == 2
    assert email_jobs.oldest_pending_age(session, now) == 2 * MINUTE  # a sent one no longer counts


# --------------------------------------------------------------------------- purge
def test_purge_deletes_only_jobs_done_with_before_the_cutoff(session):
    cutoff = T0 + 30 * DAY
    old_sent, old_failed, recent_sent, recent_failed, old_pending = queued(session, T0, T0, T0, T0, T0)
    for job_id in (old_sent, recent_sent):
        email_jobs.mark_sent(session, fetch(session, job_id), cutoff - DAY if job_id == old_sent else cutoff + DAY)
    email_jobs.mark_failed(session, fetch(session, old_failed), T0, "SMTPException", retry=False)
    recent = fetch(session, recent_failed)
    recent.created_at = cutoff + DAY  # given up, but created after the cutoff
    email_jobs.mark_failed(session, recent, cutoff + DAY, "SMTPException", retry=False)
    fetch(session, old_pending).next_attempt_at = T0 - 60 * DAY  # waiting long: still kept
    session.commit()

    assert email_jobs.purge_finished(session, cutoff) == 2
    left = set(session.scalars(sa.select(EmailJob.id)))
    assert left == {recent_sent, recent_failed, old_pending}
    assert email_jobs.purge_finished(session, cutoff) == 0


def test_purge_commits(session):
    [job_id] = queued(session, T0)
    email_jobs.mark_sent(session, fetch(session, job_id), T0)
    email_jobs.purge_finished(session, T0 + DAY)
    session.rollback()  # nothing left to roll back: the delete is committed
    assert session.scalar(sa.select(sa.func.count()).select_from(EmailJob)) == 0
