"""Admin forms for the catalogue: events and offers.

The forms check shapes only (present, a number, a date); the rules — capacity against the
seats sold, a start in the future, a positive price, a unique web address — are the
service's (app/services/catalogue_admin.py), which names the field to attach its message to.
"""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    DecimalField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    ValidationError,
)

from app.services.catalogue_admin import EventInput, OfferInput

PARIS = ZoneInfo("Europe/Paris")
KIND_CHOICES = [("solo", "Solo (1 person)"), ("duo", "Duo (2 persons)"), ("family", "Family (4 persons)"),
                ("custom", "Custom (choose the number of persons)")]


def paris_to_utc(local: datetime) -> datetime:
    """A time typed in Paris time (datetime-local input) as an aware UTC datetime."""
    return local.replace(tzinfo=PARIS).astimezone(UTC)


def utc_to_paris_input(moment: datetime) -> datetime:
    return moment.astimezone(PARIS).replace(tzinfo=None, second=0, microsecond=0)


class WholeNumberField(IntegerField):
    """An integer field whose "not a number" message says what to type."""

    def __init__(self, label=None, validators=None, *, not_a_number: str = "Enter a whole number.", **kwargs):
        super().__init__(label, validators, **kwargs)
        self.not_a_number = not_a_number

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(self.not_a_number) from None


class EventForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired("Enter the event's title."),
                                             Length(max=160, message="At most 160 characters.")])
    slug = StringField("Web address (optional)", validators=[Optional(), Length(max=180, message="At most 180 characters.")],
                       description="The end of /events/…; made from the title when left empty.")
    sport = StringField("Sport", validators=[DataRequired("Enter the sport."),
                                             Length(max=80, message="At most 80 characters.")])
    venue = StringField("Venue", validators=[DataRequired("Enter the venue."),
                                             Length(max=120, message="At most 120 characters.")])
    starts_at = DateTimeLocalField("Starts at (Paris time)", format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
                                   validators=[InputRequired("Enter the date and time, e.g. 2026-08-04 21:10.")])
    capacity = WholeNumberField("Capacity (seats)", validators=[InputRequired("Enter the number of seats.")],
                                not_a_number="Enter the number of seats as a whole number, e.g. 400.")
    description = TextAreaField("Description", validators=[Optional(), Length(max=5000, message="At most 5000 characters.")])
    submit = SubmitField("Save the event")

    def to_input(self) -> EventInput:
        return EventInput(title=self.title.data or "", slug=self.slug.data or None, sport=self.sport.data or "",
                          venue=self.venue.data or "", starts_at=paris_to_utc(self.starts_at.data),
                          capacity=self.capacity.data, description=self.description.data or "")


class PriceField(DecimalField):
    """Euros with at most two decimals, read as integer cents (`.cents`)."""

    def process_formdata(self, valuelist):
        if valuelist:
            valuelist = [valuelist[0].replace(",", ".").replace("€", "").strip()]
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("Enter a price in euros, e.g. 85 or 85.50.") from None

    @property
    def cents(self) -> int:
        return int((self.data * 100).to_integral_value())


def two_decimals(form, field) -> None:
    try:
        if field.data is not None and field.data != field.data.quantize(Decimal("0.01")):
            raise ValidationError("Use at most two decimals (cents).")
    except InvalidOperation:
        raise ValidationError("Enter a price in euros, e.g. 85 or 85.50.") from None


class OfferForm(FlaskForm):
    kind = SelectField("Kind", choices=[SelectChoice(value, label) for value, label in KIND_CHOICES])
    name = StringField("Name", validators=[Optional(), Length(max=60, message="At most 60 characters.")],
                       description="Shown to buyers; Solo, Duo or Family when left empty.")
    persons = WholeNumberField("Persons admitted (custom kind)", validators=[Optional()],
                               not_a_number="Enter the number of persons as a whole number, e.g. 6.")
    price = PriceField("Price (€)", places=2, validators=[InputRequired("Enter a price in euros, e.g. 85.50."), two_decimals],
                       render_kw={"inputmode": "decimal"})
    submit = SubmitField("Save the offer")

    def to_input(self) -> OfferInput:
        return OfferInput(kind=self.kind.data, name=self.name.data or None, persons=self.persons.data,
                          price_cents=self.price.cents)


class ConfirmForm(FlaskForm):
    """A POST-only button: CSRF token and nothing else."""

    submit = SubmitField("Confirm")
