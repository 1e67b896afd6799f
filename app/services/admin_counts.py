"""The accounts and staff counts on the admin overview (/admin/), in one SQL statement.

The same figures as `users_admin.count_by_role`, `people.count_people` and
`invitations.count_by_state` (the invitation states come from `invitations.state_condition`),
but those take eight round trips to the database; the dashboard asks on every view, and
these counts are not cached (nothing invalidates them), so they are read in one.
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
                              for state in STATES)).select_from(Invitation)
    parts = [part.subquery() for part in (users, people, invitations)]  # one row each: a cross join
    return sa.select(*parts).select_from(parts[0]).join(parts[1], sa.true()).join(parts[2], sa.true())


def account_counts(session: Session, *, now: datetime) -> dict[str, dict[str, int]]:
    """{"users": {role…, "disabled"}, "people": {"total", "with_account", "without_account"},
    "invitations": {state…}}; invitations are pending or expired as of `now`."""
    row = session.execute(_counts_statement(), {"now": now}).one()._mapping
    return {
        "users": {**{role: row[f"role_{role}"] for role in ROLES}, "disabled": row["disabled"]},
        "people": {"total": row["people"], "with_account": row["with_account"],
                   "without_account": row["people"] - row["with_account"]},
        "invitations": {state: row[f"state_{state}"] for state in STATES},
    }
