"""The ticket-signing key of an app: loaded once from the configuration and kept on the app.

`TICKET_SIGNING_KEY` (a PKCS#8 PEM or a base64 32-byte seed) wins. Without it, development and
testing use the PEM file `TICKET_SIGNING_KEY_FILE`, created on first use; production refuses,
because a key made on one machine would be unknown to the other web instances.
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


def _load(app: Flask) -> TicketKeys:
    configured = app.config.get("TICKET_SIGNING_KEY")
    if configured:
        private_key = load_private_key(configured)
    elif app.config.get("ENV_NAME") == "production":
        raise SigningKeyMissing(
            "TICKET_SIGNING_KEY is not set: production needs the same signing key on every instance."
        )
    else:
        private_key = load_or_create_key_file(app.config["TICKET_SIGNING_KEY_FILE"])
    return TicketKeys(private_key, private_key.public_key(), public_key_pem(private_key))
