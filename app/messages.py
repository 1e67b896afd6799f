"""The one table of user-facing messages for domain error codes (a French table can follow).

Services raise `DomainError(code)`; views look the code up here. Forms keep their own
field messages in forms.py and templates keep their own text.
"""
from __future__ import annotations

MESSAGES: dict[str, str] = {
    # generic
    "not_found": "We could not find that page.",
    "forbidden": "You do not have access to this page.",
    "rate_limited": "Too many attempts. Please wait a minute and try again.",
    # two-factor authentication
    "2fa_code_invalid": "That code is not valid. Enter the current 6-digit code from your app, "
                        "or one of your recovery codes.",
    "2fa_password_or_code_wrong": "Your password or your code is not right. Please try again.",
    "2fa_already_enabled": "Two-factor authentication is already on for your account.",
    "2fa_not_enabled": "Two-factor authentication is not on for this account.",
    "2fa_reset_identity_required": "Say how you checked this person's identity (at least 10 characters).",
    "2fa_login_expired": "Your sign-in took more than 5 minutes. Please log in again.",
    "2fa_setup_expired": "The setup took too long, so we made a new key. Please scan the new QR code.",
    "2fa_required_for_staff": "Staff and admin accounts must turn on two-factor authentication "
                              "before using staff pages. Please set it up now.",
}

ERROR_PAGES: dict[int, tuple[str, str]] = {
    400: ("Bad request", "Your browser sent something we could not understand. Please go back and try again."),
    401: ("Please log in", "You need to log in to see this page."),
    403: ("Access denied", "You do not have access to this page."),
    404: ("Page not found", "We could not find that page. It may have moved, or the link may be wrong."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too large", "What you sent is too large."),
    429: ("Too many requests", "You have tried that too many times. Please wait a moment and try again."),
    500: ("Something went wrong", "An unexpected error happened on our side. It has been logged; please try again."),
    503: ("Temporarily unavailable", "Guichet is busy or under maintenance. Please try again in a few minutes."),
}


def message_for(code: str, **params) -> str:
    """English text for a domain error code; unknown codes fall back to a generic sentence."""
    template = MESSAGES.get(code)
    if template is None:
        return "Something went wrong. Please try again."
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template
