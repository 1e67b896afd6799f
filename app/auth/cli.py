"""`flask create-admin`: the first administrator (flags, or prompts for what is missing); and
`flask users reencrypt-secrets` after a change of FIELD_ENCRYPTION_KEYS."""
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


@click.command("reencrypt-secrets")
@with_appcontext
def reencrypt_secrets() -> None:
    """Encrypt every TOTP secret with the first key of FIELD_ENCRYPTION_KEYS (run after adding a
    key, before removing the old one; also encrypts secrets stored before encryption existed)."""
    from app.models.encrypted import field_cipher
    from app.services.two_factor import reencrypt_totp_secrets

    rewritten, unreadable = reencrypt_totp_secrets(db.session, field_cipher())
    click.echo(f"Re-encrypted {rewritten} two-factor secret{'s' if rewritten != 1 else ''} with the first key.")
    if unreadable:
        click.echo(f"{len(unreadable)} secret(s) open with none of the keys (user ids "
                   f"{', '.join(map(str, unreadable))}): put the old key back in FIELD_ENCRYPTION_KEYS, "
                   "or reset their two-factor authentication.", err=True)
        raise SystemExit(1)


def register_auth_commands(app: Flask) -> None:
    app.cli.add_command(create_admin)
    from app.cli import users_group

    users_group(app).add_command(reencrypt_secrets)
