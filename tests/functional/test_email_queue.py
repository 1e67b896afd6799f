"""The email outbox end to end: with MAIL_QUEUE the pay request only queues the confirmation and
`flask emails work` sends it (one PDF per ticket, through a real SMTP server, retried after an
outage, never twice); without it the pay request sends it as before. No address, card or token
reaches the job table or the worker's logs. The worker loop itself runs as a real process."""
from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.extensions import db
from app.messages import message_for
from app.models import EmailJob, Order, Ticket, User
from app.services import email_jobs
from app.templating import format_cents
from app.tickets.documents import ticket_payload
from tests.conftest import SmtpSink, free_port
from tests.shop import GOOD_CARD, buy, customer, login, make_event, offer_of, pay

ROOT = Path(__file__).resolve().parents[2]
QUEUED = pytest.mark.app_config(MAIL_QUEUE=True, PUBLIC_BASE_URL="https://tickets.example.test")
CARD_TEXTS = ("4242424242424242", "4242 4242 4242 4242")


class SwitchableSmtp(SmtpSink):
    """The conftest SMTP sink on a fixed port that a test can stop and start again (an outage),
    or make refuse the recipient (an error whose text quotes the address)."""

    def __init__(self):
        super().__init__()
        self.port = free_port()
        self.refuse_recipients = False
        self._controller = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_recipients:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp_server():
    """Replaces conftest's: the `app` fixture points MAIL_SERVER/MAIL_PORT at it all the same."""
    server = SwitchableSmtp()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def buyer(client, auth):
    user = customer(first_name="Zoe", last_name="Dupont")
    login(auth, client, user)
    return user


def place(client) -> str:
    """A pending order for two Solo and one Duo (three tickets)."""
    event = make_event()
    return buy(client, (offer_of(event, "solo"), 2), (offer_of(event, "duo"), 1))


def job_of(code: str, kind: str = "order_confirmation") -> EmailJob:
    db.session.expire_all()
    return db.session.scalar(sa.select(EmailJob).join(Order).where(Order.code == code, EmailJob.kind == kind))


def jobs_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(EmailJob))


def tickets_of(code: str) -> list[Ticket]:
    return db.session.scalars(sa.select(Ticket).join(Order).where(Order.code == code).order_by(Ticket.id)).all()


