"""The card form before anything is typed, rendered once and filled in per page.

Every purchase shows it once (on the checkout review, or on a pending order's page), and it is
the same every time but for a few values: where it posts (the order's code), the amount (on its
button), the card holder's name (the customer's, as a default), the session's CSRF token and, on
the review, the total and checkout key it carries. Building the form and rendering its five
fields through the `field` macro was a fifth of the order page's CPU. So each kind is rendered
once per script root with placeholders, and they are replaced by the escaped values. A form shown
again with errors, or with what was typed, is rendered in full as before.
"""
from __future__ import annotations

from flask import current_app, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from app.orders.forms import CheckoutPaymentForm, PaymentForm
from app.templating import format_cents

_KEPT = "guichet.blank_payment_form"  # app.extensions: {(kind, script root): HTML with placeholders}
# Letters only: nothing that url_for, WTForms or the money filter would escape or encode.
CODE, AMOUNT, HOLDER, CSRF = "GuichetPayCode", "GuichetPayAmount", "GuichetPayHolder", "GuichetPayCsrf"
TOTAL, KEY = "GuichetPayTotal", "GuichetPayKey"


def _order_form() -> str:
    form = PaymentForm(formdata=None, holder=HOLDER, meta={"csrf": False})
    return render_template("orders/_payment_form.html", form=form, action=url_for("orders.pay_order", code=CODE),
                           pay_amount=AMOUNT, csrf_placeholder=CSRF)


def _checkout_form() -> str:
    form = CheckoutPaymentForm(formdata=None, holder=HOLDER, checkout_key=KEY, meta={"csrf": False})
    form.expected_total_cents.data = TOTAL  # an IntegerField would refuse the placeholder as its default
    return render_template("orders/_payment_form.html", form=form, action=url_for("cart.place_and_pay"),
                           pay_amount=AMOUNT, csrf_placeholder=CSRF)


def _filled(kind: str, build, holder: str, values: dict[str, str]) -> Markup:
    kept = current_app.extensions.setdefault(_KEPT, {})
    html = kept.get((kind, request.script_root))
    if html is None:
        html = kept[kind, request.script_root] = build()
    for placeholder, value in values.items():
        html = html.replace(placeholder, str(escape(value)))
    # The customer's name last: whatever it holds (a placeholder's letters, say) stays as typed.
    return Markup(html.replace(CSRF, generate_csrf()).replace(HOLDER, str(escape(holder))))


def blank_payment_form(order_code: str, total_cents: int, holder: str) -> Markup:
    """The pending order's page: the form pays this order."""
    return _filled("order", _order_form, holder, {CODE: order_code, AMOUNT: format_cents(total_cents)})


def blank_checkout_form(total_cents: int, holder: str, checkout_key: str) -> Markup:
    """The checkout review: the form places the order for this total and pays it."""
    return _filled("checkout", _checkout_form, holder,
                   {TOTAL: str(total_cents), KEY: checkout_key, AMOUNT: format_cents(total_cents)})
