"""Invitation codes that turn a person of the staff directory into a staff or admin account (SPEC §4).

A code is made with `secrets` (app/services/codes.py), handed to the caller once, and only
its keyed hash (HMAC with a server-side pepper) is stored: the database never holds a
plaintext code. Activation is one transaction: the account is created or attached, linked
to the person, given the person's role, and the code is marked used by a conditional
UPDATE, so two simultaneous activations of one code cannot both succeed.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Invitation, Person, Role, User
from app.services import audit
from app.services.codes import hash_code, new_invitation_code, normalise_invitation_code
from app.services.errors import Conflict, DomainError, NotFound
from app.services.passwords import password_problems
from app.services.signing import make_user_key

STATES = ("pending", "used", "expired", "revoked")
PAGE_SIZE = 25
ROLE_RANK = {Role.CUSTOMER.value: 0, Role.STAFF.value: 1, Role.ADMIN.value: 2}
USERNAME_MAX = 40
_USERNAME_JUNK = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True)
class IssuedInvitation:
    """A new invitation and its plaintext code: show it once, email it, then forget it."""

    invitation: Invitation
    code: str


@dataclass(frozen=True)
class ActivationResult:
    user: User
    person: Person
    created_account: bool


# --------------------------------------------------------------------------- issuing
def add_invitation(session: Session, person: Person, *, actor_id: int | None, now: datetime,
                   pepper: str | bytes, valid_days: int, ip_address: str | None = None) -> IssuedInvitation:
    """Add a fresh code for `person` without committing; older pending codes are revoked
    (one live code per person)."""
    if person.user_id is not None:
        raise Conflict("person_already_active")
    for old in _pending_invitations(session, person.id, now):
        _revoke(session, old, actor_id=actor_id, now=now, ip_address=ip_address, reason="replaced")
    code, code_hash = _unused_code(session, pepper)
    invitation = Invitation(person=person, code_hash=code_hash, created_by_id=actor_id, created_at=now,
                            expires_at=now + timedelta(days=valid_days))
    session.add(invitation)
    session.flush()
    audit.record(session, "invitation_created", actor_id=actor_id, ip_address=ip_address,
                 person_id=person.id, invitation_id=invitation.id, role=person.intended_role,
                 expires_at=invitation.expires_at.isoformat())
    return IssuedInvitation(invitation=invitation, code=code)


def issue_invitation(session: Session, person_id: int, *, actor_id: int | None, now: datetime,
                     pepper: str | bytes, valid_days: int, ip_address: str | None = None) -> IssuedInvitation:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound()
    issued = add_invitation(session, person, actor_id=actor_id, now=now, pepper=pepper,
                            valid_days=valid_days, ip_address=ip_address)
    session.commit()
    return issued


def reissue_invitation(session: Session, invitation_id: int, *, actor_id: int | None, now: datetime,
                       pepper: str | bytes, valid_days: int, ip_address: str | None = None) -> IssuedInvitation:
    """A new code for the same person; the old one is revoked if it was still pending."""
    invitation = get_invitation(session, invitation_id)
    issued = add_invitation(session, invitation.person, actor_id=actor_id, now=now, pepper=pepper,
                            valid_days=valid_days, ip_address=ip_address)
    session.commit()
    return issued


def revoke_invitation(session: Session, invitation_id: int, *, actor_id: int | None, now: datetime,
                      ip_address: str | None = None) -> Invitation:
    invitation = get_invitation(session, invitation_id)
    if invitation.state(now) != "pending":
        raise Conflict("invitation_not_pending")
    _revoke(session, invitation, actor_id=actor_id, now=now, ip_address=ip_address, reason="revoked")
    session.commit()
    return invitation


def _revoke(session: Session, invitation: Invitation, *, actor_id, now, ip_address, reason: str) -> None:
    invitation.revoked_at = now
    audit.record(session, "invitation_revoked", actor_id=actor_id, ip_address=ip_address,
                 person_id=invitation.person_id, invitation_id=invitation.id, reason=reason)


def _unused_code(session: Session, pepper: str | bytes) -> tuple[str, str]:
    for _ in range(5):  # ~54 bits: a collision is astronomically rare, but the column is unique
        code = new_invitation_code()
        code_hash = hash_code(code, pepper=pepper)
        if session.scalar(sa.select(Invitation.id).where(Invitation.code_hash == code_hash)) is None:
            return code, code_hash
    raise RuntimeError("could not draw an unused invitation code")


def _pending_invitations(session: Session, person_id: int, now: datetime) -> list[Invitation]:
    return list(session.scalars(
        sa.select(Invitation).where(Invitation.person_id == person_id, state_condition("pending", now))
    ))


# --------------------------------------------------------------------------- reading
def get_invitation(session: Session, invitation_id: int) -> Invitation:
    invitation = session.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound()
    return invitation


def state_condition(state: str, now: datetime):
    """The SQL twin of `Invitation.state(now)`, for filtering lists."""
    not_revoked = Invitation.revoked_at.is_(None)
    not_used = Invitation.used_at.is_(None)
    return {
        "revoked": Invitation.revoked_at.is_not(None),
        "used": sa.and_(not_revoked, Invitation.used_at.is_not(None)),
        "expired": sa.and_(not_revoked, not_used, Invitation.expires_at <= now),
        "pending": sa.and_(not_revoked, not_used, Invitation.expires_at > now),
    }[state]


def list_invitations(session: Session, *, now: datetime, state: str | None = None, query: str = "",
                     page: int = 1) -> tuple[list[Invitation], int]:
    statement = sa.select(Invitation).join(Invitation.person)
    if state in STATES:
        statement = statement.where(state_condition(state, now))
    for word in (query or "").split()[:5]:
        pattern = f"%{word.lower().replace('%', '').replace('_', '')}%"
        statement = statement.where(sa.or_(
            sa.func.lower(Person.first_name).like(pattern), sa.func.lower(Person.last_name).like(pattern),
            sa.func.lower(sa.func.coalesce(Person.email, "")).like(pattern),
        ))
    total = session.scalar(sa.select(sa.func.count()).select_from(statement.subquery()))
    rows = session.scalars(
        statement.order_by(Invitation.created_at.desc(), Invitation.id.desc())
        .limit(PAGE_SIZE).offset((max(page, 1) - 1) * PAGE_SIZE)
    ).all()
    return list(rows), total


def count_by_state(session: Session, *, now: datetime) -> dict[str, int]:
    return {state: session.scalar(sa.select(sa.func.count(Invitation.id)).where(state_condition(state, now)))
            for state in STATES}


# --------------------------------------------------------------------------- activation
def activate_invitation(session: Session, *, code: str, email: str, password: str, now: datetime,
                        pepper: str | bytes, hash_password: Callable[[str], str],
                        check_password: Callable[[str, str], bool],
                        ip_address: str | None = None) -> ActivationResult:
    """Create (or attach, after its password is checked) the account for a valid code.

    Raises DomainError with a code per failure (unknown, expired, used, revoked, email
    mismatch, weak password, wrong password); nothing is written in that case.
    """
    invitation = find_invitation(session, code, pepper=pepper)
    check_usable(invitation, now)
    person = invitation.person
    if person.user_id is not None:
        raise Conflict("person_already_active", field="code")
    email = email.strip().lower()
    if person.email and person.email.lower() != email:
        raise DomainError("invitation_email_mismatch", field="email")
    user = session.scalar(sa.select(User).where(sa.func.lower(User.email) == email))
    created = user is None
    try:
        if created:
            user = _new_account(session, person, email, password, now=now, hash_password=hash_password)
        else:
            _attach_account(session, user, person, password, check_password=check_password,
                            now=now, ip_address=ip_address)
        _mark_used(session, invitation, person, user, now=now, ip_address=ip_address, created=created)
        session.commit()
    except IntegrityError:  # another activation linked this person or took this email meanwhile
        session.rollback()
        raise Conflict("invitation_used", field="code") from None
    except DomainError:
        session.rollback()
        raise
    return ActivationResult(user=user, person=person, created_account=created)


def find_invitation(session: Session, code: str, *, pepper: str | bytes) -> Invitation:
    normalised = normalise_invitation_code(code)
    if normalised is None:
        raise DomainError("invitation_unknown", field="code")
    invitation = session.scalar(
        sa.select(Invitation).where(Invitation.code_hash == hash_code(normalised, pepper=pepper))
    )
    if invitation is None:
        raise DomainError("invitation_unknown", field="code")
    return invitation


def check_usable(invitation: Invitation, now: datetime) -> None:
    state = invitation.state(now)
    if state != "pending":
        raise DomainError(f"invitation_{state}", field="code")


def _new_account(session: Session, person: Person, email: str, password: str, *, now: datetime,
                 hash_password: Callable[[str], str]) -> User:
    username = unused_username(session, email)
    problems = password_problems(password, username=username, email=email,
                                 names=[person.first_name, person.last_name])
    if problems:
        raise DomainError(problems[0], field="password", problems=problems)
    user = User(username=username, username_key=username.lower(), email=email,
                first_name=person.first_name, last_name=person.last_name,
                password_hash=hash_password(password), user_key=make_user_key(),
                role=person.intended_role, email_verified_at=now, created_at=now)
    session.add(user)
    session.flush()
    return user


def _attach_account(session: Session, user: User, person: Person, password: str, *,
                    check_password: Callable[[str, str], bool], now: datetime, ip_address) -> None:
    if not check_password(user.password_hash, password):
        raise DomainError("invitation_wrong_password", field="password")
    if user.is_disabled:
        raise DomainError("invitation_account_disabled", field="email")
    linked = session.scalar(sa.select(Person.id).where(Person.user_id == user.id))
    if linked is not None and linked != person.id:
        raise Conflict("invitation_account_linked", field="email")
    if ROLE_RANK[person.intended_role] > ROLE_RANK.get(user.role, 0):  # never demote through an invitation
        audit.record(session, "role_changed", actor_id=user.id, subject_user_id=user.id, ip_address=ip_address,
                     old_role=user.role, new_role=person.intended_role, reason="invitation")
        user.role = person.intended_role
    if user.email_verified_at is None:
        user.email_verified_at = now  # the admin invited this address


def _mark_used(session: Session, invitation: Invitation, person: Person, user: User, *, now: datetime,
               ip_address, created: bool) -> None:
    result = session.execute(
        sa.update(Invitation)
        .where(Invitation.id == invitation.id, state_condition("pending", now))
        .values(used_at=now, used_by_id=user.id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Conflict("invitation_used", field="code")
    person.user_id = user.id
    for other in _pending_invitations(session, person.id, now):
        if other.id != invitation.id:
            _revoke(session, other, actor_id=user.id, now=now, ip_address=ip_address, reason="activated")
    audit.record(session, "invitation_activated", actor_id=user.id, subject_user_id=user.id,
                 ip_address=ip_address, person_id=person.id, invitation_id=invitation.id,
                 role=user.role, created_account=created)
    session.flush()
    session.refresh(invitation)


def unused_username(session: Session, email: str) -> str:
    """A username from the email's local part ('marie.curie'), with a number if it is taken."""
    base = _USERNAME_JUNK.sub("", email.partition("@")[0].lower()).strip("._-")[:USERNAME_MAX - 4]
    if len(base) < 3:
        base = f"staff{base}"
    candidate, number = base, 1
    while session.scalar(sa.select(User.id).where(User.username_key == candidate.lower())) is not None:
        number += 1
        candidate = f"{base}{number}"
    return candidate
