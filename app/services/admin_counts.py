"""The accounts and staff counts on the admin overview (/admin/), in one SQL statement.

The same figures as `users_admin.count_by_role`, `people.count_people` and
`invitations.count_by_state` (the invitation states come from `invitations.state_condition`),
but those take eight round trips to the database, and these are read in one. The dashboard
caches them under the statistics version (app/services/stats.py watches users, people and
invitations too) until `changes_at`: time alone turns a pending invitation into an expired one.
"""
from __future__ import annotations

import functools
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Invitation, Person, User
from app.services.invitations import STATES, state_condition
from app.services.users_admin import ROLES


@functools.cache
def _counts_statement() -> sa.Select:
    """Built once (its construction cost more CPU than running it); `now` is bound at each call."""
    count = sa.func.count
    now = sa.bindparam("now", type_=Invitation.__table__.c.expires_at.type)
    users = sa.select(*(count().filter(User.role == role).label(f"role_{role}") for role in ROLES),
                      count().filter(User.disabled_at.is_not(None)).label("disabled")).select_from(User)
    people = sa.select(count().label("people"), count(Person.user_id).label("with_account")).select_from(Person)
    invitations = sa.select(*(count().filter(state_condition(state, now)).label(f"state_{state}")
                              for state in STATES),
                            sa.func.min(Invitation.expires_at).filter(state_condition("pending", now))
                            .label("next_expiry")).select_from(Invitation)
    parts = [part.subquery() for part in (users, people, invitations)]  # one row each: a cross join
    return sa.select(*parts).select_from(parts[0]).join(parts[1], sa.true()).join(parts[2], sa.true())


def account_counts(session: Session, *, now: datetime) -> dict:
    """{"users": {role…, "disabled"}, "people": {"total", "with_account", "without_account"},
    "invitations": {state…}, "changes_at": …}; invitations are pending or expired as of `now`, and
    `changes_at` is when the first pending one expires (None if none is pending): until then,
    only a write to users, people or invitations can change these counts."""
    row = session.execute(_counts_statement(), {"now": now}).one()._mapping
    return {
        "users": {**{role: row[f"role_{role}"] for role in ROLES}, "disabled": row["disabled"]},
        "people": {"total": row["people"], "with_account": row["with_account"],
                   "without_account": row["people"] - row["with_account"]},
        "invitations": {state: row[f"state_{state}"] for state in STATES},
        "changes_at": row["next_expiry"],
    }
