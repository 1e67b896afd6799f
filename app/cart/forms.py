"""Cart forms: add an offer, change a quantity."""
from flask_wtf import FlaskForm
from wtforms import IntegerField, SubmitField
from wtforms.validators import InputRequired, NumberRange

from app.services.cart import MAX_QUANTITY, MIN_QUANTITY

QUANTITY_MESSAGE = f"Choose a quantity between {MIN_QUANTITY} and {MAX_QUANTITY}."


class AddToCartForm(FlaskForm):
    offer_id = IntegerField(validators=[InputRequired()])
    quantity = IntegerField("Tickets", default=1, validators=[
        InputRequired(QUANTITY_MESSAGE), NumberRange(MIN_QUANTITY, MAX_QUANTITY, QUANTITY_MESSAGE)])
    # The event page's second button: add, then straight to the checkout review (one page fewer
    # for a buyer who came for this offer alone, as in an on-sale rush).
    buy_now = SubmitField()


class QuantityForm(FlaskForm):
    quantity = IntegerField("Tickets", validators=[
        InputRequired(QUANTITY_MESSAGE), NumberRange(MIN_QUANTITY, MAX_QUANTITY, QUANTITY_MESSAGE)])
