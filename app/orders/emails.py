"""Emails about orders, all through the email outbox (app/services/email_jobs.py): checkout
queues the confirmation in the payment's transaction, cancelling queues the cancellation notice
in its own, and `deliver_job` sends them — from the request itself right after its commit, or
from `flask emails work` when MAIL_QUEUE is on. The PDF attachments are added in exactly one
place (`attachments=` of send_mail)."""
from __future__ import annotations

import functools
import traceback
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app, url_for
from sqlalchemy.orm import joinedload, selectinload

from app.extensions import db
from app.mailer import send_mail
from app.models import EmailJob, Order, OrderLine
from app.services import email_jobs
from app.tickets.documents import order_ticket_attachments


class NothingToSend(Exception):
    """The job no longer makes sense (the order was cancelled before its confirmation went out)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _order_url(order: Order) -> str:
    return url_for("orders.show_order", code=order.code, _external=True)


# What the order emails show, read in three statements (the order and its customer; the lines
# with their offers and events; the payments) rather than one per object as the templates touch
# them: 10 statements per confirmation email became 6 (bench/emails.py).
_ORDER_FOR_EMAIL = (sa.select(Order).options(
    joinedload(Order.user),
    selectinload(Order.lines).options(joinedload(OrderLine.offer), joinedload(OrderLine.event)),
    selectinload(Order.payments),
).execution_options(populate_existing=True))


def _order_for_email(order_id: int) -> Order:
    order = db.session.scalars(_ORDER_FOR_EMAIL.where(Order.id == order_id)).unique().one_or_none()
    if order is None:  # deleted since (its job goes with it)
        raise NothingToSend
    return order


def _send_order_confirmation(order_id: int) -> None:
    """The 'your order is paid' email, with one PDF per ticket. Raises when it cannot be sent."""
    order = _order_for_email(order_id)
    if not order.is_paid:
        raise NothingToSend
    send_mail(order.user.email, f"Your order {order.code} is confirmed", "order_confirmation",
              attachments=order_ticket_attachments(order),  # tickets (issue 7): one PDF per ticket
              order=order, user=order.user, order_url=_order_url(order))


def _send_order_cancelled(order_id: int, *, by_organiser: bool) -> None:
    """The 'your order is cancelled and refunded' email. Raises when it cannot be sent."""
    order = _order_for_email(order_id)
    if not order.is_cancelled:
        raise NothingToSend
    send_mail(order.user.email, f"Your order {order.code} is cancelled", "order_cancelled",
              order=order, user=order.user, order_url=_order_url(order), by_organiser=by_organiser)


CANCELLATION_KINDS = (email_jobs.ORDER_CANCELLED, email_jobs.ORDER_CANCELLED_BY_ORGANISER)
SENDERS = {
    email_jobs.ORDER_CONFIRMATION: _send_order_confirmation,
    email_jobs.ORDER_CANCELLED: functools.partial(_send_order_cancelled, by_organiser=False),
    email_jobs.ORDER_CANCELLED_BY_ORGANISER: functools.partial(_send_order_cancelled, by_organiser=True),
}


def deliver_job(job: EmailJob) -> bool:
    """Send a claimed job and record the outcome: True when sent. Any failure is logged (the
    exception class only: SMTP errors quote the recipient) and the job retried later."""
    job_id, kind, order_id = job.id, job.kind, job.order_id
    try:
        SENDERS[kind](order_id)
    except Exception as error:  # noqa: BLE001 — SMTP, rendering, database: the job is retried later either way
        db.session.rollback()
        job = db.session.get(EmailJob, job_id)
        if job is None:  # the order (and its job) was deleted meanwhile
            return False
        name = type(error).__name__
        email_jobs.mark_failed(db.session, job, _now(), name, retry=not isinstance(error, NothingToSend))
        outcome = (f"next attempt at {job.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC" if job.is_pending
                   else "given up")
        current_app.logger.warning("email job %s (%s of order id %s) failed with %s on attempt %s; %s",
                                   job_id, kind, order_id, name, job.attempts, outcome)
        current_app.logger.debug("email job %s failed in:\n%s", job_id,
                                 "".join(traceback.format_tb(error.__traceback__)))
        return False
    email_jobs.mark_sent(db.session, job, _now())
    return True


def _deliver_now(order: Order, kind_is: sa.ColumnElement[bool]) -> bool:
    """Without MAIL_QUEUE: the request sends the order's email (the job whose kind matches
    `kind_is`) right after the commit that queued it. False when it could not be sent (the job
    stays queued for `flask emails work`) or when another process already has it."""
    job_id = db.session.scalar(sa.select(EmailJob.id).where(kind_is, EmailJob.order_id == order.id))
    job = email_jobs.claim_job(db.session, job_id, _now()) if job_id is not None else None
    return job is not None and deliver_job(job)


def deliver_order_confirmation(order: Order) -> bool:
    return _deliver_now(order, EmailJob.kind == email_jobs.ORDER_CONFIRMATION)


def deliver_order_cancellation(order: Order) -> bool:
    return _deliver_now(order, EmailJob.kind.in_(CANCELLATION_KINDS))
