"""Paying a pending order through a payment provider (app/services/payments.py).

One idempotency key per payment attempt, kept on the order: a double submit reuses it, so
the provider charges once and replays its answer to the second request. After a final
decline the key is replaced, because the provider would replay the decline for it forever.
Only brand, last 4 and the provider's transaction id are recorded; the card stays in memory.

The order is read as plain rows (`payable_order_of_user`), not as an `Order`: every purchase pays
once, and the payment only checks the order and writes with SQL statements, so the ORM's objects,
identity map and row processors served nothing but cost about half of the read. Paying on the
checkout review reads nothing: the order is paid as its placement wrote it (`place_and_pay`).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db_late_begin import only_write
from app.models import EmailJobStatus, Order, OrderLine, OrderStatus, Payment, User
from app.models.base import UTCDateTime, utcnow
from app.models.order import OrderFacts
from app.services import audit, email_jobs
from app.services.cart import OfferForSale
from app.services.errors import Conflict, DomainError
from app.services.orders import (
    Buyer,
    expire_stale_orders,
    new_idempotency_key,
    place_for_payment,
    rows_of_users_order,
)
from app.services.payments import CardDetails, ChargeResult, PaymentProvider
from app.services.stats import allow_stats_refresh_soon, note_stats_change
from app.services.tickets import issue_tickets, new_ticket_rows
from app.services.transactions import commit_keeping_loaded

PENDING, PAID = OrderStatus.PENDING.value, OrderStatus.PAID.value
KNOWN_DECLINES = {"card_declined", "insufficient_funds", "provider_unavailable", "card_number_invalid",
                  "idempotency_key_reused"}


class PaymentDeclined(DomainError):
    """The provider refused the charge; the order stays pending and may be paid again."""


@dataclass(frozen=True, slots=True)
class PayableLine:
    id: int
    event_id: int
    offer_id: int
    quantity: int
    persons: int


@dataclass(frozen=True)
class PayableOrder(OrderFacts):
    """An order as the payment reads it; the attributes keep the model's names, which
    `new_ticket_rows` and the order's facts (`is_paid`, `hold_has_expired`) use."""
    id: int
    code: str
    user_id: int
    status: str
    expires_at: datetime
    paid_at: datetime | None
    total_cents: int
    currency: str
    idempotency_key: str
    lines: tuple[PayableLine, ...]
    user: Buyer


_O, _L, _U, _P = Order.__table__, OrderLine.__table__, User.__table__, Payment.__table__
# One statement, built once: the order, its buyer and a row per line (in the order written).
# Issuing the tickets needs the lines and the buyer's user key and name: read with the order, not
# on their own inside the payment (the signed-in user is loaded without its secrets).
_PAYABLE_ORDER = (
    sa.select(_O.c.id, _O.c.code, _O.c.user_id, _O.c.status, _O.c.expires_at, _O.c.paid_at, _O.c.total_cents,
              _O.c.currency, _O.c.idempotency_key, _U.c.user_key, _U.c.first_name, _U.c.last_name,
              _L.c.id.label("line_id"), _L.c.event_id, _L.c.offer_id, _L.c.quantity, _L.c.persons)
    .select_from(_O.join(_U, _U.c.id == _O.c.user_id).outerjoin(_L, _L.c.order_id == _O.c.id))
    .where(_O.c.code == sa.bindparam("code"), _O.c.user_id == sa.bindparam("user_id"))
    .order_by(_L.c.id))


def payable_order_of_user(session: Session, code: str, user_id: int) -> PayableOrder:
    """The order with this code if it belongs to the user; NotFound otherwise (no hint either way),
    as `orders.get_order_for_user`."""
    rows = rows_of_users_order(session, _PAYABLE_ORDER, code, user_id)
    first = rows[0]
    return PayableOrder(
        id=first.id, code=first.code, user_id=first.user_id, status=first.status, expires_at=first.expires_at,
        paid_at=first.paid_at, total_cents=first.total_cents, currency=first.currency,
        idempotency_key=first.idempotency_key,
        lines=tuple(PayableLine(id=row.line_id, event_id=row.event_id, offer_id=row.offer_id, quantity=row.quantity,
                                persons=row.persons) for row in rows if row.line_id is not None),
        user=Buyer(user_key=first.user_key, first_name=first.first_name, last_name=first.last_name))


