"""Shapes of the auth forms. Password rules live in app/services/passwords.py, not here."""
from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, EqualTo, Length, Regexp, ValidationError

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class ValidEmail:
    """A syntactically valid address (no DNS lookup); `.test` addresses are accepted for demos."""

    def __call__(self, form, field):
        try:
            validate_email(field.data or "", check_deliverability=False, test_environment=True)
        except EmailNotValidError as error:
            raise ValidationError("Enter a valid email address, like name@example.com.") from error


def email_field(label: str = "Email") -> EmailField:
    return EmailField(label, validators=[DataRequired("Enter your email address."),
                                         Length(max=254, message="This email address is too long."),
                                         ValidEmail()])


def username_field() -> StringField:
    return StringField("Username", validators=[
        DataRequired("Choose a username."),
        Length(min=3, max=40, message="Use between 3 and 40 characters."),
        Regexp(USERNAME_PATTERN, message="Use letters, digits, dots, hyphens and underscores only, "
                                         "starting with a letter or a digit."),
    ])


def name_field(label: str, what: str) -> StringField:
    return StringField(label, validators=[DataRequired(f"Enter your {what}."),
                                          Length(max=80, message="Use at most 80 characters.")])


def new_password_fields(label: str = "Password"):
    password = PasswordField(label, validators=[DataRequired("Choose a password.")])
    confirm = PasswordField("Confirm the password", validators=[
        DataRequired("Type the password again."),
        EqualTo("password", message="The two passwords do not match."),
    ])
    return password, confirm


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."),
                                            Length(max=254, message="This email address is too long.")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])
    remember = BooleanField("Remember me on this device")
    next = HiddenField()
    submit = SubmitField("Log in")


class RegisterForm(FlaskForm):
    username = username_field()
    email = email_field()
    first_name = name_field("First name", "first name")
    last_name = name_field("Last name", "last name")
    password, confirm = new_password_fields()
    submit = SubmitField("Create my account")


class ResendVerificationForm(FlaskForm):
    submit = SubmitField("Send me a new link")


class ResetRequestForm(FlaskForm):
    email = email_field()
    submit = SubmitField("Send me a reset link")


class ResetForm(FlaskForm):
    code = StringField("6-digit code from the email", validators=[
        DataRequired("Enter the 6-digit code from the email."),
        Length(max=32, message="The code has 6 digits."),
    ])
    second_factor = StringField("Authentication code or recovery code",
                                validators=[Length(max=64, message="That code is too long.")])
    password, confirm = new_password_fields("New password")
    submit = SubmitField("Set my new password")
