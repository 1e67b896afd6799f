"""Paying a pending order through a payment provider (app/services/payments.py).

One idempotency key per payment attempt, kept on the order: a double submit reuses it, so
the provider charges once and replays its answer to the second request. After a final
decline the key is replaced, because the provider would replay the decline for it forever.
Only brand, last 4 and the provider's transaction id are recorded; the card stays in memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Order, OrderStatus, Payment
from app.services import audit, email_jobs
from app.services.errors import Conflict, DomainError
from app.services.orders import expire_stale_orders, new_idempotency_key
from app.services.payments import CardDetails, ChargeResult, PaymentProvider
from app.services.tickets import issue_tickets
from app.services.transactions import commit_keeping_loaded

PENDING, PAID = OrderStatus.PENDING.value, OrderStatus.PAID.value
KNOWN_DECLINES = {"card_declined", "insufficient_funds", "provider_unavailable", "card_number_invalid",
                  "idempotency_key_reused"}


class PaymentDeclined(DomainError):
    """The provider refused the charge; the order stays pending and may be paid again."""


@dataclass(frozen=True)
class PaymentOutcome:
    order: Order
    paid_now: bool  # False when an earlier submit of the same payment had already paid the order


def pay_order(session: Session, order: Order, card: CardDetails, *, provider: PaymentProvider, now: datetime,
              ip_address: str | None = None) -> PaymentOutcome:
    if order.is_paid:
        return PaymentOutcome(order, paid_now=False)
    if order.hold_has_expired(now):
        expire_stale_orders(session, now=now, order_id=order.id)
        raise Conflict("order_expired")
    if not order.is_pending:
        raise Conflict("order_not_payable")
    key, amount, currency = order.idempotency_key, order.total_cents, order.currency
    # No transaction stays open while the provider answers. The order and its lines, read just
    # before, are what the rest of the payment uses; the one thing that can change meanwhile,
    # the status, is re-checked by the conditional UPDATE that records the charge.
    commit_keeping_loaded(session)
    result = provider.charge(amount_cents=amount, currency=currency, card=card, idempotency_key=key)
    if result.ok:
        return _record_success(session, order, result, now=now, ip_address=ip_address, provider=provider)
    _record_failure(session, order, result, key=key, now=now)
    raise PaymentDeclined(result.error_code if result.error_code in KNOWN_DECLINES else "payment_failed")


# Built once and run with parameters (each payment runs them): one INSERT per row, no ORM flush.
_ORDERS = Order.__table__
_MARK_PAID = (sa.update(_ORDERS).where(_ORDERS.c.id == sa.bindparam("order_id"), _ORDERS.c.status == PENDING)
              .values(status=PAID, paid_at=sa.bindparam("when")))
_RENEW_KEY = (sa.update(_ORDERS).where(_ORDERS.c.id == sa.bindparam("order_id"),
                                       _ORDERS.c.idempotency_key == sa.bindparam("old_key"),
                                       _ORDERS.c.status == PENDING)
              .values(idempotency_key=sa.bindparam("new_key")))
_INSERT_PAYMENT = sa.insert(Payment.__table__)


def _record_charge(session: Session, order_id: int, result: ChargeResult, now: datetime) -> None:
    """The provider's answer to a charge: brand, last 4 and its transaction id, never the card."""
    session.execute(_INSERT_PAYMENT, {
        "order_id": order_id, "kind": "charge", "amount_cents": result.amount_cents, "succeeded": result.ok,
        "error_code": result.error_code, "card_brand": result.brand or None, "card_last4": result.last4 or None,
        "transaction_id": result.transaction_id, "created_at": now})


def _record_success(session: Session, order: Order, result: ChargeResult, *, now: datetime,
                    ip_address: str | None, provider: PaymentProvider) -> PaymentOutcome:
    changed = session.execute(_MARK_PAID, {"order_id": order.id, "when": now}).rowcount
    if changed == 1:  # this request paid it: it alone records the charge and issues the tickets
        session.expire(order, ["status", "paid_at"])
        _record_charge(session, order.id, result, now)
        issued = issue_tickets(session, order, now=now)
        audit.record(session, "order_paid", actor_id=order.user_id, subject_user_id=order.user_id,
                     ip_address=ip_address, order=order.code, amount_cents=order.total_cents, tickets=issued)
        # In the same transaction: a paid order always has its confirmation email queued (and only
        # the request that paid it gets here, so there is no earlier job to look for).
        email_jobs.enqueue_new(session, email_jobs.ORDER_CONFIRMATION, order.id, now)
        session.commit()
        return PaymentOutcome(order, paid_now=True)

    session.rollback()
    session.refresh(order)
    recorded = {p.transaction_id for p in order.payments if p.kind == "charge" and p.succeeded}
    if order.is_paid and result.transaction_id in recorded:
        return PaymentOutcome(order, paid_now=False)  # a double submit: same charge, already recorded
    # The order expired (or was paid by another charge) while this one went through: give it back.
    refund = provider.refund(transaction_id=result.transaction_id, amount_cents=result.amount_cents,
                             idempotency_key=f"refund:{result.transaction_id}")
    _record_charge(session, order.id, result, now)
    if refund.ok:
        session.execute(_INSERT_PAYMENT, {
            "order_id": order.id, "kind": "refund", "amount_cents": result.amount_cents, "succeeded": True,
            "card_brand": result.brand or None, "card_last4": result.last4 or None,
            "transaction_id": refund.refund_id, "created_at": now})
        audit.record(session, "order_refunded", actor_id=order.user_id, subject_user_id=order.user_id,
                     ip_address=ip_address, order=order.code, amount_cents=result.amount_cents,
                     reason="duplicate_charge" if order.is_paid else "hold_expired")
    session.commit()
    if order.is_paid:
        return PaymentOutcome(order, paid_now=False)
    raise Conflict("order_expired_refunded")


def _record_failure(session: Session, order: Order, result: ChargeResult, *, key: str, now: datetime) -> None:
    if result.error_code == "idempotency_key_reused":
        return  # another attempt with this key is under way; nothing of ours to record
    if not result.replayed:
        _record_charge(session, order.id, result, now)
    if not result.retriable:
        session.execute(_RENEW_KEY, {"order_id": order.id, "old_key": key, "new_key": new_idempotency_key()})
    session.commit()
