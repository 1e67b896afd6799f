"""The order page's payment form before anything is typed, rendered once and filled in per page.

Every purchase shows it once, and it is the same for every pending order but for four values:
the order's code (in the form's action), the amount (on its button), the card holder's name
(the customer's, as a default) and the session's CSRF token. Building the `PaymentForm` and
rendering its five fields through the `field` macro was a fifth of that page's CPU. So it is
rendered once per script root with placeholders, and they are replaced by the escaped values.
A form shown again with errors, or with what was typed, is rendered in full as before.
"""
from __future__ import annotations

from flask import current_app, render_template, request
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from app.orders.forms import PaymentForm
from app.templating import format_cents

_KEPT = "guichet.blank_payment_form"  # app.extensions: {script root: HTML with placeholders}
# Letters only: nothing that url_for, WTForms or the money filter would escape or encode.
CODE, AMOUNT, HOLDER, CSRF = "GuichetPayCode", "GuichetPayAmount", "GuichetPayHolder", "GuichetPayCsrf"


def _with_placeholders() -> str:
    form = PaymentForm(formdata=None, holder=HOLDER, meta={"csrf": False})
    return render_template("orders/_payment_form.html", form=form, pay_code=CODE, pay_amount=AMOUNT,
                           csrf_placeholder=CSRF)


def blank_payment_form(order_code: str, total_cents: int, holder: str) -> Markup:
    kept = current_app.extensions.setdefault(_KEPT, {})
    html = kept.get(request.script_root)
    if html is None:
        html = kept[request.script_root] = _with_placeholders()
    # The customer's name last: whatever it holds (a placeholder's letters, say) stays as typed.
    return Markup(html.replace(CODE, str(escape(order_code)))
                  .replace(AMOUNT, str(escape(format_cents(total_cents))))
                  .replace(CSRF, generate_csrf())
                  .replace(HOLDER, str(escape(holder))))