def payable_as_placed(order: Order, buyer: Buyer) -> PayableOrder:
    """The order its placement just wrote (still loaded: `orders.place_for_payment`), as the
    payment reads it. Only the status can have changed since, and the payment's conditional
    UPDATE checks that."""
    return PayableOrder(
        id=order.id, code=order.code, user_id=order.user_id, status=order.status, expires_at=order.expires_at,
        paid_at=order.paid_at, total_cents=order.total_cents, currency=order.currency,
        idempotency_key=order.idempotency_key,
        lines=tuple(PayableLine(id=line.id, event_id=line.event_id, offer_id=line.offer_id, quantity=line.quantity,
                                persons=line.persons) for line in order.lines),
        user=buyer)


@dataclass(frozen=True)
class PaymentOutcome:
    order: PayableOrder  # as it stands after this payment
    paid_now: bool  # False when an earlier submit of the same payment had already paid the order


def pay_order(session: Session, order: PayableOrder, card: CardDetails, *, provider: PaymentProvider, now: datetime,
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
    commit_keeping_loaded(session)  # what else the request loaded (the signed-in user) stays usable
    result = provider.charge(amount_cents=amount, currency=currency, card=card, idempotency_key=key)
    if result.ok:
        return _record_success(session, order, result, now=now, ip_address=ip_address, provider=provider)
    _record_failure(session, order, result, key=key, now=now)
    raise PaymentDeclined(result.error_code if result.error_code in KNOWN_DECLINES else "payment_failed")


def place_and_pay(session: Session, *, user: User, items: Mapping[int, int],
                  offers: Mapping[int, OfferForSale] | None, expected_total_cents: int, checkout_key: str,
                  card: CardDetails, provider: PaymentProvider, now: datetime, hold_minutes: int,
                  max_tickets_per_event: int, ip_address: str | None = None) -> PaymentOutcome:
    """The checkout review's "Pay": place the order, then pay it, in one request.

    Placing is as `orders.place_order`, made idempotent by `checkout_key`, which also is the
    payment's key: the same review sent twice places one order and charges it once. A refused
    placement raises as placing does, with nothing placed. Once the order is placed, any refusal
    (a declined card, most often) raises with the order's code in `params["order"]`: the order stays
    pending, its seats held, and its page takes the payment again.
    """
    user_id = user.id  # read before placing: a placement that hands back an earlier order has rolled back
    placement = place_for_payment(session, user=user, items=items, offers=offers,
                                  expected_total_cents=expected_total_cents, now=now, hold_minutes=hold_minutes,
                                  max_tickets_per_event=max_tickets_per_event, checkout_key=checkout_key)
    order = placement.order
    try:
        if placement.buyer is None:  # an earlier submit's order: paid already, perhaps
            payable = payable_order_of_user(session, order.code, user_id)
        else:
            payable = payable_as_placed(order, placement.buyer)
        return pay_order(session, payable, card, provider=provider, now=now, ip_address=ip_address)
    except DomainError as error:
        error.params["order"] = order.code
        raise


# Built once and run with parameters (each payment runs them): one INSERT per row, no ORM flush.
_MARK_PAID = (sa.update(_O).where(_O.c.id == sa.bindparam("order_id"), _O.c.status == PENDING)
              .values(status=PAID, paid_at=sa.bindparam("when")))
_RENEW_KEY = (sa.update(_O).where(_O.c.id == sa.bindparam("order_id"),
                                  _O.c.idempotency_key == sa.bindparam("old_key"), _O.c.status == PENDING)
              .values(idempotency_key=sa.bindparam("new_key")))
_INSERT_PAYMENT = sa.insert(_P)


def _record_charge(session: Session, order_id: int, result: ChargeResult, now: datetime) -> None:
    """The provider's answer to a charge: brand, last 4 and its transaction id, never the card."""
    session.execute(_INSERT_PAYMENT, {
        "order_id": order_id, "kind": "charge", "amount_cents": result.amount_cents, "succeeded": result.ok,
        "error_code": result.error_code, "card_brand": result.brand or None, "card_last4": result.last4 or None,
        "transaction_id": result.transaction_id, "created_at": now})


# PostgreSQL: what a successful charge writes, in one statement (its UPDATE and INSERTs in
# data-modifying CTEs, each INSERT fed by the UPDATE's row, so nothing is written unless this
# request is the one that marked the order paid). One statement is atomic on its own, so it runs
# alone in autocommit (`only_write`): one round trip where BEGIN, five statements and COMMIT were
# seven. SQLite has no INSERT in a WITH clause and runs the same writes one by one
# (`_record_paid_one_by_one`); tests compare the rows both write, column by column.
_PAY_AND_ISSUE = sa.text("""
WITH paid AS (
    UPDATE orders SET status = :paid, paid_at = :now
    WHERE id = :order_id AND status = :pending
    RETURNING id, user_id
), charge AS (
    INSERT INTO payments (order_id, kind, amount_cents, succeeded, error_code, card_brand, card_last4,
                          transaction_id, created_at)
    SELECT id, 'charge', :amount_cents, true, NULL, :card_brand, :card_last4, :transaction_id, :now FROM paid
), issued AS (
    INSERT INTO tickets (number, order_id, order_line_id, user_id, event_id, offer_id, persons, holder_name,
                         purchase_key, key_digest, issued_at)
    SELECT t.number, paid.id, t.order_line_id, paid.user_id, t.event_id, t.offer_id, t.persons, t.holder_name,
           t.purchase_key, t.key_digest, :now
    FROM paid CROSS JOIN unnest(CAST(:numbers AS varchar[]), CAST(:line_ids AS integer[]),
                                CAST(:event_ids AS integer[]), CAST(:offer_ids AS integer[]),
                                CAST(:persons AS integer[]), CAST(:holder_names AS varchar[]),
                                CAST(:purchase_keys AS bytea[]), CAST(:key_digests AS bytea[]))
         AS t(number, order_line_id, event_id, offer_id, persons, holder_name, purchase_key, key_digest)
), audited AS (
    INSERT INTO audit_events (type, actor_id, subject_user_id, ip_address, details, created_at)
    SELECT 'order_paid', user_id, user_id, :ip_address, CAST(:details AS json), :audited_at FROM paid
), queued AS (
    INSERT INTO email_jobs (kind, order_id, created_at, attempts, next_attempt_at, status)
    SELECT :email_kind, id, :now, 0, :now, :email_pending FROM paid
)
SELECT count(*) FROM paid
""").bindparams(sa.bindparam("now", type_=UTCDateTime()), sa.bindparam("audited_at", type_=UTCDateTime())
               ).columns(sa.column("paid"))  # a named result: mapped once (see orders._PLACE_FOR_ONE_EVENT)
_TICKET_ARRAYS = {"numbers": "number", "line_ids": "order_line_id", "event_ids": "event_id",
                  "offer_ids": "offer_id", "persons": "persons", "holder_names": "holder_name",
                  "purchase_keys": "purchase_key", "key_digests": "key_digest"}


def _record_paid_in_one_statement(session: Session, order: PayableOrder, result: ChargeResult, *, now: datetime,
                                  ip_address: str | None) -> bool:
    """PostgreSQL: `_PAY_AND_ISSUE`; whether this request marked the order paid."""
    rows = new_ticket_rows(order, now=now)
    details = {"order": order.code, "amount_cents": order.total_cents, "tickets": len(rows)}
    with only_write(session):
        changed = session.execute(_PAY_AND_ISSUE, {
            "order_id": order.id, "paid": PAID, "pending": PENDING, "now": now,
            "amount_cents": result.amount_cents, "card_brand": result.brand or None,
            "card_last4": result.last4 or None, "transaction_id": result.transaction_id,
            **{array: [row[column] for row in rows] for array, column in _TICKET_ARRAYS.items()},
            "ip_address": ip_address, "details": json.dumps(details), "audited_at": utcnow(),
            "email_kind": email_jobs.ORDER_CONFIRMATION, "email_pending": EmailJobStatus.PENDING.value,
        }).scalar_one()
    if changed:
        note_stats_change(session)  # the listeners see no table in a text statement
    return changed == 1


def _record_paid_one_by_one(session: Session, order: PayableOrder, result: ChargeResult, *, now: datetime,
                            ip_address: str | None) -> bool:
    """Any database: the same writes as `_PAY_AND_ISSUE`, one statement each, in a transaction."""
    if session.execute(_MARK_PAID, {"order_id": order.id, "when": now}).rowcount != 1:
        return False
    _record_charge(session, order.id, result, now)
    issued = issue_tickets(session, order, now=now)
    audit.record(session, "order_paid", actor_id=order.user_id, subject_user_id=order.user_id,
                 ip_address=ip_address, order=order.code, amount_cents=order.total_cents, tickets=issued)
    # In the same transaction: a paid order always has its confirmation email queued (and only
    # the request that paid it gets here, so there is no earlier job to look for).
    email_jobs.enqueue_new(session, email_jobs.ORDER_CONFIRMATION, order.id, now)
    return True


def _record_success(session: Session, order: PayableOrder, result: ChargeResult, *, now: datetime,
                    ip_address: str | None, provider: PaymentProvider) -> PaymentOutcome:
    record_paid = (_record_paid_in_one_statement if session.get_bind().dialect.name == "postgresql"
                   else _record_paid_one_by_one)
    if record_paid(session, order, result, now=now, ip_address=ip_address):
        # This request paid it: it alone recorded the charge and issued the tickets. The sales
        # dashboard shows it with the other sales of that moment (STATS_REFRESH_DELAY_SECONDS).
        allow_stats_refresh_soon(session)
        session.commit()
        return PaymentOutcome(dataclasses.replace(order, status=PAID, paid_at=now), paid_now=True)

    session.rollback()
    order, recorded = _as_it_stands(session, order)
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


_STATUS_AND_CHARGES = (
    sa.select(_O.c.status, _O.c.paid_at, _P.c.transaction_id)
    .select_from(_O.outerjoin(_P, sa.and_(_P.c.order_id == _O.c.id, _P.c.kind == "charge", _P.c.succeeded.is_(True))))
    .where(_O.c.id == sa.bindparam("order_id")))


def _as_it_stands(session: Session, order: PayableOrder) -> tuple[PayableOrder, set[str]]:
    """When this request could not mark the order paid: its status now, and the transaction ids of
    the charges recorded for it (so a double submit's charge is told from a second one)."""
    rows = session.execute(_STATUS_AND_CHARGES, {"order_id": order.id}).all()
    now_as = dataclasses.replace(order, status=rows[0].status, paid_at=rows[0].paid_at)
    return now_as, {row.transaction_id for row in rows if row.transaction_id is not None}


def _record_failure(session: Session, order: PayableOrder, result: ChargeResult, *, key: str, now: datetime) -> None:
    if result.error_code == "idempotency_key_reused":
        return  # another attempt with this key is under way; nothing of ours to record
    if not result.replayed:
        _record_charge(session, order.id, result, now)
    if not result.retriable:
        session.execute(_RENEW_KEY, {"order_id": order.id, "old_key": key, "new_key": new_idempotency_key()})
    session.commit()
