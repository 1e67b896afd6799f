"""The scanner-token state in the app's shared cache (Redis in production): what the check-in
API reads instead of the database on each scan, and its deletion after the writes that stop a
token (app/services/scanner_tokens.py explains what is cached and for how long)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask import current_app, has_app_context

from app.extensions import cache, db
from app.services.scanner_tokens import (
    install_token_cache_invalidation,
    staff_id_for_token,
    token_cache_keys,
)


def staff_id_for_bearer(token: str, *, now: datetime) -> int | None:
    seconds = int(current_app.config["SCANNER_TOKEN_CACHE_SECONDS"])
    return staff_id_for_token(db.session, token, now=now, cache=cache if seconds > 0 else None,
                              cache_seconds=seconds)


def forget_cached_tokens(*, user_ids: Iterable[int] = (), token_hashes: Iterable[str] = ()) -> None:
    """For code that stops tokens with a bulk UPDATE (the ORM listener does not see those)."""
    _delete(token_cache_keys(db.session, user_ids=user_ids, token_hashes=token_hashes))


def _delete(keys: set[str]) -> None:
    if not keys or not has_app_context():
        return
    try:
        cache.delete_many(*keys)
    except Exception:  # noqa: BLE001 - the short TTL still ends the cached state
        current_app.logger.warning("scanner token cache unavailable; %d entries expire on their own", len(keys))


def install() -> None:
    install_token_cache_invalidation(_delete)
