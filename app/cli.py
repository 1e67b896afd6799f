"""`flask …` commands: demo data (other areas add their own groups here)."""
from __future__ import annotations

from datetime import UTC, datetime

import click
from flask import Flask
from flask.cli import AppGroup

from app.extensions import bcrypt, db

demo_cli = AppGroup("demo", help="Demo data for trying Guichet out.")


@demo_cli.command("load")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has events or users.")
def load_demo(if_empty: bool) -> None:
    """Load the demo programme and the demo accounts."""
    from app.services.demo import (
        DEMO_ACCOUNTS,
        DEMO_PASSWORD,
        database_is_empty,
        load_demo_accounts,
        load_demo_events,
    )

    if if_empty and not database_is_empty(db.session):
        click.echo("Database already has data: demo data not loaded.")
        return
    now = datetime.now(UTC)
    events = load_demo_events(db.session, now=now)
    load_demo_accounts(db.session, password_hash=bcrypt.generate_password_hash(DEMO_PASSWORD).decode(), now=now)
    db.session.commit()
    click.echo(f"Loaded {len(events)} events and {len(DEMO_ACCOUNTS)} demo accounts (password: {DEMO_PASSWORD}).")


orders_cli = AppGroup("orders", help="Shop orders.")


@orders_cli.command("expire")
def expire_orders() -> None:
    """Expire pending orders whose seat hold has run out and release their seats (safe to run often)."""
    from app.services.orders import expire_stale_orders

    count = expire_stale_orders(db.session, now=datetime.now(UTC))
    click.echo(f"Expired {count} pending order{'s' if count != 1 else ''}; their seats are released.")


def users_group(app: Flask) -> AppGroup:
    """The `flask users` group, which several areas add commands to."""
    users = app.cli.commands.get("users")
    if users is None:
        users = AppGroup("users", help="User accounts.")
        app.cli.add_command(users)
    return users


def register(app: Flask) -> None:
    app.cli.add_command(demo_cli)
    app.cli.add_command(orders_cli)
    # accounts (issue 3): `flask create-admin`
    from app.auth.cli import register_auth_commands

    register_auth_commands(app)
    # tickets (issue 7): `flask tickets …`, and `rotate-key` in the `users` group (users_group above).
    from app.tickets.cli import register_ticket_commands

    register_ticket_commands(app)
