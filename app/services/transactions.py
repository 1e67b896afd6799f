"""Committing without paying for it twice: what a service read stays usable after its commit."""
from __future__ import annotations

from sqlalchemy.orm import Session, scoped_session


def commit_keeping_loaded(session: Session) -> None:
    """Commit without expiring what the session has loaded.

    By default a commit expires every loaded object, so touching one afterwards reads it again
    (a SELECT per object). Callers use this where what they loaded cannot have changed in a
    way they rely on, or is re-checked by a conditional UPDATE anyway.
    """
    real = session.registry() if isinstance(session, scoped_session) else session
    kept, real.expire_on_commit = real.expire_on_commit, False
    try:
        real.commit()
    finally:
        real.expire_on_commit = kept
