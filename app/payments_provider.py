"""The app-wide payment provider, kept in `app.extensions["payment_provider"]`.

The mock (app/services/payments.py) is the default; a real provider implementing the
`PaymentProvider` protocol can be put in its place before the first request, e.g.
`app.extensions["payment_provider"] = StripeProvider(...)`. One instance per process: its
idempotency memory must be shared by every request of that process.
"""
from __future__ import annotations

from flask import Flask, current_app

from app.services.payments import MockProvider, PaymentProvider

EXTENSION_KEY = "payment_provider"


def init_payment_provider(app: Flask) -> None:
    name = app.config.get("PAYMENT_PROVIDER", "mock")
    if EXTENSION_KEY in app.extensions:
        return
    if name != "mock":
        raise RuntimeError(f"unknown PAYMENT_PROVIDER {name!r}: only 'mock' ships with Guichet")
    app.extensions[EXTENSION_KEY] = MockProvider()


def payment_provider() -> PaymentProvider:
    return current_app.extensions[EXTENSION_KEY]
