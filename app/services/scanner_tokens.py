"""Bearer tokens for gate scanner apps calling POST /tickets/api/check-in.

A staff member creates one on the scan page (or an operator with `flask tickets create-token`),
names it after the device, copies it once into the app, and can revoke it at any time. The token
is 256 random bits; only its SHA-256 is stored. It acts for its creator, and only while that
account is an active staff member or admin, so demoting or disabling someone stops their
devices at the next scan.

On PostgreSQL, a scan of an authentic ticket code checks the token inside its one statement
(app/services/checkin.py, with `usable_token_query`): nothing is cached, a revocation counts from
its commit. Everything else (SQLite, a missing or unreadable payload, a forged one) uses
`staff_id_for_token`, which keeps the state of a usable token (owner, expiry, last use) in the
shared cache (Redis in production) for at most `CACHE_SECONDS`. Every ORM
write that can stop a token (revoking or deleting it; changing its owner's role, disabling or
deleting the owner) deletes the entry after its commit (`install_token_cache_invalidation`),
for every instance; expiry is checked on each scan. The TTL is the backstop for what that
cannot see: a bulk UPDATE of `scanner_tokens` or `users` (whose caller should delete
`token_cache_keys(...)`), or a scan that read the database just before a revocation committed
and stored the old state just after the deletion.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from itertools import chain
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from app.models import Role, ScannerToken, User
from app.services import audit
from app.services.errors import DomainError, NotFound

TOKEN_PREFIX = "gchs_"
_TOKEN_RE = re.compile(r"gchs_[A-Za-z0-9_-]{43}")
HINT_CHARS = 10
TOUCH_EVERY = timedelta(minutes=10)  # last_used_at is refreshed at most this often
STAFF_ROLES = (Role.STAFF.value, Role.ADMIN.value)
CACHE_SECONDS = 10  # a backstop only: writes delete the cached state at once

log = logging.getLogger(__name__)


class CacheLike(Protocol):
    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...


def new_token_text() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def create_scanner_token(session: Session, user: User, *, name: str, now: datetime, valid_days: int,
                         max_tokens: int, ip_address: str | None = None) -> tuple[ScannerToken, str]:
    """A new token for `user`; returns the row and the token text, which is never shown again."""
    if not user.is_staff or not user.is_active:
        raise DomainError("scanner_token_staff_only")
    name = " ".join(name.split())
    if not name:
        raise DomainError("scanner_token_name_required", field="name")
    active = session.scalar(
        sa.select(sa.func.count(ScannerToken.id)).where(
            ScannerToken.user_id == user.id, ScannerToken.revoked_at.is_(None), ScannerToken.expires_at > now
        )
    )
    if active >= max_tokens:
        raise DomainError("scanner_token_limit", limit=max_tokens)
    text = new_token_text()
    token = ScannerToken(user_id=user.id, name=name[:60], token_hash=hash_token(text),
                         hint=text[:HINT_CHARS], created_at=now, expires_at=now + timedelta(days=valid_days))
    session.add(token)
    session.flush()
    audit.record(session, "scanner_token_created", actor_id=user.id, subject_user_id=user.id,
                 ip_address=ip_address, token_id=token.id, name=token.name)
    session.commit()
    return token, text


def revoke_scanner_token(session: Session, token_id: int, *, user_id: int, now: datetime,
                         ip_address: str | None = None) -> ScannerToken:
    """Revoke one of the user's own tokens (someone else's answers NotFound)."""
    token = session.get(ScannerToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound()
    if token.revoked_at is None:
        token.revoked_at = now
        audit.record(session, "scanner_token_revoked", actor_id=user_id, subject_user_id=token.user_id,
                     ip_address=ip_address, token_id=token.id, name=token.name)
        session.commit()
    return token


def scanner_tokens_of(session: Session, user_id: int) -> list[ScannerToken]:
    return list(session.scalars(
        sa.select(ScannerToken).where(ScannerToken.user_id == user_id)
        .order_by(ScannerToken.revoked_at.is_not(None), ScannerToken.created_at.desc(), ScannerToken.id.desc())
    ))


def token_cache_key(token_hash: str) -> str:
    return f"scanner:token:{token_hash}"


def well_formed_token_hash(token: str | None) -> str | None:
    """The stored hash of a token that has our shape, or None (no query needed for the rest)."""
    if not token or not _TOKEN_RE.fullmatch(token):
        return None
    return hash_token(token)


def staff_id_for_token(session: Session, token: str | None, *, now: datetime, cache: CacheLike | None = None,
                       cache_seconds: int = CACHE_SECONDS) -> int | None:
    """The id of the active staff member or admin a bearer token acts for, or None.

    One query when the token's state is not in `cache` (only usable tokens are cached), none
    when it is; last_used_at is written (and committed) at most every TOUCH_EVERY.
    """
    token_hash = well_formed_token_hash(token)
    if token_hash is None:
        return None
    key = token_cache_key(token_hash)
    state = _cache_get(cache, key)
    fresh = state is None
    if fresh:
        state = _usable_token_state(session, token_hash, now)
        if state is None:
            return None
    if state["expires_at"] <= now:
        return None
    if state["last_used_at"] is None or now - state["last_used_at"] >= TOUCH_EVERY:
        session.execute(_TOUCH, {"token_id": state["token_id"], "now": now, "stale_before": now - TOUCH_EVERY})
        session.commit()
        state = {**state, "last_used_at": now}
        fresh = True
    if fresh:
        _cache_set(cache, key, state, cache_seconds)
    return state["user_id"]


_tokens, _users = ScannerToken.__table__, User.__table__


def usable_token_query(now) -> sa.Select:
    """(token_id, user_id, expires_at, last_used_at) of the token hashed as the bind parameter
    `bearer_token_hash` if it is usable at `now` (a bind parameter or SQL expression): neither revoked
    nor expired, its owner an active staff member or admin. The one definition of a usable
    token, for `staff_id_for_token` and for the check-in statement."""
    return (
        sa.select(_tokens.c.id.label("token_id"), _users.c.id.label("user_id"), _tokens.c.expires_at,
                  _tokens.c.last_used_at)
        .join(_users, _users.c.id == _tokens.c.user_id)
        .where(_tokens.c.token_hash == sa.bindparam("bearer_token_hash"), _tokens.c.revoked_at.is_(None),
               _tokens.c.expires_at > now, _users.c.disabled_at.is_(None),
               _users.c.role.in_([sa.literal_column(f"'{role}'") for role in STAFF_ROLES]))  # constants
    )


def touch_statement(token_id, now, stale_before) -> sa.Update:
    """Write `now` as the token's last use if the one stored is older than `stale_before`
    (`now - TOUCH_EVERY`); each argument a bind parameter or SQL expression."""
    return (
        sa.update(_tokens)
        .where(_tokens.c.id == token_id,
               sa.or_(_tokens.c.last_used_at.is_(None), _tokens.c.last_used_at <= stale_before))
        .values(last_used_at=now)
    )


_USABLE_TOKEN = usable_token_query(sa.bindparam("now", type_=_tokens.c.expires_at.type))
_TOUCH = touch_statement(sa.bindparam("token_id"), sa.bindparam("now", type_=_tokens.c.last_used_at.type),
                         sa.bindparam("stale_before", type_=_tokens.c.last_used_at.type))


def _usable_token_state(session: Session, token_hash: str, now: datetime) -> dict | None:
    row = session.execute(_USABLE_TOKEN, {"bearer_token_hash": token_hash, "now": now}).one_or_none()
    if row is None:
        return None
    return {"token_id": row.token_id, "user_id": row.user_id, "expires_at": row.expires_at,
            "last_used_at": row.last_used_at}


def _cache_get(cache: CacheLike | None, key: str) -> dict | None:
    if cache is None:
        return None
    try:
        return cache.get(key)
    except Exception:  # an unreachable cache means asking the database
        log.warning("scanner token cache unavailable; reading the database", exc_info=True)
        return None


def _cache_set(cache: CacheLike | None, key: str, state: dict, seconds: int) -> None:
    if cache is None:
        return
    try:
        cache.set(key, state, timeout=seconds)
    except Exception:  # the next scan asks the database again
        log.warning("scanner token cache unavailable; state not stored", exc_info=True)


# --------------------------------------------------------------------------- cache invalidation
_PENDING = "scanner_token_cache_keys"
_forget: list[Callable[[set[str]], None]] = []


def token_cache_keys(session: Session, *, user_ids: Iterable[int] = (), token_hashes: Iterable[str] = ()) -> set[str]:
    """The cache keys of these tokens and of every token these users hold."""
    keys = {token_cache_key(h) for h in token_hashes}
    user_ids = sorted(set(user_ids))
    if user_ids:
        hashes = session.connection().scalars(sa.select(_tokens.c.token_hash).where(_tokens.c.user_id.in_(user_ids)))
        keys.update(token_cache_key(h) for h in hashes)
    return keys


def _stops_tokens(user: User) -> bool:
    attrs = sa.inspect(user).attrs
    return any(attrs[name].history.has_changes() for name in ("role", "disabled_at"))


def _collect_stale_keys(session: Session, _flush_context, _instances) -> None:
    # Before the flush: a deleted owner's tokens go with it (ON DELETE CASCADE) and could not be found after.
    hashes, owners = set(), set()
    for obj in chain(session.dirty, session.deleted):
        if isinstance(obj, ScannerToken) and obj.token_hash:
            hashes.add(obj.token_hash)
        elif isinstance(obj, User) and obj.id is not None and (obj in session.deleted or _stops_tokens(obj)):
            owners.add(obj.id)
    if hashes or owners:
        keys = token_cache_keys(session, user_ids=owners, token_hashes=hashes)
        session.info.setdefault(_PENDING, set()).update(keys)


def _delete_after_commit(session: Session) -> None:
    keys = session.info.pop(_PENDING, None)
    if keys:
        for forget in _forget:
            forget(keys)


def _drop_after_rollback(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint
        session.info.pop(_PENDING, None)


def install_token_cache_invalidation(forget: Callable[[set[str]], None]) -> None:
    """After each commit that revoked or deleted a token, or changed the role or disabled state
    of (or deleted) its owner, call `forget(cache keys)`. Once per process, on every Session."""
    _forget[:] = [forget]
    if not sa_event.contains(Session, "after_commit", _delete_after_commit):
        sa_event.listen(Session, "before_flush", _collect_stale_keys)
        sa_event.listen(Session, "after_commit", _delete_after_commit)
        sa_event.listen(Session, "after_soft_rollback", _drop_after_rollback)
