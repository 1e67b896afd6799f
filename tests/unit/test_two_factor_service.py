"""The 2FA service: enrolment, second factor (TOTP with replay protection, single-use recovery
codes), disabling, new recovery codes and the admin reset."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, RecoveryCode, User
from app.services import two_factor
from app.services.errors import Conflict, DomainError, NotFound
from app.services.totp import time_step
from tests.checkers import oathtool
from tests.factories import DEFAULT_PASSWORD, UserFactory

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)  # 10 s into a step: no boundary nearby


def audit_types() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.type).order_by(AuditEvent.id)))


@pytest.fixture
def user(app):
    return UserFactory()


@pytest.fixture
def enrolled(user):
    """A user with 2FA on (enabled a few minutes before NOW) and their recovery codes."""
    earlier = NOW - timedelta(minutes=5)
    codes = two_factor.enable_two_factor(db.session, user, SECRET, oathtool(SECRET, earlier), now=earlier)
    return user, codes


def test_enable_needs_a_valid_code_for_the_pending_secret(user):
    with pytest.raises(DomainError) as error:
        two_factor.enable_two_factor(db.session, user, SECRET, "000000", now=NOW)
    assert error.value.code == "2fa_code_invalid" and error.value.field == "code"
    db.session.refresh(user)
    assert not user.has_2fa and user.totp_secret is None
    assert db.session.scalar(sa.select(sa.func.count(RecoveryCode.id))) == 0

    codes = two_factor.enable_two_factor(db.session, user, SECRET, oathtool(SECRET, NOW), now=NOW, ip_address="10.0.0.1")
    db.session.refresh(user)
    assert user.has_2fa and user.totp_secret == SECRET and user.totp_last_step == time_step(NOW)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = set(db.session.scalars(sa.select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)))
    assert len(stored) == 10 and not set(codes) & stored  # only hashes are stored
    assert audit_types() == ["2fa_enabled"]
    with pytest.raises(Conflict):
        two_factor.enable_two_factor(db.session, user, SECRET, oathtool(SECRET, NOW + timedelta(seconds=30)),
                                     now=NOW + timedelta(seconds=30))


def test_totp_from_oathtool_is_accepted_once(enrolled):
    user, _ = enrolled
    code = oathtool(SECRET, NOW)
    assert two_factor.verify_second_factor(db.session, user, code, now=NOW) == "totp"
    db.session.commit()
    assert two_factor.verify_second_factor(db.session, user, code, now=NOW) is None
    # the previous step is older than the one used: refused too
    assert two_factor.verify_second_factor(db.session, user, oathtool(SECRET, NOW - timedelta(seconds=30)),
                                           now=NOW) is None
    # the next step works
    later = NOW + timedelta(seconds=30)
    assert two_factor.verify_second_factor(db.session, user, oathtool(SECRET, later), now=later) == "totp"


def test_window_is_one_step_either_side(enrolled):
    user, _ = enrolled
    assert two_factor.verify_second_factor(db.session, user, oathtool(SECRET, NOW - timedelta(seconds=60)),
                                           now=NOW) is None
    assert two_factor.verify_second_factor(db.session, user, oathtool(SECRET, NOW + timedelta(seconds=60)),
                                           now=NOW) is None
    assert two_factor.verify_second_factor(db.session, user, oathtool(SECRET, NOW - timedelta(seconds=30)),
                                           now=NOW) == "totp"


def test_recovery_code_works_once_and_is_audited(enrolled):
    user, codes = enrolled
    typed = codes[3].lower().replace("-", " ")  # people type them loosely
    assert two_factor.verify_second_factor(db.session, user, typed, now=NOW, ip_address="10.0.0.2") == "recovery"
    db.session.commit()
    assert two_factor.verify_second_factor(db.session, user, codes[3], now=NOW) is None
    assert len(two_factor.unused_recovery_codes(db.session, user)) == 9
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == "2fa_recovery_code_used")).one()
    assert event.subject_user_id == user.id and event.details == {"remaining": 9}
    assert event.ip_address == "10.0.0.2"
    assert codes[3] not in str(event.details)


def test_verify_does_not_commit(enrolled):
    user, codes = enrolled
    assert two_factor.verify_second_factor(db.session, user, codes[0], now=NOW) == "recovery"
    db.session.rollback()
    assert len(two_factor.unused_recovery_codes(db.session, user)) == 10
    assert "2fa_recovery_code_used" not in audit_types()


@pytest.mark.parametrize("code", [None, "", "12345", "abcdef", "x" * 500, "AAAAA-AAAAA"])
def test_garbage_is_refused(enrolled, code):
    user, _ = enrolled
    assert two_factor.verify_second_factor(db.session, user, code, now=NOW) is None


def test_no_second_factor_without_2fa(user):
    assert two_factor.verify_second_factor(db.session, user, oathtool(SECRET, NOW), now=NOW) is None


def test_complete_second_step_raises_on_a_wrong_code(enrolled):
    user, _ = enrolled
    with pytest.raises(DomainError) as error:
        two_factor.complete_second_step(db.session, user, "123456", now=NOW)
    assert error.value.code == "2fa_code_invalid"
    assert two_factor.complete_second_step(db.session, user, oathtool(SECRET, NOW), now=NOW) == "totp"


@pytest.mark.parametrize("password, good_code", [
    ("wrong password here", True), (DEFAULT_PASSWORD, False), ("x" * 100, True), (None, True)])
def test_disable_needs_password_and_code(enrolled, password, good_code):
    user, _ = enrolled
    code = oathtool(SECRET, NOW) if good_code else "111111"
    with pytest.raises(DomainError) as error:
        two_factor.disable_two_factor(db.session, user, password, code, now=NOW)
    assert error.value.code == "2fa_password_or_code_wrong"
    db.session.refresh(user)
    assert user.has_2fa and len(two_factor.unused_recovery_codes(db.session, user)) == 10
    assert "2fa_disabled" not in audit_types()


def test_disable_with_password_and_code(enrolled):
    user, codes = enrolled
    two_factor.disable_two_factor(db.session, user, DEFAULT_PASSWORD, codes[0], now=NOW)
    db.session.refresh(user)
    assert not user.has_2fa and user.totp_secret is None and user.totp_last_step is None
    assert db.session.scalar(sa.select(sa.func.count(RecoveryCode.id))) == 0
    assert audit_types()[-1] == "2fa_disabled"


def test_regenerate_replaces_every_code(enrolled):
    user, old = enrolled
    new = two_factor.regenerate_recovery_codes(db.session, user, DEFAULT_PASSWORD, oathtool(SECRET, NOW), now=NOW)
    assert len(new) == 10 and not set(new) & set(old)
    later = NOW + timedelta(minutes=1)
    assert two_factor.verify_second_factor(db.session, user, old[0], now=later) is None
    assert two_factor.verify_second_factor(db.session, user, new[0], now=later) == "recovery"
    assert audit_types()[-1] == "2fa_recovery_code_used"
    assert "2fa_recovery_codes_regenerated" in audit_types()


def test_admin_reset(enrolled):
    user, _ = enrolled
    admin = UserFactory(role="admin")
    with pytest.raises(DomainError) as error:
        two_factor.admin_reset_two_factor(db.session, admin, user.id, identity_check=" ok ", now=NOW)
    assert error.value.field == "identity_check"
    with pytest.raises(NotFound):
        two_factor.admin_reset_two_factor(db.session, admin, 999_999, identity_check="passport seen", now=NOW)
    two_factor.admin_reset_two_factor(db.session, admin, user.id, identity_check="Passport checked at desk",
                                      now=NOW, ip_address="10.0.0.9")
    db.session.refresh(user)
    assert not user.has_2fa
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == "2fa_reset_by_admin")).one()
    assert (event.actor_id, event.subject_user_id) == (admin.id, user.id)
    assert event.details == {"identity_check": "Passport checked at desk"}
    with pytest.raises(Conflict):
        two_factor.admin_reset_two_factor(db.session, admin, user.id, identity_check="Passport again", now=NOW)


def test_service_does_not_import_flask():
    source = Path(two_factor.__file__).read_text()
    assert "import flask" not in source and "from flask" not in source


def test_a_code_raced_by_another_request_is_refused(enrolled, app):
    """Another request (its own connection) used the same step first: this one must not pass."""
    user, _ = enrolled
    code = oathtool(SECRET, NOW)
    step = time_step(NOW)
    with db.engine.begin() as other:
        other.execute(sa.update(User.__table__).where(User.__table__.c.id == user.id).values(totp_last_step=step))
    assert user.totp_last_step < step  # this session still holds the old value
    assert two_factor.verify_second_factor(db.session, user, code, now=NOW) is None
