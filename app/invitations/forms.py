"""The "Activate my access" form."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length

from app.auth.forms import ValidEmail

valid_email = ValidEmail()  # syntax only, `.test` accepted (shared with the admin person form)


class ActivationForm(FlaskForm):
    code = StringField(
        "Invitation code", description="It looks like GCH-XXXXXX-XXXXX; dashes and case do not matter.",
        validators=[DataRequired("Enter the invitation code you received."),
                    Length(max=64, message="An invitation code is much shorter than that.")],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"},
    )
    email = EmailField(
        "Email",
        validators=[DataRequired("Enter your email address."),
                    Length(max=254, message="An email address has at most 254 characters."), valid_email],
        render_kw={"autocomplete": "email"},
    )
    password = PasswordField(
        "Password",
        description="New account: at least 12 characters, hard to guess. "
                    "Existing account with this email: its current password.",
        validators=[DataRequired("Enter a password.")],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Confirm the password",
        validators=[DataRequired("Type the password again."),
                    EqualTo("password", message="The two passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Activate my access")
