"""Shapes of the "My account" forms."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, SubmitField
from wtforms.validators import DataRequired

from app.auth.forms import email_field, name_field, new_password_fields, username_field


class ProfileForm(FlaskForm):
    first_name = name_field("First name", "first name")
    last_name = name_field("Last name", "last name")
    username = username_field()
    email = email_field()
    current_password = PasswordField("Current password")
    submit = SubmitField("Save my profile")


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])
    password, confirm = new_password_fields("New password")
    submit = SubmitField("Change my password")


class SessionsForm(FlaskForm):
    """Only the CSRF token: the revoke buttons."""
