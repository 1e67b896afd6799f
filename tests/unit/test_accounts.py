"""Account services without HTTP: registration rules, authentication, resets, tokens, safe_next."""
from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.auth.hashing import hasher
from app.auth.login_flow import safe_next
from app.extensions import db
from app.models import AuditEvent, PasswordReset, User, UserSession
from app.services import accounts, password_resets, user_sessions, verification
from app.services.accounts import InvalidFields
from app.services.errors import DomainError, NotFound
from tests.factories import DEFAULT_PASSWORD, UserFactory

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
PEPPER = "unit-test-pepper"
SERVICES = Path(__file__).resolve().parents[2] / "app" / "services"


def register(**changes) -> User:
    data = {"username": "lucie", "email": "Lucie@Example.test", "first_name": "Lucie", "last_name": "Martin",
            "password": "Velvet-Harbor-Lantern-93", **changes}
    return accounts.register_user(db.session, hasher=hasher, now=NOW, **data)


@pytest.mark.parametrize("module", ["accounts", "user_sessions", "password_resets", "verification"])
def test_account_services_do_not_import_flask(module):
    tree = ast.parse((SERVICES / f"{module}.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {name for name in imported if name.split(".")[0] in {"flask", "flask_login", "flask_wtf"}}


def test_register_normalises_and_makes_a_key(app):
    user = register()
    assert user.email == "lucie@example.test" and user.username_key == "lucie" and len(user.user_key) == 32
    assert user.email_verified_at is None and user.role == "customer"


def test_register_reports_every_problem_at_once(app):
    register()
    with pytest.raises(InvalidFields) as caught:
        register(username="LUCIE", email="lucie@example.TEST", password="short")
    assert caught.value.errors["email"] == ["email_taken"]
    assert caught.value.errors["username"] == ["username_taken"]
    assert "password_too_short" in caught.value.errors["password"]
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


def test_create_admin_is_verified(app):
    admin = accounts.create_admin(db.session, username="root", email="root@example.test", first_name="Ada",
                                  last_name="Admin", password="Velvet-Harbor-Lantern-93", hasher=hasher, now=NOW)
    assert admin.role == "admin" and admin.email_verified_at == NOW


def test_authenticate_audits_failures_without_secrets(app):
    user = UserFactory()
    with pytest.raises(DomainError) as unknown:
        accounts.authenticate(db.session, email="ghost@example.test", password="x" * 12, hasher=hasher, now=NOW)
    with pytest.raises(DomainError) as wrong:
        accounts.authenticate(db.session, email=user.email, password="Wrong-password-1", hasher=hasher, now=NOW)
    assert unknown.value.code == wrong.value.code == "login_failed"
    details = db.session.scalars(sa.select(AuditEvent.details)).all()
    assert [d["reason"] for d in details] == ["unknown_account", "wrong_password"]
    assert all("Wrong-password-1" not in str(d) and "ghost" not in str(d) for d in details)
    assert accounts.authenticate(db.session, email=user.email.upper(), password=DEFAULT_PASSWORD, hasher=hasher,
                                 now=NOW) == user


def test_unknown_email_costs_a_bcrypt_check(app, monkeypatch):
    calls = []
    original = hasher.check
    monkeypatch.setattr(type(hasher), "check", lambda self, h, p: calls.append(h) or original(h, p))
    with pytest.raises(DomainError):
        accounts.authenticate(db.session, email="ghost@example.test", password="whatever-pass", hasher=hasher, now=NOW)
    assert len(calls) == 1 and calls[0].startswith("$2b$")


class RecordingHasher:
    """Checks like the real one, noting whether the session held a transaction (and so a pooled
    connection) at that moment."""

    def __init__(self, session):
        self.session, self.in_transaction = session, []

    def check(self, password_hash, password):
        self.in_transaction.append(self.session.in_transaction())
        return hasher.check(password_hash, password)

    def check_dummy(self, password):
        self.in_transaction.append(self.session.in_transaction())
        return False


def test_bcrypt_runs_with_no_transaction_open(app):
    """A sign-in queues for the hashing thread for seconds in a burst; it must not keep a pooled
    connection the pages other visitors load are waiting for."""
    user = UserFactory()
    recording = RecordingHasher(db.session())  # the scoped session's own Session
    email = user.email
    assert accounts.authenticate(db.session, email=email, password=DEFAULT_PASSWORD, hasher=recording,
                                 now=NOW) == user
    assert not db.session().in_transaction() and user.email == email  # still loaded: not read again
    with pytest.raises(DomainError):
        accounts.authenticate(db.session, email="ghost@example.test", password="x" * 12, hasher=recording, now=NOW)
    assert recording.in_transaction == [False, False]


@pytest.mark.parametrize("url,expected", [
    ("/account/", "/account/"), ("/events/x?y=1#z", "/events/x?y=1#z"), (None, None), ("", None),
    ("https://evil.example", None), ("//evil.example", None), ("/\\evil.example", None), ("\\\\evil", None),
    ("javascript:alert(1)", None), ("http:/evil.example", None), ("/\t/evil.example", None),
    ("/\n/evil.example", None), ("/\x00", None), ("evil.example/path", None), ("/" + "a" * 3000, None),
])
def test_safe_next(url, expected):
    assert safe_next(url) == expected


# ----------------------------------------------------------------- sessions and the cache
def test_revoke_session_of_another_user_is_not_found(app):
    owner, other = UserFactory(), UserFactory()
    row = user_sessions.open_session(db.session, owner, user_agent="ua", ip_address="1.2.3.4", now=NOW)
    with pytest.raises(NotFound):
        user_sessions.revoke_session(db.session, other, row.id, now=NOW)
    assert row.revoked_at is None


def test_cache_entries_are_deleted_after_commit(app):
    from app.auth import cache as auth_cache
    from app.extensions import cache

    user = UserFactory()
    row = user_sessions.open_session(db.session, user, user_agent="ua", ip_address="1.2.3.4", now=NOW)
    user_id, row_id = user.id, row.id
    assert auth_cache.session_state(row.public_id)["revoked"] is False
    db.session.expunge_all()
    auth_cache.cached_user(user_id)
    assert cache.get(auth_cache.user_cache_key(user_id)) is not None
    row = db.session.get(UserSession, row_id)
    row.revoked_at = NOW
    db.session.flush()
    assert cache.get(auth_cache.session_cache_key(row.public_id)) is not None  # not before the commit
    db.session.commit()
    assert cache.get(auth_cache.session_cache_key(row.public_id)) is None
    assert auth_cache.session_state(row.public_id)["revoked"] is True
    db.session.get(User, user_id).role = "staff"
    db.session.commit()
    assert cache.get(auth_cache.user_cache_key(user_id)) is None


def test_cached_user_comes_back_attached_without_secrets_in_the_cache(app):
    from app.auth import cache as auth_cache

    user = UserFactory()
    key, user_id = user.user_key, user.id
    auth_cache.cached_user(user_id)  # fills the cache (user is in the identity map: no entry)
    db.session.expunge_all()
    auth_cache.cached_user(user_id)  # loads and caches
    db.session.expunge_all()
    constructed = []

    def count_constructor(*_args, **_kwargs):
        constructed.append(1)

    sa.event.listen(User, "init", count_constructor)
    try:
        again = auth_cache.cached_user(user_id)  # from the cache
    finally:
        sa.event.remove(User, "init", count_constructor)
    # Built as a load builds it: no constructor, no change history, nothing for a flush to write.
    assert constructed == []
    assert sa.inspect(again).persistent and not db.session.dirty and not db.session.is_modified(again)
    assert again in db.session and again.email == user.email
    assert again.user_key == key  # the secret column loads from the database on access
    role = again.role  # a change is tracked from the cached value, and written
    again.role = "staff" if role != "staff" else "admin"
    assert sa.inspect(again).attrs.role.history.deleted == [role] and db.session.is_modified(again)
    db.session.commit()
    assert db.session.scalar(sa.select(User.role).where(User.id == user_id)) == again.role != role


def test_invalidate_user_cache_forgets_every_session(app):
    from app.auth import cache as auth_cache
    from app.extensions import cache

    user = UserFactory()
    rows = [user_sessions.open_session(db.session, user, user_agent="", ip_address="", now=NOW) for _ in range(2)]
    for row in rows:
        auth_cache.session_state(row.public_id)
    auth_cache.invalidate_user_cache(user.id)
    assert all(cache.get(auth_cache.session_cache_key(r.public_id)) is None for r in rows)


# ----------------------------------------------------------------- verification tokens
def test_verification_token_round_trip_and_expiry(app):
    user = UserFactory(email_verified_at=None)
    token = verification.make_verification_token("secret", user)
    assert verification.read_verification_token("secret", token, max_age_seconds=60) == (user.id, user.email)
    with pytest.raises(DomainError) as invalid:
        verification.read_verification_token("other", token, max_age_seconds=60)
    assert invalid.value.code == "verification_link_invalid"
    with pytest.raises(DomainError) as expired:
        verification.read_verification_token("secret", token, max_age_seconds=-1)
    assert expired.value.code == "verification_link_expired"


# ----------------------------------------------------------------- password resets
def issue(user) -> password_resets.IssuedReset:
    return password_resets.request_reset(db.session, email=user.email, now=NOW, pepper=PEPPER, minutes=20)


def test_reset_for_unknown_or_disabled_account_issues_nothing(app):
    disabled = UserFactory(disabled_at=NOW)
    assert password_resets.request_reset(db.session, email="ghost@example.test", now=NOW, pepper=PEPPER,
                                         minutes=20) is None
    assert issue(disabled) is None
    assert db.session.scalar(sa.select(sa.func.count(PasswordReset.id))) == 0


def test_reset_needs_the_code_and_expires(app):
    user = UserFactory()
    issued = issue(user)
    assert len(issued.code) == 6 and issued.code.isdigit()
    with pytest.raises(DomainError) as expired:
        password_resets.complete_reset(db.session, token=issued.token, code=issued.code,
                                       new_password="Quartz-Meadow-Falcon-77", hasher=hasher,
                                       now=NOW + timedelta(minutes=20), pepper=PEPPER)
    assert expired.value.code == "reset_expired"
    done = password_resets.complete_reset(db.session, token=issued.token, code=issued.code[:3] + " " + issued.code[3:],
                                          new_password="Quartz-Meadow-Falcon-77", hasher=hasher,
                                          now=NOW + timedelta(minutes=19), pepper=PEPPER)
    assert done == user and hasher.check(user.password_hash, "Quartz-Meadow-Falcon-77")


def test_reset_with_wrong_pepper_is_unknown(app):
    issued = issue(UserFactory())
    with pytest.raises(DomainError) as caught:
        password_resets.find_reset(db.session, issued.token, now=NOW, pepper="another")
    assert caught.value.code == "reset_link_invalid"


def test_reset_second_factor_is_checked_when_2fa_is_on(app):
    user = UserFactory(totp_secret="JBSWY3DPEHPK3PXP", totp_enabled_at=NOW)
    issued = issue(user)
    seen = []

    def check(session, who, code, *, now):
        seen.append((who.id, code))
        return "recovery" if code == "GOOD-CODE" else None

    with pytest.raises(DomainError) as wrong:
        password_resets.complete_reset(db.session, token=issued.token, code=issued.code, second_factor="bad",
                                       new_password="Quartz-Meadow-Falcon-77", hasher=hasher, now=NOW, pepper=PEPPER,
                                       verify_second_factor=check)
    assert wrong.value.code == "second_factor_wrong" and wrong.value.field == "second_factor"
    password_resets.complete_reset(db.session, token=issued.token, code=issued.code, second_factor="GOOD-CODE",
                                   new_password="Quartz-Meadow-Falcon-77", hasher=hasher, now=NOW, pepper=PEPPER,
                                   verify_second_factor=check)
    assert seen == [(user.id, "bad"), (user.id, "GOOD-CODE")]
