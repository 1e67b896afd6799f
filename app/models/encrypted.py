"""Columns stored encrypted, with keys that are not in the database.

A TOTP secret read from a stolen dump or backup would give its holder the second factor of the
account (staff and admins included). Encrypted here with Fernet (AES-128-CBC and HMAC-SHA256,
from `cryptography`), the dump alone gives nothing.

Keys: FIELD_ENCRYPTION_KEYS (comma-separated), or SECRET_KEY when it is not set, each stretched
by HKDF-SHA256 into a Fernet key (as django-fernet-fields does). The first key encrypts; every
key decrypts, so a key is rotated by putting the new one first, running
`flask users reencrypt-secrets`, then dropping the old one. Values written before this existed
(plain base32 TOTP secrets) are read as they are, and encrypted by that command.
"""
from __future__ import annotations

import base64
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

HKDF_INFO = b"guichet field encryption v1"
FERNET_PREFIX = "gAAAAA"  # every Fernet token starts so (version byte 0x80); base32 secrets never do


def fernet_key(secret: str) -> bytes:
    """A Fernet key made from any secret string."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(raw)


class FieldCipher:
    def __init__(self, secrets: Sequence[str]):
        if not secrets:
            raise ValueError("at least one key is needed to encrypt columns")
        self._fernet = MultiFernet([Fernet(fernet_key(secret)) for secret in secrets])

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str | None:
        """The clear text; None when no key opens it (the keys were changed without re-encrypting)."""
        if not is_encrypted(stored):
            return stored  # written before encryption: still plain
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode()
        except InvalidToken:
            log.error("an encrypted column could not be decrypted: FIELD_ENCRYPTION_KEYS (or SECRET_KEY) "
                      "no longer holds the key it was written with")
            return None

    def reencrypt(self, stored: str) -> str | None:
        """`stored` encrypted with the first key (a plain value is encrypted, a token rotated);
        None when no key opens it."""
        if not is_encrypted(stored):
            return self.encrypt(stored)
        try:
            return self._fernet.rotate(stored.encode("ascii")).decode("ascii")
        except InvalidToken:
            return None


def is_encrypted(stored: str) -> bool:
    return stored.startswith(FERNET_PREFIX)


_cipher: FieldCipher | None = None


def configure_field_encryption(secrets: Sequence[str]) -> FieldCipher:
    """Called by create_app: the keys every EncryptedString column uses in this process."""
    global _cipher
    _cipher = FieldCipher(secrets)
    return _cipher


def field_cipher() -> FieldCipher:
    if _cipher is None:
        raise RuntimeError("column encryption is not configured (create_app does it)")
    return _cipher


class EncryptedString(sa.TypeDecorator):
    """A string column holding a Fernet token of its value (about 2.5 times its length + 60)."""

    impl = sa.String(255)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        return None if value is None else field_cipher().encrypt(value)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        return None if value is None else field_cipher().decrypt(value)
