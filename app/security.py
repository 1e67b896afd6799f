"""Security headers on every response."""
from __future__ import annotations

from flask import current_app, request

CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "media-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
CONTENT_SECURITY_POLICY = "; ".join(CSP_DIRECTIVES)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Permissions-Policy", "camera=(self), microphone=(), geolocation=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def set_security_headers(response):
    """Each header unless the view set its own. The names present are read once: this runs on
    every response, and each `Headers.setdefault` scanned the whole list again."""
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    wanted = SECURITY_HEADERS + (HSTS,) if current_app.config.get("ENV_NAME") == "production" else SECURITY_HEADERS
    for name, value in wanted:
        if name.lower() not in present:
            headers.add(name, value)
    if request.endpoint != "static" and "cache-control" not in present:
        # Pages can hold personal data: keep them out of shared caches.
        headers.add("Cache-Control", "no-store" if request.cookies else "private, no-cache")
    return response
