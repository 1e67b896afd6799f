"""Phone numbers for the people directory (SPEC §4), stored in E.164."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "FR"
MAX_INPUT_LENGTH = (
    64  # phonenumbers refuses > 250; anything past 64 is not a phone number
)


def normalise_phone(
    text: str | None, default_region: str = DEFAULT_REGION
) -> str | None:
    """'06 12 34 56 78', '+33 6 12…' or '0033 6 12…' -> '+33612345678'; None if not valid.

    National numbers are read in `default_region`; '00' (or '+') switches to
    international. Validity is phonenumbers' `is_valid_number`, not mere shape.
    Never raises.
    """
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_INPUT_LENGTH:
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    # An extension cannot be kept in E.164: refuse it rather than drop it silently.
    if number.extension or not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str | None) -> str:
    """'+33612345678' -> '+33 6 12 34 56 78' for display; unparsable input comes back as is."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
