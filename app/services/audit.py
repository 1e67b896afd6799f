"""Write audit events in the caller's transaction, so the record and the change commit together."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import AuditEvent

# Every type used in the code base, so the audit log page can offer them as a filter.
AUDIT_TYPES = (
    "login_succeeded", "login_failed", "logout", "password_changed", "password_reset_requested",
    "password_reset_completed", "email_verified", "sessions_revoked",
    "2fa_enabled", "2fa_disabled", "2fa_recovery_code_used", "2fa_recovery_codes_regenerated", "2fa_reset_by_admin",
    "invitation_created", "invitation_revoked", "invitation_activated",
    "role_changed", "account_disabled", "account_enabled", "user_key_rotated",
    "order_paid", "order_cancelled", "order_refunded", "check_in",
    # tickets (issue 7): gate scanner app tokens
    "scanner_token_created", "scanner_token_revoked",
)


_INSERT_EVENT = sa.insert(AuditEvent.__table__)  # built once: one INSERT, no ORM object to flush


def record(session: Session, type: str, *, actor_id: int | None = None, subject_user_id: int | None = None,
           ip_address: str | None = None, **details) -> None:
    """Write an audit event in the caller's transaction (no commit). `details` holds plain facts,
    never a secret or card number."""
    if type not in AUDIT_TYPES:
        raise ValueError(f"unknown audit event type {type!r}")
    session.execute(_INSERT_EVENT, {"type": type, "actor_id": actor_id, "subject_user_id": subject_user_id,
                                    "ip_address": ip_address, "details": details})
