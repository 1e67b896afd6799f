"""The ticket-signing key of an app: loaded once from the configuration and kept on the app.

`TICKET_SIGNING_KEY` (a PKCS#8 PEM or a base64 32-byte seed) wins. Without it (or with the
`.env.example` placeholder), development and testing use the PEM file `TICKET_SIGNING_KEY_FILE`,
created on first use; production refuses to start, because a key made on one machine would be
unknown to the other web instances.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from flask import Flask, current_app

from app.services.signing import (
    load_or_create_key_file,
    load_private_key,
    public_key_pem,
)
from config import EXAMPLE_VALUES

_EXTENSION = "guichet.ticket_keys"
_lock = threading.Lock()


class SigningKeyMissing(RuntimeError):
    """Production has no TICKET_SIGNING_KEY."""


@dataclass(frozen=True)
class TicketKeys:
    private_key: Ed25519PrivateKey
    public_key: Ed25519PublicKey
    public_pem: bytes


def ticket_keys(app: Flask | None = None) -> TicketKeys:
    """The app's signing keys, loaded on first use and then cached on the app (≈ a dict lookup)."""
    app = app or current_app._get_current_object()
    keys = app.extensions.get(_EXTENSION)
    if keys is None:
        with _lock:
            keys = app.extensions.get(_EXTENSION)
            if keys is None:
                keys = _load(app)
                app.extensions[_EXTENSION] = keys
    return keys


def signing_key() -> Ed25519PrivateKey:
    return ticket_keys().private_key


def public_key() -> Ed25519PublicKey:
    return ticket_keys().public_key


def check_signing_key(app: Flask) -> None:
    """Production (where TICKET_SIGNING_KEY is a required secret) loads the key at start, so an
    unreadable key stops the app at once, naming the variable, instead of failing the first
    ticket. Elsewhere it loads on first use."""
    if "TICKET_SIGNING_KEY" not in app.config.get("REQUIRED_SECRETS", ()):
        return
    from app import ConfigurationError

    try:
        app.extensions[_EXTENSION] = _load(app)
    except (SigningKeyMissing, ValueError) as error:
        raise ConfigurationError(
            f"TICKET_SIGNING_KEY is not a usable Ed25519 private key ({error}); set TICKET_SIGNING_KEY "
            "to a PKCS#8 PEM or a base64 32-byte seed before starting Guichet in production."
        ) from None


def _is_placeholder(value: str) -> bool:
    return value.strip().lower() in EXAMPLE_VALUES or "change-me" in value


def _load(app: Flask) -> TicketKeys:
    configured = app.config.get("TICKET_SIGNING_KEY")
    if configured and not (_is_placeholder(configured) and app.config.get("ENV_NAME") != "production"):
        private_key = load_private_key(configured)
    elif app.config.get("ENV_NAME") == "production":
        raise SigningKeyMissing(
            "TICKET_SIGNING_KEY is not set: production needs the same signing key on every instance."
        )
    else:
        private_key = load_or_create_key_file(app.config["TICKET_SIGNING_KEY_FILE"])
    return TicketKeys(private_key, private_key.public_key(), public_key_pem(private_key))
