"""Forms of the tickets area (and the admin "rotate user key" confirmation)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length


class ScanForm(FlaskForm):
    """The field a USB/Bluetooth scanner types into (it ends with Enter, which submits)."""

    payload = StringField(
        "Ticket code",
        validators=[DataRequired("Scan a ticket or type its code."),
                    Length(max=512, message="That is far too long to be a ticket code.")],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
    )


class ScannerTokenForm(FlaskForm):
    name = StringField(
        "Device name",
        validators=[DataRequired("Give the device a name, for example “Gate 3 phone”."),
                    Length(max=60, message="Keep the name under 60 characters.")],
    )


class RevokeTokenForm(FlaskForm):
    """Only the CSRF token: the token id is in the URL."""


class RotateKeyForm(FlaskForm):
    confirm = BooleanField(
        "I understand: every ticket of this user that can still be used gets a new QR code, "
        "and the old codes will be refused at the gate.",
        validators=[DataRequired("Tick the box to confirm.")],
    )
