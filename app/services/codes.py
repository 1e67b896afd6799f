"""Codes that people read, type or hear: order codes, invitation codes,
password-reset one-time codes.

The alphabet leaves out look-alikes (0/O, 1/I/L), so a code copied by hand
is either right or clearly malformed; we reject rather than guess.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PREFIX = "GCH"
ORDER_CODE_LENGTH = 6
INVITATION_CODE_LENGTHS = (6, 5)  # ~54 bits from secrets: too many to guess
ONE_TIME_CODE_DIGITS = 6

ORDER_CODE_RE = re.compile(rf"{PREFIX}-[{ALPHABET}]{{{ORDER_CODE_LENGTH}}}")
INVITATION_CODE_RE = re.compile(rf"{PREFIX}-[{ALPHABET}]{{6}}-[{ALPHABET}]{{5}}")

# Separators people (and word processors) put in codes they copy.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212_.]+")
_SIX_DIGITS = re.compile(r"[0-9]{6}")


def random_chars(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def new_order_code() -> str:
    """'GCH-7F3K9Q': short enough to read on the phone; the order id stays the key."""
    return f"{PREFIX}-{random_chars(ORDER_CODE_LENGTH)}"


def new_invitation_code() -> str:
    first, second = INVITATION_CODE_LENGTHS
    return f"{PREFIX}-{random_chars(first)}-{random_chars(second)}"


def normalise_invitation_code(text: str | None) -> str | None:
    """The canonical 'GCH-XXXXXX-YYYYY', or None when the text cannot be one.

    Case, spaces, dashes and a missing 'GCH' prefix are forgiven. Look-alikes
    are not mapped: neither O nor 0 (nor 1, I, L) is in the alphabet, so there
    is nothing to map them to.
    """
    if not isinstance(text, str) or len(text) > 64:
        return None
    compact = _SEPARATORS.sub("", text).upper()
    first, second = INVITATION_CODE_LENGTHS
    if len(compact) == len(PREFIX) + first + second and compact.startswith(PREFIX):
        compact = compact[len(PREFIX) :]
    if len(compact) != first + second or any(c not in ALPHABET for c in compact):
        return None
    return f"{PREFIX}-{compact[:first]}-{compact[first:]}"


def new_six_digit_code() -> str:
    return f"{secrets.randbelow(10**ONE_TIME_CODE_DIGITS):0{ONE_TIME_CODE_DIGITS}d}"


def normalise_six_digit_code(text: str | None) -> str | None:
    """'123 456' -> '123456'; None for anything but six ASCII digits."""
    if not isinstance(text, str) or len(text) > 32:
        return None
    compact = _SEPARATORS.sub("", text)
    return compact if _SIX_DIGITS.fullmatch(compact) else None


def hash_code(code: str, *, pepper: bytes | str) -> str:
    """HMAC-SHA256 hex of a code, keyed with a server-side pepper.

    Why not plain SHA-256: a 6-digit reset code has a million values and an
    invitation code ~54 bits, both brute-forceable from a leaked table. With
    the pepper kept out of the database (config), the table alone is useless.
    Pass the normalised code, and the same pepper when checking.
    """
    key = pepper.encode("utf-8") if isinstance(pepper, str) else pepper
    if not key:
        raise ValueError("hash_code needs a non-empty pepper")
    return hmac.new(key, code.encode("utf-8"), hashlib.sha256).hexdigest()


def codes_equal(a: str, b: str) -> bool:
    """Constant-time comparison; works on non-ASCII text too (compared as UTF-8)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
