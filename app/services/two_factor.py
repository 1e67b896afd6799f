"""Two-factor authentication (SPEC §3): enrolment, the login second step, disabling,
new recovery codes and the admin reset.

The pending secret of an enrolment lives in the caller's server-side session, not here:
these functions only see plain values. Every state change commits once, with its audit
event, except `verify_second_factor`, which leaves the commit to its caller (the login
step and the password reset commit it together with their own changes).
"""
from __future__ import annotations

from datetime import datetime

import bcrypt
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import RecoveryCode, User
from app.models.encrypted import FieldCipher
from app.services import audit
from app.services.errors import Conflict, DomainError, NotFound
from app.services.totp import (
    hash_recovery_code,
    match_recovery_code,
    new_recovery_codes,
    verify_totp,
)

TOTP = "totp"
RECOVERY = "recovery"


def password_matches(user: User, password: str | None) -> bool:
    """bcrypt check of the account password; over-long or garbage input is simply wrong."""
    if not password or not user.password_hash:
        return False
    try:
        return bcrypt.checkpw(password.encode("utf-8"), user.password_hash.encode("ascii"))
    except ValueError:  # bcrypt 5 refuses more than 72 bytes; such a password never matched
        return False


def unused_recovery_codes(session: Session, user: User) -> list[RecoveryCode]:
    return list(session.scalars(
        sa.select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ))


def verify_second_factor(session: Session, user: User, code: str | None, *, now: datetime,
                         ip_address: str | None = None) -> str | None:
    """"totp" or "recovery" when `code` is a valid second factor for `user`, else None.

    A TOTP code moves `user.totp_last_step` forward (so it, and anything older, cannot be
    replayed); a recovery code is marked used and audited. Nothing is committed: the
    caller commits with its own change, so a refused operation can roll it all back.
    """
    if not user.has_2fa or not user.totp_secret or not isinstance(code, str):
        return None
    step = verify_totp(user.totp_secret, code, now=now, last_used_step=user.totp_last_step)
    if step is not None:
        # Conditional: of two requests racing with one code, only the first moves the step.
        moved = session.execute(
            sa.update(User)
            .where(User.id == user.id, sa.or_(User.totp_last_step.is_(None), User.totp_last_step < step))
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        ).rowcount
        if moved != 1:
            return None
        user.totp_last_step = step  # same value through the ORM: keeps the object and caches in step
        return TOTP
    candidates = unused_recovery_codes(session, user)
    matched = match_recovery_code(code, [c.code_hash for c in candidates])
    if matched is None:
        return None
    # A conditional update: two requests racing with the same code cannot both use it.
    used = session.execute(
        sa.update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == matched,
               RecoveryCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if used != 1:
        return None
    remaining = len(candidates) - 1
    audit.record(session, "2fa_recovery_code_used", actor_id=user.id, subject_user_id=user.id,
                 ip_address=ip_address, remaining=remaining)
    return RECOVERY


def complete_second_step(session: Session, user: User, code: str | None, *, now: datetime,
                         ip_address: str | None = None) -> str:
    """The login second step: check the code and commit its use, or raise `2fa_code_invalid`."""
    method = verify_second_factor(session, user, code, now=now, ip_address=ip_address)
    if method is None:
        session.rollback()
        raise DomainError("2fa_code_invalid", field="code")
    session.commit()
    return method


def _store_new_recovery_codes(session: Session, user: User) -> list[str]:
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = new_recovery_codes()
    session.add_all(RecoveryCode(user_id=user.id, code_hash=hash_recovery_code(c)) for c in codes)
    return codes


def enable_two_factor(session: Session, user: User, secret: str, code: str | None, *, now: datetime,
                      ip_address: str | None = None) -> list[str]:
    """Turn 2FA on once `code` proves the authenticator holds `secret`; returns the recovery
    codes in clear, to show once (only their hashes are stored)."""
    if user.has_2fa:
        raise Conflict("2fa_already_enabled")
    step = verify_totp(secret, code or "", now=now, last_used_step=None)
    if step is None:
        raise DomainError("2fa_code_invalid", field="code")
    user.totp_secret = secret
    user.totp_enabled_at = now
    user.totp_last_step = step
    codes = _store_new_recovery_codes(session, user)
    audit.record(session, "2fa_enabled", actor_id=user.id, subject_user_id=user.id, ip_address=ip_address)
    session.commit()
    return codes


def _check_password_and_code(session: Session, user: User, password: str | None, code: str | None,
                             *, now: datetime, ip_address: str | None) -> str:
    """Both are checked (no early exit telling which one was wrong); nothing is committed."""
    if not user.has_2fa:
        raise Conflict("2fa_not_enabled")
    password_ok = password_matches(user, password)
    method = verify_second_factor(session, user, code, now=now, ip_address=ip_address) if password_ok else None
    if not password_ok or method is None:
        session.rollback()
        raise DomainError("2fa_password_or_code_wrong")
    return method


def disable_two_factor(session: Session, user: User, password: str | None, code: str | None, *,
                       now: datetime, ip_address: str | None = None) -> None:
    method = _check_password_and_code(session, user, password, code, now=now, ip_address=ip_address)
    _clear_two_factor(session, user)
    audit.record(session, "2fa_disabled", actor_id=user.id, subject_user_id=user.id,
                 ip_address=ip_address, method=method)
    session.commit()


def regenerate_recovery_codes(session: Session, user: User, password: str | None, code: str | None, *,
                              now: datetime, ip_address: str | None = None) -> list[str]:
    """Replace every recovery code (used or not); the old ones stop working at once."""
    method = _check_password_and_code(session, user, password, code, now=now, ip_address=ip_address)
    codes = _store_new_recovery_codes(session, user)
    audit.record(session, "2fa_recovery_codes_regenerated", actor_id=user.id, subject_user_id=user.id,
                 ip_address=ip_address, method=method)
    session.commit()
    return codes


def admin_reset_two_factor(session: Session, admin: User, user_id: int, *, identity_check: str,
                           now: datetime, ip_address: str | None = None) -> User:
    """An admin removes a user's 2FA (lost device, no recovery code) after checking who they are.

    `identity_check` says how the identity was confirmed; it goes to the audit log.
    """
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    if not user.has_2fa:
        raise Conflict("2fa_not_enabled")
    note = (identity_check or "").strip()
    if len(note) < 10:
        raise DomainError("2fa_reset_identity_required", field="identity_check")
    _clear_two_factor(session, user)
    audit.record(session, "2fa_reset_by_admin", actor_id=admin.id, subject_user_id=user.id,
                 ip_address=ip_address, identity_check=note[:500])
    session.commit()
    return user


def _clear_two_factor(session: Session, user: User) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def reencrypt_totp_secrets(session: Session, cipher: FieldCipher) -> tuple[int, list[int]]:
    """Rewrite every stored TOTP secret encrypted with the cipher's first key: the plain ones
    left from before encryption, and those written with an older key. Commits. Returns how many
    were rewritten and the ids of the users whose secret no key opens (their 2FA must be reset)."""
    table = User.__table__
    stored = sa.type_coerce(table.c.totp_secret, sa.String)  # the column as stored, not decrypted
    rewritten, unreadable = 0, []
    for user_id, value in session.execute(sa.select(table.c.id, stored).where(table.c.totp_secret.is_not(None))):
        new_value = cipher.reencrypt(value)
        if new_value is None:
            unreadable.append(user_id)
            continue
        session.execute(sa.update(table).where(table.c.id == user_id)
                        .values({table.c.totp_secret: sa.type_coerce(new_value, sa.String)}))
        rewritten += 1
    session.commit()
    return rewritten, unreadable
