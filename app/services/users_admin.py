"""What an admin does to other accounts (SPEC §7): change a role, disable or enable, revoke sessions.

The last active admin can never be demoted or disabled, so the shop always keeps someone
able to manage it. The admin rows are locked (SELECT … FOR UPDATE on PostgreSQL) while
checking, so two admins demoting each other at once cannot both succeed.

Disabling also revokes the user's sessions. A role change keeps them: the session loader
(app/auth/loader.py) notices the new role on the user's next request and rotates the
session id. Writes go through the ORM, so the per-request user cache is invalidated at commit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Role, User, UserSession
from app.services import audit
from app.services.errors import Conflict, DomainError, NotFound

ROLES = (Role.CUSTOMER.value, Role.STAFF.value, Role.ADMIN.value)
PAGE_SIZE = 25


@dataclass(frozen=True)
class AdminChange:
    """The user after the change and the public ids of the sessions that were revoked."""

    user: User
    revoked_sessions: list[str] = field(default_factory=list)
    old_role: str | None = None


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    return user


def change_role(session: Session, user_id: int, new_role: str, *, actor_id: int, now: datetime,
                ip_address: str | None = None) -> AdminChange:
    if new_role not in ROLES:
        raise DomainError("role_invalid", field="role")
    user = get_user(session, user_id)
    old_role = user.role
    if old_role == new_role:
        raise DomainError("role_unchanged", field="role")
    if old_role == Role.ADMIN.value:
        _keep_one_admin(session, user)
    user.role = new_role
    audit.record(session, "role_changed", actor_id=actor_id, subject_user_id=user.id, ip_address=ip_address,
                 old_role=old_role, new_role=new_role)
    session.commit()
    return AdminChange(user=user, old_role=old_role)


def disable_user(session: Session, user_id: int, *, actor_id: int, now: datetime,
                 ip_address: str | None = None) -> AdminChange:
    user = get_user(session, user_id)
    if user.id == actor_id:
        raise DomainError("cannot_disable_self")
    if user.is_disabled:
        raise Conflict("user_already_disabled")
    if user.role == Role.ADMIN.value:
        _keep_one_admin(session, user)
    user.disabled_at = now
    revoked = _revoke_sessions(session, user, now)
    audit.record(session, "account_disabled", actor_id=actor_id, subject_user_id=user.id,
                 ip_address=ip_address, sessions_revoked=len(revoked))
    session.commit()
    return AdminChange(user=user, revoked_sessions=revoked)


def enable_user(session: Session, user_id: int, *, actor_id: int, now: datetime,
                ip_address: str | None = None) -> AdminChange:
    user = get_user(session, user_id)
    if not user.is_disabled:
        raise Conflict("user_not_disabled")
    user.disabled_at = None
    audit.record(session, "account_enabled", actor_id=actor_id, subject_user_id=user.id, ip_address=ip_address)
    session.commit()
    return AdminChange(user=user)


def revoke_user_sessions(session: Session, user_id: int, *, actor_id: int, now: datetime,
                         ip_address: str | None = None) -> AdminChange:
    user = get_user(session, user_id)
    revoked = _revoke_sessions(session, user, now)
    if not revoked:
        raise Conflict("no_sessions_to_revoke")
    audit.record(session, "sessions_revoked", actor_id=actor_id, subject_user_id=user.id,
                 ip_address=ip_address, count=len(revoked), by_admin=True)
    session.commit()
    return AdminChange(user=user, revoked_sessions=revoked)


def active_admin_count(session: Session) -> int:
    return session.scalar(
        sa.select(sa.func.count(User.id)).where(User.role == Role.ADMIN.value, User.disabled_at.is_(None))
    )


def _keep_one_admin(session: Session, leaving: User) -> None:
    """Refuse when `leaving` is the only active admin (rows locked while we count)."""
    admins = session.scalars(
        sa.select(User.id).where(User.role == Role.ADMIN.value, User.disabled_at.is_(None))
        .order_by(User.id).with_for_update()
    ).all()
    if not [admin_id for admin_id in admins if admin_id != leaving.id]:
        raise Conflict("last_admin")


def _revoke_sessions(session: Session, user: User, now: datetime) -> list[str]:
    active = session.scalars(
        sa.select(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    ).all()
    for row in active:
        row.revoked_at = now
    return [row.public_id for row in active]


# --------------------------------------------------------------------------- reading
def search_users(session: Session, *, query: str = "", role: str | None = None, status: str | None = None,
                 page: int = 1) -> tuple[list[User], int]:
    """Users whose username, email or names contain every word of `query`, newest first."""
    statement = sa.select(User)
    if role in ROLES:
        statement = statement.where(User.role == role)
    if status == "disabled":
        statement = statement.where(User.disabled_at.is_not(None))
    elif status == "active":
        statement = statement.where(User.disabled_at.is_(None))
    for word in (query or "").split()[:5]:
        pattern = f"%{_escape_like(word.lower())}%"
        statement = statement.where(sa.or_(*(
            sa.func.lower(column).like(pattern, escape="\\")
            for column in (User.username, User.email, User.first_name, User.last_name)
        )))
    total = session.scalar(sa.select(sa.func.count()).select_from(statement.subquery()))
    users = session.scalars(
        statement.order_by(User.created_at.desc(), User.id.desc())
        .limit(PAGE_SIZE).offset((max(page, 1) - 1) * PAGE_SIZE)
    ).all()
    return list(users), total


def user_sessions(session: Session, user_id: int) -> list[UserSession]:
    return list(session.scalars(
        sa.select(UserSession).where(UserSession.user_id == user_id)
        .order_by(UserSession.revoked_at.is_not(None), UserSession.last_seen_at.desc())
    ))


def count_by_role(session: Session) -> dict[str, int]:
    rows = session.execute(sa.select(User.role, sa.func.count(User.id)).group_by(User.role)).all()
    counts = dict.fromkeys(ROLES, 0)
    counts.update({role: count for role, count in rows})
    counts["disabled"] = session.scalar(sa.select(sa.func.count(User.id)).where(User.disabled_at.is_not(None)))
    return counts


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
