"""`flask create-admin`: the first administrator (flags, or prompts for what is missing)."""
from __future__ import annotations

import click
from email_validator import EmailNotValidError, validate_email
from flask import Flask
from flask.cli import with_appcontext

from app.auth.hashing import hasher
from app.auth.login_flow import utcnow
from app.extensions import db
from app.messages import message_for
from app.services import accounts
from app.services.accounts import InvalidFields


@click.command("create-admin")
@click.option("--email", prompt="Email", help="The administrator's email address (their login).")
@click.option("--username", prompt="Username")
@click.option("--first-name", prompt="First name")
@click.option("--last-name", prompt="Last name")
@click.option("--password", prompt="Password", hide_input=True, confirmation_prompt=True,
              help="Prompted (hidden, twice) when not given. Must pass the password policy.")
@with_appcontext
def create_admin(email: str, username: str, first_name: str, last_name: str, password: str) -> None:
    """Create a verified administrator account. Refuses weak passwords and taken emails/usernames."""
    problems = []
    try:
        validate_email(email, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        problems.append("email: Enter a valid email address, like name@example.com.")
    if not 3 <= len(username.strip()) <= 40:
        problems.append("username: Use between 3 and 40 characters.")
    if not problems:
        try:
            user = accounts.create_admin(db.session, username=username, email=email, first_name=first_name,
                                         last_name=last_name, password=password, hasher=hasher, now=utcnow())
        except InvalidFields as error:
            problems = [f"{field}: {message_for(code)}" for field, codes in error.errors.items() for code in codes]
        else:
            click.echo(f"Administrator {user.username} <{user.email}> created. They must set up two-factor "
                       "authentication at their first login.")
            return
    for problem in problems:
        click.echo(f"Error: {problem}", err=True)
    raise SystemExit(1)


def register_auth_commands(app: Flask) -> None:
    app.cli.add_command(create_admin)
