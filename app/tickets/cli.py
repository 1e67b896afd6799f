"""`flask tickets …` (public key, offline verify, scanner tokens) and `flask users rotate-key`."""
from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from app.extensions import db

tickets_cli = AppGroup("tickets", help="Ticket signing keys, offline verification and scanner tokens.")


@tickets_cli.command("export-public-key")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write the PEM to this file instead of standard output.")
def export_public_key(output: str | None) -> None:
    """Print the ticket-signing public key (PEM) that scanners verify QR codes with."""
    from app.tickets.keys import ticket_keys

    pem = ticket_keys().public_pem
    if output:
        Path(output).write_bytes(pem)
        click.echo(f"Public key written to {output}.", err=True)
    else:
        click.echo(pem.decode("ascii"), nl=False)


@tickets_cli.command("verify", with_appcontext=False)
@click.argument("payload")
@click.option("--public-key", "public_key_file", required=True, type=click.File("rb"),
              help="The PEM from /tickets/public-key.pem or `flask tickets export-public-key`.")
def verify(payload: str, public_key_file) -> None:
    """Check a QR payload offline, with the public key only (no database).

    Prints AUTHENTIC (issued by this server; the gate must still ask whether it is void or
    used), FORGED or MALFORMED. Exit status 0 for AUTHENTIC, 1 otherwise.
    """
    from app.services.checkin import authenticate
    from app.services.signing import AUTHENTIC, load_public_key

    try:
        public_key = load_public_key(public_key_file.read())
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--public-key") from None
    verdict, parsed = authenticate(public_key, payload)
    click.echo(f"{verdict} ticket {parsed.ticket_id}" if parsed else verdict)
    sys.exit(0 if verdict == AUTHENTIC else 1)


@tickets_cli.command("create-token")
@click.argument("email")
@click.option("--name", required=True, help="The device that will use it, e.g. 'Gate 3 scanner'.")
def create_token(email: str, name: str) -> None:
    """Create a scanner-app token for a staff member (printed once)."""
    from app.services.errors import DomainError
    from app.services.scanner_tokens import create_scanner_token

    user = _user_by_email(email)
    try:
        token, text = create_scanner_token(
            db.session, user, name=name, now=datetime.now(UTC),
            valid_days=current_app.config["SCANNER_TOKEN_DAYS"],
            max_tokens=current_app.config["SCANNER_TOKENS_PER_USER"])
    except DomainError as error:
        from app.messages import message_for

        raise click.ClickException(message_for(error.code, **error.params)) from None
    click.echo(f"Token for {user.email} ({token.name}), valid until {token.expires_at:%Y-%m-%d}. "
               "It is shown only now:", err=True)
    click.echo(text)


@click.command("rotate-key")
@with_appcontext
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def rotate_key(email: str, yes: bool) -> None:
    """Rotate a user's key after a compromise: old QR codes stop working, tickets are re-issued."""
    from app.admin.user_keys import notify_tickets_reissued
    from app.services.tickets import rotate_user_key, tickets_to_reissue

    user = _user_by_email(email)
    now = datetime.now(UTC)
    count = len(tickets_to_reissue(db.session, user.id, now=now))
    if not yes:
        click.confirm(f"Rotate the key of {user.email}? {count} ticket(s) get new QR codes and the old "
                      "codes will be refused at the gate.", abort=True)
    rotation = rotate_user_key(db.session, user, actor_id=None, now=now)
    with current_app.test_request_context(base_url=current_app.config["PUBLIC_BASE_URL"]):
        notify_tickets_reissued(user, rotation.reissued_ticket_ids, now)
    click.echo(f"Key of {user.email} rotated; {len(rotation.reissued_ticket_ids)} ticket(s) re-issued "
               "and emailed to the owner.")


def _user_by_email(email: str):
    from app.models import User

    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"No user with the email {email}.")
    return user


def register_ticket_commands(app: Flask) -> None:
    """Add `flask tickets`, and `rotate-key` to the `flask users` group (created if missing)."""
    app.cli.add_command(tickets_cli)
    from app.cli import users_group

    users_group(app).add_command(rotate_key)
