"""The staff directory (SPEC §4): people an admin records before inviting them.

A person is not an account: it becomes one when an invitation code is activated
(app/services/invitations.py). Phones are stored in E.164; emails lower-cased.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Person, Role
from app.services.errors import Conflict, DomainError, NotFound
from app.services.invitations import IssuedInvitation, add_invitation
from app.services.phones import normalise_phone

PERSON_ROLES = (Role.STAFF.value, Role.ADMIN.value)
PAGE_SIZE = 25


@dataclass(frozen=True)
class PersonData:
    """What an admin types about a person (already shaped by the form)."""

    first_name: str
    last_name: str
    phone1: str
    intended_role: str
    phone2: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class InvitationSettings:
    """How to make a code: the hashing pepper and how long it stays valid."""

    pepper: str | bytes
    valid_days: int


def create_person(session: Session, data: PersonData, *, actor_id: int | None, now: datetime,
                  invite: InvitationSettings | None = None,
                  ip_address: str | None = None) -> tuple[Person, IssuedInvitation | None]:
    """Record a person and, when `invite` is given, their first invitation code, in one transaction."""
    person = Person()
    _apply(session, person, data)
    session.add(person)
    session.flush()
    issued = None
    if invite is not None:
        issued = add_invitation(session, person, actor_id=actor_id, now=now, pepper=invite.pepper,
                                valid_days=invite.valid_days, ip_address=ip_address)
    session.commit()
    return person, issued


def update_person(session: Session, person_id: int, data: PersonData) -> Person:
    """Edit a directory record. The role of an existing account is changed on the user page, not here."""
    person = get_person(session, person_id)
    _apply(session, person, data)
    session.commit()
    return person


def delete_person(session: Session, person_id: int) -> None:
    """Remove a record and its invitations; a linked account keeps existing (manage it as a user)."""
    person = get_person(session, person_id)
    session.delete(person)
    session.commit()


def get_person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound()
    return person


def search_people(session: Session, *, query: str = "", role: str | None = None, page: int = 1):
    """People whose names, email or phone contain `query`, newest first, one page at a time."""
    statement = sa.select(Person)
    if role in PERSON_ROLES:
        statement = statement.where(Person.intended_role == role)
    for word in (query or "").split()[:5]:
        pattern = f"%{_escape_like(word.lower())}%"
        digits = "".join(c for c in word if c.isdigit())
        conditions = [
            sa.func.lower(Person.first_name).like(pattern, escape="\\"),
            sa.func.lower(Person.last_name).like(pattern, escape="\\"),
            sa.func.lower(sa.func.coalesce(Person.email, "")).like(pattern, escape="\\"),
        ]
        if len(digits) >= 3:
            conditions += [Person.phone1.like(f"%{digits}%"),
                           sa.func.coalesce(Person.phone2, "").like(f"%{digits}%")]
        statement = statement.where(sa.or_(*conditions))
    total = session.scalar(sa.select(sa.func.count()).select_from(statement.subquery()))
    page = max(page, 1)
    people = session.scalars(
        statement.order_by(Person.created_at.desc(), Person.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    return people, total


def count_people(session: Session) -> dict[str, int]:
    with_account = session.scalar(sa.select(sa.func.count(Person.id)).where(Person.user_id.is_not(None)))
    total = session.scalar(sa.select(sa.func.count(Person.id)))
    return {"total": total, "with_account": with_account, "without_account": total - with_account}


def _apply(session: Session, person: Person, data: PersonData) -> None:
    if data.intended_role not in PERSON_ROLES:
        raise DomainError("person_role_invalid", field="intended_role")
    phone1 = normalise_phone(data.phone1)
    if phone1 is None:
        raise DomainError("person_phone_invalid", field="phone1")
    phone2 = None
    if data.phone2 and data.phone2.strip():
        phone2 = normalise_phone(data.phone2)
        if phone2 is None:
            raise DomainError("person_phone_invalid", field="phone2")
    email = (data.email or "").strip().lower() or None
    if email is not None:
        taken = session.scalar(sa.select(Person.id).where(Person.email == email, Person.id != person.id))
        if taken is not None:
            raise Conflict("person_email_taken", field="email")
    person.first_name = data.first_name.strip()
    person.last_name = data.last_name.strip()
    person.phone1 = phone1
    person.phone2 = phone2
    person.email = email
    person.intended_role = data.intended_role


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