def work_once(runner) -> str:
    result = runner.invoke(args=["emails", "work", "--once"])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def time_passes(code: str) -> None:
    """The job's retry time comes (moved back rather than freezing the clock the SMTP thread uses)."""
    db.session.execute(sa.update(EmailJob).where(EmailJob.order_id == sa.select(Order.id).where(
        Order.code == code).scalar_subquery()).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()


def flashed(client, response) -> str:
    assert response.status_code == 303, response.status_code
    return client.get(response.headers["Location"]).get_data(as_text=True)


def confirmations(smtp, code: str) -> list:
    return [m for m in smtp.messages if f"Your order {code} is confirmed" in m["Subject"]]


def cancellations(smtp, code: str) -> list:
    return [m for m in smtp.messages if f"Your order {code} is cancelled" in m["Subject"]]


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


# --------------------------------------------------------------------------- MAIL_QUEUE on
@QUEUED
def test_paying_only_queues_the_email_and_the_tickets_are_there_at_once(client, buyer, smtp_server):
    code = place(client)
    page = flashed(client, pay(client, code))
    assert message_for("payment_accepted_email_queued") in page
    assert "A confirmation email is on its way." not in page
    assert smtp_server.messages == []  # no email during the request
    job = job_of(code)
    assert (job.kind, job.status, job.attempts, job.sent_at) == ("order_confirmation", "pending", 0, None)
    assert jobs_count() == 1
    # The tickets do not wait for the email: the order page leads to them and the PDFs download.
    assert 'href="/tickets/"' in page and "See my tickets" in page
    for ticket in tickets_of(code):
        assert f"/tickets/{ticket.id}.pdf" in client.get("/tickets/").get_data(as_text=True)
        response = client.get(f"/tickets/{ticket.id}.pdf")
        assert response.status_code == 200 and response.data.startswith(b"%PDF")


@QUEUED
def test_the_worker_sends_the_queued_email_with_one_pdf_per_ticket(client, buyer, smtp_server, runner, tmp_path):
    from tests.functional.test_tickets import decode_pdf

    code = place(client)
    pay(client, code)
    assert "Sent 1 email; 0 failed" in work_once(runner)

    [message] = confirmations(smtp_server, code)
    assert message["To"] == buyer.email
    tickets = tickets_of(code)
    pdfs = [part for part in message.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert [p.get_filename() for p in pdfs] == [f"guichet-ticket-{t.number}.pdf" for t in tickets]
    assert len(pdfs) == 3
    assert decode_pdf(pdfs[0].get_content(), tmp_path) == (ticket_payload(tickets[0]),) * 2
    # Built outside a request, the link starts from PUBLIC_BASE_URL.
    assert f"https://tickets.example.test/orders/{code}" in message.get_body(("plain",)).get_content()
    job = job_of(code)
    assert (job.status, job.attempts, job.last_error) == ("sent", 1, None) and job.sent_at is not None


@QUEUED
def test_a_job_is_never_sent_twice(client, buyer, smtp_server, runner):
    codes = [place(client) for _ in range(3)]
    for code in codes:
        pay(client, code)
    pay(client, codes[0])  # a double submit queues nothing more
    assert jobs_count() == 3
    assert "Sent 3 emails; 0 failed" in work_once(runner)
    assert "Sent 0 emails; 0 failed" in work_once(runner)
    for code in codes:
        assert len(confirmations(smtp_server, code)) == 1 and job_of(code).status == "sent"
    assert len(smtp_server.messages) == 3


@QUEUED
def test_the_worker_goes_through_the_queue_in_batches(client, buyer, outbox, runner):
    codes = [place(client) for _ in range(3)]
    for code in codes:
        pay(client, code)
    result = runner.invoke(args=["emails", "work", "--once", "--batch", "2"])
    assert "Sent 3 emails; 0 failed" in result.output, result.output
    assert sorted(m.subject for m in outbox) == sorted(f"Guichet — Your order {c} is confirmed" for c in codes)


@QUEUED
def test_each_confirmation_reads_its_order_in_a_fixed_number_of_statements(app, client, buyer, outbox):
    """The order, its customer, lines (with offers and events), payments and tickets in five
    statements with the job's update, whatever the order holds; the claimed jobs are not read
    again after each one's commit (10 statements per email before, bench/emails.py)."""
    from app.orders import cli

    codes = [place(client) for _ in range(3)]  # two lines, two offers, three tickets each
    for code in codes:
        pay(client, code)
    db.session.expunge_all()  # a worker starts with nothing loaded
    statements = []
    listener = lambda *args: statements.append(args[2])
    sa.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert cli.deliver_due(datetime.now(UTC), 10, threading.Event(), cli.Tally()) == 3
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)
    assert len(outbox) == 3
    claim = 1 + 3 + 1  # the due ids, one conditional update per job, the claimed jobs
    assert len(statements) == claim + 3 * 5, "\n".join(statements)


@QUEUED
def test_an_smtp_outage_keeps_the_job_for_later(client, buyer, smtp_server, runner):
    code = place(client)
    pay(client, code)
    smtp_server.stop()
    before = datetime.now(UTC)
    assert "Sent 0 emails; 1 failed" in work_once(runner)
    job = job_of(code)
    assert (job.status, job.attempts, job.last_error) == ("pending", 1, "ConnectionRefusedError")
    assert before + timedelta(minutes=1) <= job.next_attempt_at <= datetime.now(UTC) + timedelta(minutes=1)
    assert "Sent 0 emails; 0 failed" in work_once(runner)  # not due yet: no second try at once
    assert job_of(code).attempts == 1

    smtp_server.start()
    time_passes(code)
    assert "Sent 1 email; 0 failed" in work_once(runner)
    assert len(confirmations(smtp_server, code)) == 1
    job = job_of(code)
    assert (job.status, job.attempts, job.last_error) == ("sent", 2, None)


@QUEUED
def test_a_cancelled_order_gets_no_confirmation(client, buyer, outbox, runner):
    code = place(client)
    pay(client, code)
    assert client.post(f"/orders/{code}/cancel", data={"confirm": "y"}).status_code == 303
    assert db.session.scalar(sa.select(Order.status).where(Order.code == code)) == "cancelled"
    assert "Sent 1 email; 1 failed" in work_once(runner)  # the cancellation notice, not the confirmation
    assert [m.subject for m in outbox] == [f"Guichet — Your order {code} is cancelled"]
    job = job_of(code, "order_confirmation")
    assert (job.status, job.last_error) == ("failed", "NothingToSend")  # given up at once


@QUEUED
def test_status_prints_the_queue_numbers(client, buyer, outbox, runner):
    assert runner.invoke(args=["emails", "status"]).output.splitlines() == [
        "pending: 0", "failed: 0", "oldest pending: none"]
    code = place(client)
    pay(client, code)
    db.session.execute(sa.update(EmailJob).values(created_at=datetime.now(UTC) - timedelta(minutes=3)))
    db.session.commit()
    lines = runner.invoke(args=["emails", "status"]).output.splitlines()
    assert lines[:2] == ["pending: 1", "failed: 0"]
    assert re.fullmatch(r"oldest pending: (\d+) s", lines[2]) and 180 <= int(lines[2].split()[2]) < 240
    work_once(runner)
    assert runner.invoke(args=["emails", "status"]).output.splitlines()[0] == "pending: 0"


@QUEUED
def test_a_worker_stopping_mid_batch_gives_the_untried_jobs_back(app, client, buyer, outbox, monkeypatch):
    from app.orders import cli

    codes = [place(client) for _ in range(3)]
    for code in codes:
        pay(client, code)
    stop, tally = threading.Event(), cli.Tally()

    def deliver_then_sigterm(job):
        stop.set()  # SIGTERM arrives while the first email is being sent
        return cli_deliver(job)

    cli_deliver = cli.deliver_job
    monkeypatch.setattr(cli, "deliver_job", deliver_then_sigterm)
    assert cli.deliver_due(datetime.now(UTC), 10, stop, tally) == 3
    assert (tally.sent, tally.failed, len(outbox)) == (1, 0, 1)
    jobs = sorted((job_of(code) for code in codes), key=lambda job: job.id)
    assert [(job.status, job.attempts) for job in jobs] == [("sent", 1), ("pending", 0), ("pending", 0)]
    assert all(job.next_attempt_at <= datetime.now(UTC) for job in jobs[1:])  # due again at once


# --------------------------------------------------------------------------- MAIL_QUEUE off
def test_without_the_queue_the_pay_request_sends_the_email(app, client, buyer, smtp_server, runner):
    assert app.config["MAIL_QUEUE"] is False  # the testing default
    code = place(client)
    page = flashed(client, pay(client, code))
    assert message_for("payment_accepted_email_sent") in page
    [message] = confirmations(smtp_server, code)  # sent during the request
    assert len([p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]) == 3
    job = job_of(code)
    assert (job.status, job.attempts) == ("sent", 1) and job.sent_at is not None
    assert "Sent 0 emails; 0 failed" in work_once(runner)  # nothing left for a worker
    assert len(smtp_server.messages) == 1


def test_without_the_queue_an_smtp_outage_leaves_the_job_for_a_worker(client, buyer, smtp_server, runner):
    smtp_server.stop()
    code = place(client)
    page = flashed(client, pay(client, code))
    assert message_for("payment_accepted") in page and "A confirmation email is on its way." not in page
    assert db.session.scalar(sa.select(Order.status).where(Order.code == code)) == "paid"
    job = job_of(code)
    assert (job.status, job.attempts, job.last_error) == ("pending", 1, "ConnectionRefusedError")
    smtp_server.start()
    time_passes(code)
    assert "Sent 1 email; 0 failed" in work_once(runner)
    assert len(confirmations(smtp_server, code)) == 1


# --------------------------------------------------------------------------- cancellation notices
def cancel(client, code: str):
    return client.post(f"/orders/{code}/cancel", data={"confirm": "y"})


def amount_of(code: str) -> str:
    return format_cents(db.session.scalar(sa.select(Order.total_cents).where(Order.code == code)))


def paid_order(client) -> str:
    code = place(client)
    pay(client, code)
    return code


def test_cancelling_sends_the_notice_from_the_request_without_the_queue(client, buyer, smtp_server, runner):
    code = paid_order(client)
    page = flashed(client, cancel(client, code))
    assert message_for("order_cancelled_email_sent", order=code, amount=amount_of(code)) in page
    [message] = cancellations(smtp_server, code)  # sent during the request
    assert message["To"] == buyer.email
    body = text_of(message)
    assert f"Your order {code} is cancelled." in body and f"{amount_of(code)} is refunded" in body
    assert "If you did not cancel this order" in body and "organisers" not in body
    job = job_of(code, "order_cancelled")
    assert (job.status, job.attempts) == ("sent", 1)
    assert "Sent 0 emails; 0 failed" in work_once(runner)


@QUEUED
def test_with_the_queue_cancelling_only_queues_the_notice(client, buyer, smtp_server, runner):
    code = paid_order(client)
    work_once(runner)  # the confirmation
    page = flashed(client, cancel(client, code))
    assert "A confirmation email will follow in a few minutes." in page
    assert cancellations(smtp_server, code) == []
    assert job_of(code, "order_cancelled").status == "pending"
    assert "Sent 1 email; 0 failed" in work_once(runner)
    [message] = cancellations(smtp_server, code)
    assert f"https://tickets.example.test/orders/{code}" in text_of(message)


def test_an_smtp_outage_during_a_cancellation_keeps_the_notice_for_later(client, buyer, smtp_server, runner):
    code = paid_order(client)
    smtp_server.stop()
    page = flashed(client, cancel(client, code))  # the cancellation itself does not depend on the mail server
    assert "A confirmation email will follow in a few minutes." in page
    assert db.session.scalar(sa.select(Order.status).where(Order.code == code)) == "cancelled"
    job = job_of(code, "order_cancelled")
    assert (job.status, job.attempts, job.last_error) == ("pending", 1, "ConnectionRefusedError")
    smtp_server.start()
    time_passes(code)
    assert "Sent 1 email; 0 failed" in work_once(runner)
    assert len(cancellations(smtp_server, code)) == 1


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)
def test_an_administrator_cancelling_tells_the_customer_it_was_the_organisers(app, auth, client, buyer,
                                                                               smtp_server):
    code = paid_order(client)
    admin = customer(role="admin", email="ada@example.test")
    office = app.test_client()
    login(auth, office, admin)
    confirm = " ".join(office.get(f"/admin/orders/{code}/cancel").get_data(as_text=True).split())
    assert f"We email {buyer.first_name} to say the organisers cancelled the order." in confirm
    page = office.post(f"/admin/orders/{code}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "The customer was told by email." in page
    [message] = cancellations(smtp_server, code)
    assert message["To"] == buyer.email  # the customer, not the administrator
    body = text_of(message)
    assert f"The organisers have cancelled your order {code}." in body and f"{amount_of(code)} is refunded" in body
    assert "If you did not cancel this order" not in body
    assert job_of(code, "order_cancelled_by_organiser").status == "sent"


@pytest.mark.app_config(MAIL_QUEUE=True, REQUIRE_2FA_FOR_STAFF=False)  # markers do not add up: one for both
def test_with_the_queue_an_administrators_cancellation_is_queued(app, auth, client, buyer, smtp_server, runner):
    code = paid_order(client)
    work_once(runner)
    admin = customer(role="admin", email="ada@example.test")
    office = app.test_client()
    login(auth, office, admin)
    page = office.post(f"/admin/orders/{code}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "The email telling the customer is queued." in page
    assert cancellations(smtp_server, code) == []
    assert "Sent 1 email; 0 failed" in work_once(runner)
    assert "The organisers have cancelled" in text_of(cancellations(smtp_server, code)[0])


# --------------------------------------------------------------------------- purge
def finished_long_ago(code: str, days: int, status: str = "sent") -> None:
    when = datetime.now(UTC) - timedelta(days=days)
    db.session.execute(sa.update(EmailJob).where(EmailJob.order_id == sa.select(Order.id).where(
        Order.code == code).scalar_subquery()).values(status=status, created_at=when, sent_at=when))
    db.session.commit()


@QUEUED
def test_purge_deletes_the_jobs_done_with_and_keeps_the_rest(client, buyer, outbox, runner):
    old, recent, pending = paid_order(client), paid_order(client), paid_order(client)
    finished_long_ago(old, 31)
    finished_long_ago(recent, 29)
    result = runner.invoke(args=["emails", "purge"])
    assert result.exit_code == 0 and result.output == "Deleted 1 email job finished more than 30 days ago.\n"
    assert job_of(old) is None and job_of(recent).status == "sent" and job_of(pending).status == "pending"
    result = runner.invoke(args=["emails", "purge", "--days", "7"])
    assert result.output == "Deleted 1 email job finished more than 7 days ago.\n"
    assert job_of(recent) is None and job_of(pending).status == "pending"
    assert runner.invoke(args=["emails", "purge", "--days", "-1"]).exit_code == 2  # refused, nothing deleted
    assert jobs_count() == 1


@pytest.mark.app_config(MAIL_QUEUE=True, EMAIL_JOBS_KEEP_DAYS=90)
def test_purge_keeps_what_the_setting_says(client, buyer, outbox, runner):
    code = paid_order(client)
    finished_long_ago(code, 60, status="failed")
    assert runner.invoke(args=["emails", "purge"]).output == "Deleted 0 email jobs finished more than 90 days ago.\n"
    finished_long_ago(code, 91, status="failed")
    assert runner.invoke(args=["emails", "purge"]).output == "Deleted 1 email job finished more than 90 days ago.\n"


# --------------------------------------------------------------------------- secrecy
def dump_table(table) -> str:
    with db.engine.connect() as conn:
        return "\n".join(str(value) for row in conn.execute(sa.select(table)) for value in row)


@QUEUED
def test_no_address_card_or_token_in_the_job_table_or_the_worker_logs(app, client, buyer, smtp_server, runner,
                                                                      caplog):
    code = place(client)
    caplog.set_level(logging.DEBUG)
    app.logger.setLevel(logging.DEBUG)
    pay(client, code, GOOD_CARD)
    outputs = []
    smtp_server.refuse_recipients = True  # the SMTP error quotes the address
    outputs.append(work_once(runner))
    smtp_server.stop()
    time_passes(code)
    outputs.append(work_once(runner))
    smtp_server.refuse_recipients = False
    smtp_server.start()
    time_passes(code)
    outputs.append(work_once(runner))
    assert len(confirmations(smtp_server, code)) == 1
    assert [o.split(";")[0] for o in outputs] == ["Sent 0 emails", "Sent 0 emails", "Sent 1 email"]

    order = db.session.scalar(sa.select(Order).where(Order.code == code))
    secrets = [buyer.email, order.idempotency_key, *CARD_TEXTS,
               *(ticket_payload(ticket) for ticket in tickets_of(code))]
    stored = dump_table(EmailJob.__table__)
    assert "SMTPRecipientsRefused" in caplog.text and "ConnectionRefusedError" in caplog.text
    assert "failed in:" in caplog.text  # the debug traceback was logged too
    ours = [record for record in caplog.records if not record.name.startswith("mail.log")]  # not the SMTP sink's
    logged = "\n".join(record.getMessage() + str(record.args) + str(record.__dict__) for record in ours)
    worker_records = [r for r in caplog.records if "email job" in r.getMessage()]
    assert len(worker_records) >= 4
    for secret in secrets:
        assert secret not in stored
        assert secret not in logged, secret
        assert all(secret not in output for output in outputs)
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", "\n".join(r.getMessage() for r in worker_records))


# --------------------------------------------------------------------------- claims under concurrency
def paid_orders_with_due_jobs(client, count: int) -> list[str]:
    """`count` paid orders whose confirmation jobs are all pending and due (as if never sent)."""
    codes = [place(client) for _ in range(count)]
    for code in codes:
        pay(client, code)
    db.session.execute(sa.update(EmailJob).values(status="pending", attempts=0,
                                                  next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()
    return codes


def test_two_workers_claiming_at_once_never_share_a_job(app, client, buyer, outbox):
    codes = paid_orders_with_due_jobs(client, 6)
    now = datetime.now(UTC)
    engine, barrier, claimed, errors = db.engine, threading.Barrier(2), [], []

    def claim():
        try:
            with Session(engine) as session:
                barrier.wait(timeout=10)
                claimed.append([job.id for job in email_jobs.claim_due(session, now, 6)])
        except Exception as error:  # noqa: BLE001 — reported below
            errors.append(error)

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    first, second = claimed
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(job_of(code).id for code in codes)


def test_on_postgresql_a_locked_job_is_skipped_not_waited_for(app, client, buyer, outbox):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's; SQLite has a single writer")
    codes = paid_orders_with_due_jobs(client, 2)
    locked, free = job_of(codes[0]).id, job_of(codes[1]).id
    with Session(db.engine) as holder, Session(db.engine) as worker:
        holder.execute(sa.select(EmailJob.id).where(EmailJob.id == locked).with_for_update())  # another worker's
        worker.execute(sa.text("SET lock_timeout = '3s'"))  # waiting would fail the test, not hang it
        assert [job.id for job in email_jobs.claim_due(worker, datetime.now(UTC), 10)] == [free]
        holder.rollback()
    assert job_of(codes[0]).attempts == 0 and job_of(codes[1]).attempts == 1


# --------------------------------------------------------------------------- the worker process
def worker_env(app, tmp_path: Path, smtp_port: int) -> dict:
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1", "FLASK_APP": "run.py", "GUICHET_ENV": "development",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "INSTANCE_PATH": str(tmp_path / "instance"),
        "REDIS_URL": "", "SENTRY_DSN": "", "MAIL_OUTBOX_DIR": "",  # nothing from a stray .env
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp_port), "MAIL_QUEUE": "1", "EMAIL_WORKER_NICE": "7",
        "PUBLIC_BASE_URL": "https://tickets.example.test", "LOG_LEVEL": "INFO",
    }


@pytest.mark.slow
@QUEUED
def test_the_worker_loop_runs_at_lower_priority_sends_and_stops_on_sigterm(app, client, buyer, smtp_server,
                                                                         tmp_path):
    old = paid_order(client)
    finished_long_ago(old, 31)  # the worker deletes it on its first round
    code = place(client)
    pay(client, code)
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen([str(Path(sys.executable).parent / "flask"), "emails", "work", "--poll", "0.2"],
                                  cwd=ROOT, env=worker_env(app, tmp_path, smtp_server.port), stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not confirmations(smtp_server, code) and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        assert len(confirmations(smtp_server, code)) == 1, log.read_text()[-3000:]
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 7
        time.sleep(0.5)  # a few empty polls: nothing is sent twice
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0, log.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(5)
    output = log.read_text()
    assert "Stopped: sent 1, failed 0." in output and "Traceback" not in output, output[-3000:]
    assert "deleted 1 jobs done with more than 30 days ago" in output
    assert len(smtp_server.messages) == 1
    assert job_of(code).status == "sent" and job_of(old) is None
    assert db.session.scalar(sa.select(User.email).where(User.id == buyer.id)) not in output
