"""Short-lived cache of what every logged-in request reads: the session row's state and the user.

Entries live `USER_CACHE_SECONDS` in the shared cache (Redis in production, so every instance
sees the same state). Every ORM write to a `User` or `UserSession` row deletes its entry after
the commit (SQLAlchemy session events below), so a revoke, a disable or a role change made on
any instance takes effect on the next request. Code that changes those rows with a bulk
`UPDATE` statement must call `invalidate_user_cache` / `invalidate_session_cache` itself.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict
from sqlalchemy.orm.util import identity_key

from app import prefetch
from app.extensions import cache, db
from app.models import User, UserSession

# Never copied into the cache: they stay in the database only (loaded on access when needed).
_SECRET_USER_COLUMNS = {"password_hash", "user_key", "totp_secret"}
_PENDING_KEYS = "auth_cache_keys"


def session_cache_key(public_id: str) -> str:
    return f"auth:session:{public_id}"


def user_cache_key(user_id: int) -> str:
    return f"auth:user:{user_id}"


def _timeout() -> int:
    return int(current_app.config.get("USER_CACHE_SECONDS", 30))


# --------------------------------------------------------------------------- reads
def session_state(public_id: str) -> dict | None:
    """{"user_id", "revoked", "last_seen"} for a session row, or None when there is no such row."""
    key = session_cache_key(public_id)
    state = prefetch.get(key)
    if state is None:
        row = db.session.scalar(sa.select(UserSession).where(UserSession.public_id == public_id))
        if row is None:
            return None
        state = {"user_id": row.user_id, "revoked": row.revoked_at is not None,
                 "last_seen": row.last_seen_at.isoformat()}
        cache.set(key, state, timeout=_timeout())
    return state


def cached_user(user_id: int) -> User | None:
    """The user, attached to `db.session`, from the cache when possible (no query)."""
    existing = db.session.identity_map.get(identity_key(User, user_id))
    if existing is not None:
        return existing
    key = user_cache_key(user_id)
    data = prefetch.get(key)
    if data is None:
        user = db.session.get(User, user_id)
        if user is not None:
            cache.set(key, _snapshot(user), timeout=_timeout())
        return user
    return _attach_snapshot(data)


def _attach_snapshot(data: dict) -> User:
    """The cached columns as a persistent, unmodified User in `db.session`, without a query.

    Built as a load builds it: no constructor, the values written straight into the new
    instance's dict (a fresh instance has no change history to keep; `set_committed_value`,
    one call per column, cost 40 % more), then attached with `add`. Every signed-in request
    runs this: the constructor and `merge` (which copies every attribute into a second
    instance) were about 2 % of a signed-in page's instructions (bench/instructions.py).
    """
    user = User.__mapper__.class_manager.new_instance()
    instance_dict(user).update(data)
    make_transient_to_detached(user)  # columns left out (secrets) load from the database on access
    db.session.add(user)
    return user


def _snapshot(user: User) -> dict:
    columns = sa.inspect(User).column_attrs
    return {c.key: getattr(user, c.key) for c in columns if c.key not in _SECRET_USER_COLUMNS}


# --------------------------------------------------------------------------- invalidation
def invalidate_session_cache(public_id: str) -> None:
    cache.delete(session_cache_key(public_id))


def invalidate_user_cache(user_id: int) -> None:
    """Forget the user and every one of their sessions (e.g. after a bulk UPDATE)."""
    public_ids = db.session.scalars(sa.select(UserSession.public_id).where(UserSession.user_id == user_id))
    cache.delete_many(user_cache_key(user_id), *(session_cache_key(p) for p in public_ids))


def _collect_written_rows(session: Session, _flush_context) -> None:
    keys = session.info.setdefault(_PENDING_KEYS, set())
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, User) and obj.id is not None:
            keys.add(user_cache_key(obj.id))
        elif isinstance(obj, UserSession) and obj.public_id:
            keys.add(session_cache_key(obj.public_id))


def _delete_after_commit(session: Session) -> None:
    keys = session.info.pop(_PENDING_KEYS, None)
    if keys and has_app_context():
        cache.delete_many(*keys)


def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEYS, None)


_listening = False


def listen_for_writes() -> None:
    """Install the session listeners once per process (every app shares the ORM Session class)."""
    global _listening
    if _listening:
        return
    sa.event.listen(Session, "after_flush", _collect_written_rows)
    sa.event.listen(Session, "after_commit", _delete_after_commit)
    sa.event.listen(Session, "after_rollback", _forget_after_rollback)
    _listening = True
