"""Accounts: registration, authentication, profile edits, password change, first admin.

Passwords reach bcrypt through a `PasswordHasher` handed in by the web layer (Flask-Bcrypt
there), so these rules stay plain functions.
"""
from __future__ import annotations

from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Role, User
from app.services import user_sessions
from app.services.audit import record
from app.services.errors import DomainError
from app.services.passwords import password_problems
from app.services.signing import make_user_key
from app.services.transactions import commit_keeping_loaded


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...
    def check(self, password_hash: str, password: str) -> bool: ...
    def check_dummy(self, password: str) -> bool: ...


class InvalidFields(DomainError):
    """Several fields refused at once: `errors` maps a field name to its message codes."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("invalid_fields", field=next(iter(errors), None))
        self.errors = errors


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def username_key(username: str) -> str:
    return (username or "").strip().lower()


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(sa.select(User).where(User.email == normalise_email(email)))


def _taken(session: Session, *, email: str | None = None, username: str | None = None,
           except_id: int | None = None) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    checks = [("email", User.email, normalise_email(email), "email_taken") if email is not None else None,
              ("username", User.username_key, username_key(username), "username_taken")
              if username is not None else None]
    for check in filter(None, checks):
        field, column, value, code = check
        query = sa.select(User.id).where(column == value)
        if except_id is not None:
            query = query.where(User.id != except_id)
        if session.scalar(query) is not None:
            errors[field] = [code]
    return errors


def _policy(password: str, *, username: str, email: str, first_name: str, last_name: str) -> list[str]:
    return password_problems(password, username=username, email=email, names=[first_name, last_name])


def register_user(session: Session, *, username: str, email: str, first_name: str, last_name: str,
                  password: str, hasher: PasswordHasher, now: datetime, role: str = Role.CUSTOMER.value,
                  verified: bool = False) -> User:
    """Create an account with a fresh 32-byte user key. Raises InvalidFields with every problem."""
    username, email = username.strip(), normalise_email(email)
    first_name, last_name = first_name.strip(), last_name.strip()
    errors = _taken(session, email=email, username=username)
    problems = _policy(password, username=username, email=email, first_name=first_name, last_name=last_name)
    if problems:
        errors["password"] = problems
    if errors:
        raise InvalidFields(errors)
    user = User(username=username, username_key=username_key(username), email=email, first_name=first_name,
                last_name=last_name, password_hash=hasher.hash(password), user_key=make_user_key(), role=role,
                email_verified_at=now if verified else None, created_at=now)
    session.add(user)
    try:
        session.commit()
    except IntegrityError as error:  # a concurrent registration took the email or username
        session.rollback()
        raise InvalidFields(_taken(session, email=email, username=username) or {"email": ["email_taken"]}) from error
    return user


def authenticate(session: Session, *, email: str, password: str, hasher: PasswordHasher, now: datetime,
                 ip_address: str | None = None) -> User:
    """The account for this email and password. Unknown email and wrong password get the same
    code after the same bcrypt work; a disabled account is only told so after a correct password."""
    user = find_by_email(session, email)
    # No transaction, and so no pooled database connection, stays open while bcrypt runs: in a
    # burst of sign-ins each one queues for the process's hashing thread for up to seconds, and
    # would keep a connection the pages other visitors load are waiting for.
    commit_keeping_loaded(session)
    if user is None:
        hasher.check_dummy(password)
        _failed(session, None, "unknown_account", ip_address)
    elif not hasher.check(user.password_hash, password):
        _failed(session, user.id, "wrong_password", ip_address)
    elif user.is_disabled:
        _failed(session, user.id, "disabled", ip_address, code="account_disabled")
    return user


def _failed(session: Session, user_id: int | None, reason: str, ip_address: str | None,
            code: str = "login_failed") -> None:
    record(session, "login_failed", subject_user_id=user_id, ip_address=ip_address, reason=reason)
    session.commit()
    raise DomainError(code)


def update_profile(session: Session, user: User, *, username: str, first_name: str, last_name: str, email: str,
                   current_password: str | None, hasher: PasswordHasher, now: datetime) -> str | None:
    """Save names, username and email. A new email needs the current password and is verified
    again. Returns the previous email when it changed (to notify that address), else None."""
    username, email = username.strip(), normalise_email(email)
    email_changes = email != user.email
    errors = _taken(session, email=email if email_changes else None, username=username, except_id=user.id)
    if email_changes and "email" not in errors:
        if not current_password:
            errors["current_password"] = ["current_password_needed"]
        elif not hasher.check(user.password_hash, current_password):
            errors["current_password"] = ["current_password_wrong"]
    if errors:
        raise InvalidFields(errors)
    previous = user.email if email_changes else None
    user.username, user.username_key = username, username_key(username)
    user.first_name, user.last_name = first_name.strip(), last_name.strip()
    if email_changes:
        user.email = email
        user.email_verified_at = None
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise InvalidFields({"email": ["email_taken"]} if email_changes else {"username": ["username_taken"]}) \
            from error
    return previous


def change_password(session: Session, user: User, *, current_password: str, new_password: str,
                    hasher: PasswordHasher, keep_session: str | None, now: datetime,
                    ip_address: str | None = None) -> int:
    """Replace the password (asking the current one) and revoke every other session; returns how many."""
    if not hasher.check(user.password_hash, current_password):
        raise InvalidFields({"current_password": ["current_password_wrong"]})
    problems = _policy(new_password, username=user.username, email=user.email, first_name=user.first_name,
                       last_name=user.last_name)
    if problems:
        raise InvalidFields({"password": problems})
    user.password_hash = hasher.hash(new_password)
    record(session, "password_changed", actor_id=user.id, subject_user_id=user.id, ip_address=ip_address)
    return user_sessions.revoke_other_sessions(session, user, keep_public_id=keep_session, now=now,
                                               ip_address=ip_address)


def create_admin(session: Session, *, username: str, email: str, first_name: str, last_name: str, password: str,
                 hasher: PasswordHasher, now: datetime) -> User:
    """The first administrator (CLI): verified from the start."""
    return register_user(session, username=username, email=email, first_name=first_name, last_name=last_name,
                         password=password, hasher=hasher, now=now, role=Role.ADMIN.value, verified=True)
