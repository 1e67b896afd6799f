"""Password policy (SPEC §2): length, bcrypt's 72-byte limit, personal data,
a shipped list of common passwords and a zxcvbn strength estimate.

Returns stable codes, never sentences; the view maps them to messages.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from zxcvbn import zxcvbn

MIN_LENGTH = 12
BCRYPT_MAX_BYTES = 72
MIN_ZXCVBN_SCORE = 3
MIN_PERSONAL_LENGTH = 3

COMMON_PASSWORDS_PATH = (
    Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"
)

# zxcvbn stores the user inputs in a module-level dict for the duration of a
# call, so two threads scoring at once could see each other's inputs.
_zxcvbn_lock = threading.Lock()


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """Loaded on first use, then kept: 30 000 lines read once per process."""
    with COMMON_PASSWORDS_PATH.open(encoding="utf-8") as lines:
        return frozenset(
            line.strip().lower()
            for line in lines
            if line.strip() and not line.startswith("#")
        )


def password_problems(
    password: str,
    *,
    username: str = "",
    email: str = "",
    names: Iterable[str] = (),
    min_length: int = MIN_LENGTH,
) -> list[str]:
    """Codes for every rule the password breaks, in a stable order; [] = acceptable.

    The byte limit is checked on the exact string bcrypt will receive: we
    refuse rather than truncate, and bcrypt 5 would raise anyway.
    """
    problems = []
    too_long = len(password.encode("utf-8")) > BCRYPT_MAX_BYTES
    if len(password) < min_length:
        problems.append("password_too_short")
    if too_long:
        problems.append("password_too_long")
    names = list(names)
    if _is_personal(password, username=username, email=email, names=names):
        problems.append("password_is_personal")
    if password.strip().lower() in common_passwords():
        problems.append("password_too_common")
    if (
        not too_long
        and _zxcvbn_score(password, [username, email, *names]) < MIN_ZXCVBN_SCORE
    ):
        problems.append("password_too_weak")
    return problems


def _squash(text: str) -> str:
    """Letters and digits only, lower-case: 'Lucie.Martin' and 'lucie-martin' meet."""
    return "".join(char for char in text.lower() if char.isalnum())


def _is_personal(password: str, *, username: str, email: str, names: list[str]) -> bool:
    """Contains the username, the email or its local part, or the full name.

    Single names are left to zxcvbn: refusing every password that contains
    "ann" or "rose" would be more annoying than useful.
    """
    email = (email or "").strip()
    fragments = [username or "", email, email.partition("@")[0]]
    names = [name for name in names if name and name.strip()]
    if len(names) >= 2:
        fragments += ["".join(names), "".join(reversed(names))]
    squashed = _squash(password)
    return any(
        len(_squash(fragment)) >= MIN_PERSONAL_LENGTH and _squash(fragment) in squashed
        for fragment in fragments
    )


def _zxcvbn_score(password: str, user_inputs: list[str]) -> int:
    if not password:  # zxcvbn 4.5 raises IndexError on ""
        return 0
    inputs = [value.strip().lower() for value in user_inputs if value and value.strip()]
    if email_like := [value for value in inputs if "@" in value]:
        inputs += [value.partition("@")[0] for value in email_like]
    with _zxcvbn_lock:
        return zxcvbn(password, user_inputs=inputs)["score"]
