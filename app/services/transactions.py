"""Committing without paying for it twice: what a service read stays usable after its commit."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session, scoped_session


def commit_keeping_loaded(session: Session, only: Iterable[object] | None = None) -> None:
    """Commit without expiring what the session has loaded (or only the objects in `only`).

    By default a commit expires every loaded object, so touching one afterwards reads it again
    (a SELECT per object). Callers use this where what they loaded cannot have changed in a
    way they rely on, or is re-checked by a conditional UPDATE anyway. Anything the transaction
    changed behind the ORM's back (a Core UPDATE) must not be kept: pass `only` then.
    """
    real = session.registry() if isinstance(session, scoped_session) else session
    kept, real.expire_on_commit = real.expire_on_commit, False
    try:
        real.commit()
    finally:
        real.expire_on_commit = kept
    if only is not None:
        keep = {id(obj) for obj in only}
        for obj in list(real.identity_map.values()):
            if id(obj) not in keep:
                real.expire(obj)
