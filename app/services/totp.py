"""Time-based one-time passwords (RFC 6238, via pyotp) and recovery codes (SPEC §3)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime

import pyotp

from app.services.codes import ALPHABET, random_chars

ISSUER = "Guichet"
STEP_SECONDS = 30
DIGITS = 6
RECOVERY_CODE_COUNT = 10
RECOVERY_GROUP = 5  # "XXXXX-XXXXX": 10 chars of a 31-letter alphabet, ~50 bits

_WHITESPACE = re.compile(r"\s+")
_TOTP_CODE = re.compile(rf"[0-9]{{{DIGITS}}}")
_RECOVERY_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212_.]+")


def new_secret() -> str:
    """160 random bits (RFC 4226's recommended key size) as 32 base32 characters."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account_email: str, issuer: str = ISSUER) -> str:
    """The otpauth:// URI that authenticator apps read from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account_email, issuer_name=issuer)


def time_step(now: datetime) -> int:
    """Naive datetimes are taken as UTC (the project stores UTC; SQLite drops tzinfo)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return int(now.timestamp()) // STEP_SECONDS


def verify_totp(
    secret: str,
    code: str,
    *,
    now: datetime,
    last_used_step: int | None,
    window: int = 1,
) -> int | None:
    """The time step the code belongs to, or None.

    A step at or before `last_used_step` is refused, so an accepted code (or
    an older one) cannot be replayed; store the returned step as the new
    `last_used_step`. Garbage input gives None, never an exception.
    """
    if not isinstance(code, str) or len(code) > 32:
        return None
    code = _WHITESPACE.sub("", code)
    if not _TOTP_CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = time_step(now)
    # Nearest steps first: a collision with a farther step must not win.
    for offset in sorted(range(-window, window + 1), key=abs):
        step = current + offset
        if last_used_step is not None and step <= last_used_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes(n: int = RECOVERY_CODE_COUNT) -> list[str]:
    """n distinct codes like 'K7QXM-4HT2P', to be shown once and stored hashed."""
    codes: set[str] = set()
    while len(codes) < n:
        codes.add(f"{random_chars(RECOVERY_GROUP)}-{random_chars(RECOVERY_GROUP)}")
    return sorted(codes)


def normalise_recovery_code(text: str) -> str:
    """Canonical 'XXXXX-XXXXX', or '' when the text cannot be a recovery code."""
    if not isinstance(text, str) or len(text) > 64:
        return ""
    compact = _RECOVERY_SEPARATORS.sub("", text).upper()
    if len(compact) != 2 * RECOVERY_GROUP or any(c not in ALPHABET for c in compact):
        return ""
    return f"{compact[:RECOVERY_GROUP]}-{compact[RECOVERY_GROUP:]}"


def hash_recovery_code(code: str) -> str:
    """SHA-256 hex of the normalised code.

    A fast unsalted hash is enough here: each code carries ~50 random bits
    from `secrets`, not a user-chosen password, so there is no dictionary to
    try and bcrypt's cost would only slow down the login step.
    """
    normalised = normalise_recovery_code(code)
    if not normalised:
        raise ValueError("not a recovery code")
    return hashlib.sha256(normalised.encode("ascii")).hexdigest()


def match_recovery_code(text: str, hashes: list[str]) -> str | None:
    """The stored hash that `text` matches, so the caller can delete it (single use)."""
    normalised = normalise_recovery_code(text)
    if not normalised:
        return None
    candidate = hash_recovery_code(normalised)
    found = None
    for stored in hashes:  # no early exit: the time does not depend on the position
        if hmac.compare_digest(candidate.encode("ascii"), stored.encode("utf-8")):
            found = stored
    return found
