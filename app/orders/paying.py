"""What both card forms do with what was typed: the order page's (pay this order) and the checkout
review's (place the order and pay it)."""
from __future__ import annotations

from datetime import date

from flask import current_app
from flask_login import current_user

from app.extensions import limiter
from app.flashes import flash
from app.messages import message_for
from app.orders.emails import deliver_order_confirmation
from app.orders.forms import PaymentForm
from app.services.checkout import PaymentOutcome
from app.services.payments import CardDetails, validate_card

CARD_FIELDS = {"number": "number", "cvv": "cvv", "holder": "holder", "expiry": "exp_year"}


def _payment_key() -> str:
    return f"pay:{current_user.get_id()}"


# One budget of card submits per customer, whichever form they come from (card testing).
payment_rate_limit = limiter.shared_limit(lambda: current_app.config["PAYMENT_RATE_LIMIT"], scope="payment",
                                          key_func=_payment_key, methods=["POST"])


def card_of(form: PaymentForm, today: date) -> CardDetails | None:
    """The card typed into the form, or None with each field's error set on the form. The number
    and CVV are dropped from the form either way: an error shows them empty."""
    errors = validate_card(form.number.data, form.exp_month.data, form.exp_year.data, form.cvv.data,
                           form.holder.data, today=today)
    card = None if errors else CardDetails(number=form.number.data, exp_month=form.exp_month.data,
                                           exp_year=form.exp_year.data, cvv=form.cvv.data, holder=form.holder.data)
    form.forget_card()
    for name, error_code in errors.items():
        getattr(form, CARD_FIELDS[name]).errors = [message_for(error_code)]
    return card


def announce_payment(outcome: PaymentOutcome) -> None:
    """The message after a payment went through: paid now (and the email sent or queued), or
    paid already by an earlier submit of the same form."""
    if outcome.paid_now and current_app.config["MAIL_QUEUE"]:
        flash(message_for("payment_accepted_email_queued"), "success")  # the worker sends it
    elif outcome.paid_now:
        sent = deliver_order_confirmation(outcome.order)
        flash(message_for("payment_accepted_email_sent" if sent else "payment_accepted"), "success")
    else:
        flash(message_for("order_already_paid"), "info")
