"""Email verification: a signed, expiring link (itsdangerous) naming the user and the address.

The token carries the address it was sent to, so a link mailed before an email change cannot
verify the new address.
"""
from __future__ import annotations

from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from app.models import User
from app.services.audit import record
from app.services.errors import DomainError

SALT = "guichet-email-verification"


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def make_verification_token(secret_key: str, user: User) -> str:
    return _serializer(secret_key).dumps({"uid": user.id, "email": user.email})


def read_verification_token(secret_key: str, token: str, *, max_age_seconds: int) -> tuple[int, str]:
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age_seconds)
    except SignatureExpired as error:
        raise DomainError("verification_link_expired") from error
    except BadSignature as error:
        raise DomainError("verification_link_invalid") from error
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int) or not isinstance(data.get("email"), str):
        raise DomainError("verification_link_invalid")
    return data["uid"], data["email"]


def confirm_email(session: Session, *, token: str, secret_key: str, max_age_seconds: int, now: datetime,
                  ip_address: str | None = None) -> User:
    """Mark the address verified (idempotent). Raises for a tampered, expired or outdated link."""
    user_id, email = read_verification_token(secret_key, token, max_age_seconds=max_age_seconds)
    user = session.get(User, user_id)
    if user is None or user.email != email:
        raise DomainError("verification_link_invalid")
    if user.email_verified_at is None:
        user.email_verified_at = now
        record(session, "email_verified", actor_id=user.id, subject_user_id=user.id, ip_address=ip_address)
        session.commit()
    return user
