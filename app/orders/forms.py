"""Checkout forms. The card number and CVV fields never render a value back into the page."""
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, StringField
from wtforms.validators import InputRequired, Regexp
from wtforms.widgets import HiddenInput


class SensitiveField(StringField):
    """A text field that is never echoed back (card number, CVV): after an error it comes back empty."""

    def _value(self) -> str:
        return ""


class PlaceOrderForm(FlaskForm):
    # The total the buyer saw on the review page; the order is refused if it no longer matches.
    expected_total_cents = IntegerField(widget=HiddenInput(), validators=[InputRequired()])


class PaymentForm(FlaskForm):
    holder = StringField("Name on the card")
    number = SensitiveField("Card number")
    exp_month = StringField("Month (MM)")
    exp_year = StringField("Year (YYYY)")
    cvv = SensitiveField("Security code (CVV)")

    def forget_card(self) -> None:
        """Drop the number and CVV from the form object once they have been used."""
        for field in (self.number, self.cvv):
            field.data = None
            field.raw_data = None


class CheckoutPaymentForm(PaymentForm):
    """The review page's card form: one submit places the order and pays it."""
    expected_total_cents = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
    # Drawn for each review page (app/services/orders.py, `place_order`): the same form sent twice
    # places and charges one order.
    checkout_key = HiddenField(validators=[InputRequired(), Regexp(r"^[A-Za-z0-9_-]{32}$")])


class CancelOrderForm(FlaskForm):
    confirm = HiddenField(default="yes")
