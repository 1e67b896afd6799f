"""Admin forms: people directory, role changes and confirmations."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import AnyOf, DataRequired, Length, Optional, ValidationError

from app.invitations.forms import valid_email
from app.services.phones import normalise_phone

PERSON_ROLE_CHOICES = [("staff", "Staff (gate check-in)"), ("admin", "Administrator")]
USER_ROLE_CHOICES = [("customer", "Customer"), ("staff", "Staff"), ("admin", "Administrator")]
PHONE_HELP = "International format welcome (+44 20 7946 0958); French numbers may omit +33."


def valid_phone(form, field) -> None:
    if field.data and field.data.strip() and normalise_phone(field.data) is None:
        raise ValidationError("Enter a valid phone number, for example +33 6 12 34 56 78 or 06 12 34 56 78.")


class PersonForm(FlaskForm):
    first_name = StringField("First name", validators=[
        DataRequired("Enter the first name."), Length(max=80, message="At most 80 characters.")],
        render_kw={"autocomplete": "off"})
    last_name = StringField("Last name", validators=[
        DataRequired("Enter the last name."), Length(max=80, message="At most 80 characters.")],
        render_kw={"autocomplete": "off"})
    phone1 = StringField("Phone", validators=[
        DataRequired("Enter a phone number."), Length(max=32, message="That is too long for a phone number."),
        valid_phone], render_kw={"type": "tel", "autocomplete": "off"})
    phone2 = StringField("Second phone (optional)", validators=[
        Optional(), Length(max=32, message="That is too long for a phone number."), valid_phone],
        render_kw={"type": "tel", "autocomplete": "off"})
    email = EmailField("Email (optional)", validators=[
        Optional(), Length(max=254, message="An email address has at most 254 characters."), valid_email],
        render_kw={"autocomplete": "off"})
    intended_role = SelectField("Role once activated", choices=[SelectChoice(*c) for c in PERSON_ROLE_CHOICES],
                                validators=[
        AnyOf([value for value, _ in PERSON_ROLE_CHOICES], message="Choose staff or admin.")])
    generate_code = BooleanField("Generate an invitation code")
    submit = SubmitField("Save")


class RoleForm(FlaskForm):
    role = SelectField("New role", choices=[SelectChoice(*c) for c in USER_ROLE_CHOICES], validators=[
        AnyOf([value for value, _ in USER_ROLE_CHOICES], message="Choose customer, staff or admin.")])
    submit = SubmitField("Change the role")


class ConfirmRoleForm(FlaskForm):
    role = HiddenField(validators=[AnyOf([value for value, _ in USER_ROLE_CHOICES])])
    submit = SubmitField("Yes, change the role")


class ConfirmForm(FlaskForm):
    """A bare form: the CSRF token and one button, for every confirmed action."""

    submit = SubmitField("Confirm")
