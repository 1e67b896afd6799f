"""Invitation codes as a service: issuing, states, activation and every refusal (no HTTP)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from app.extensions import bcrypt, db
from app.models import AuditEvent, Invitation, Person, User
from app.services import invitations
from app.services.codes import INVITATION_CODE_RE, hash_code
from app.services.errors import Conflict, DomainError
from tests.factories import (
    DEFAULT_PASSWORD,
    InvitationFactory,
    PersonFactory,
    UserFactory,
    code_pepper,
)

NEW_PASSWORD = "Gate-Keeper-Lantern-93"
NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def activate(code, email, password=NEW_PASSWORD, now=None):
    return invitations.activate_invitation(
        db.session, code=code, email=email, password=password, now=now or datetime.now(UTC),
        pepper=code_pepper(), hash_password=lambda p: bcrypt.generate_password_hash(p).decode(),
        check_password=bcrypt.check_password_hash, ip_address="203.0.113.9")


def counts():
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model)) for model in (User, Person, Invitation))


def audit_types():
    return [event.type for event in db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]


def issue(person, now=NOW, days=7):
    return invitations.issue_invitation(db.session, person.id, actor_id=None, now=now, pepper=code_pepper(),
                                        valid_days=days)


# --------------------------------------------------------------------------- issuing
def test_issued_code_has_the_format_and_only_its_hash_is_stored(app):
    person = PersonFactory()
    issued = issue(person)
    assert INVITATION_CODE_RE.fullmatch(issued.code)
    stored = db.session.get(Invitation, issued.invitation.id)
    assert stored.code_hash == hash_code(issued.code, pepper=code_pepper())
    assert stored.expires_at == NOW + timedelta(days=7)
    assert issued.code not in stored.code_hash


def test_the_database_never_holds_the_plaintext_code(app):
    person = PersonFactory()
    codes = [issue(person).code, issue(person).code]
    compact = [code.replace("-", "") for code in codes]
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                text = " ".join(str(value) for value in row)
                for code, bare in zip(codes, compact, strict=True):
                    assert code not in text and bare not in text and code.lower() not in text, table.name


def test_a_new_code_revokes_the_pending_one(app):
    person = PersonFactory()
    first = issue(person)
    second = issue(person, now=NOW + timedelta(hours=1))
    db.session.refresh(first.invitation)
    assert first.invitation.state(NOW + timedelta(hours=2)) == "revoked"
    assert second.invitation.state(NOW + timedelta(hours=2)) == "pending"
    assert audit_types() == ["invitation_created", "invitation_revoked", "invitation_created"]


def test_audit_details_never_hold_the_code(app):
    issued = issue(PersonFactory())
    event = db.session.scalar(sa.select(AuditEvent))
    assert event.type == "invitation_created"
    assert issued.code not in str(event.details) and issued.invitation.code_hash not in str(event.details)


def test_no_code_for_a_person_who_already_has_an_account(app):
    person = PersonFactory(user=UserFactory(role="staff"))
    with pytest.raises(Conflict) as caught:
        issue(person)
    assert caught.value.code == "person_already_active"


def test_reissue_revokes_the_old_code(app):
    person = PersonFactory()
    old = issue(person)
    new = invitations.reissue_invitation(db.session, old.invitation.id, actor_id=None, now=NOW, pepper=code_pepper(),
                                         valid_days=3)
    db.session.refresh(old.invitation)
    assert old.invitation.revoked_at == NOW
    assert new.invitation.expires_at == NOW + timedelta(days=3) and new.code != old.code


def test_revoke_only_a_pending_code(app):
    issued = issue(PersonFactory())
    invitations.revoke_invitation(db.session, issued.invitation.id, actor_id=None, now=NOW)
    with pytest.raises(Conflict) as caught:
        invitations.revoke_invitation(db.session, issued.invitation.id, actor_id=None, now=NOW)
    assert caught.value.code == "invitation_not_pending"


@pytest.mark.parametrize("state", invitations.STATES)
def test_sql_state_filter_agrees_with_the_model(app, state):
    now = datetime.now(UTC)
    rows = {
        "pending": InvitationFactory(),
        "used": InvitationFactory(used_at=now),
        "expired": InvitationFactory(created_at=now - timedelta(days=8)),
        "revoked": InvitationFactory(revoked_at=now),
    }
    listed, total = invitations.list_invitations(db.session, now=now, state=state)
    assert [row.id for row in listed] == [rows[state].id] and total == 1
    assert rows[state].state(now) == state
    assert invitations.count_by_state(db.session, now=now) == dict.fromkeys(invitations.STATES, 1)


# --------------------------------------------------------------------------- activation
def test_activation_creates_a_verified_account_with_the_person_role(app):
    person = PersonFactory(first_name="Marie", last_name="Curie", email="marie.curie@example.test",
                           intended_role="admin")
    invitation = InvitationFactory(person=person)
    other = InvitationFactory(person=person)  # an older pending code for the same person
    result = activate(invitation.code.lower().replace("-", " "), "Marie.Curie@Example.test")
    user = result.user
    assert result.created_account
    assert (user.email, user.username, user.role) == ("marie.curie@example.test", "marie.curie", "admin")
    assert (user.first_name, user.last_name) == ("Marie", "Curie")
    assert user.is_verified and len(user.user_key) == 32
    assert bcrypt.check_password_hash(user.password_hash, NEW_PASSWORD)
    db.session.refresh(invitation)
    db.session.refresh(other)
    assert invitation.used_at is not None and invitation.used_by_id == user.id
    assert other.revoked_at is not None
    assert db.session.get(Person, person.id).user_id == user.id
    assert audit_types() == ["invitation_revoked", "invitation_activated"]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.type == "invitation_activated"))
    assert event.subject_user_id == user.id and event.ip_address == "203.0.113.9"
    assert event.details["created_account"] is True and NEW_PASSWORD not in str(event.details)


def test_activation_without_an_email_on_record_accepts_any_email(app):
    invitation = InvitationFactory(person=PersonFactory(email=None))
    assert activate(invitation.code, "someone@example.test").user.email == "someone@example.test"


def test_activation_attaches_an_existing_account_after_its_password(app):
    customer = UserFactory(email="fan@example.test", role="customer", email_verified_at=None)
    invitation = InvitationFactory(person=PersonFactory(email="fan@example.test"))
    before = counts()
    result = activate(invitation.code, "fan@example.test", password=DEFAULT_PASSWORD)
    assert not result.created_account and result.user.id == customer.id
    assert result.user.role == "staff" and result.user.is_verified
    assert counts() == before
    assert "role_changed" in audit_types()


def test_an_admin_is_never_demoted_by_a_staff_invitation(app):
    admin = UserFactory(email="boss@example.test", role="admin")
    invitation = InvitationFactory(person=PersonFactory(email="boss@example.test", intended_role="staff"))
    assert activate(invitation.code, admin.email, password=DEFAULT_PASSWORD).user.role == "admin"


def test_username_gets_a_number_when_taken(app):
    UserFactory(username="sam", email="sam@elsewhere.test")
    invitation = InvitationFactory(person=PersonFactory(email="sam@example.test"))
    assert activate(invitation.code, "sam@example.test").user.username == "sam2"


FAILURES = ["unknown", "malformed", "expired", "used", "revoked", "email_mismatch", "weak_password",
            "wrong_password", "disabled_account", "linked_elsewhere"]


@pytest.mark.parametrize("case", FAILURES)
def test_each_failed_activation_raises_its_code_and_writes_nothing(app, case):
    person = PersonFactory(email="new@example.test")
    invitation = InvitationFactory(person=person)
    code, email, password, now, expected = invitation.code, "new@example.test", NEW_PASSWORD, None, None
    if case == "unknown":
        code, expected = "GCH-ABCDEF-GHJKM", "invitation_unknown"
    elif case == "malformed":
        code, expected = "GCH-0O0O0O-1I1I1", "invitation_unknown"
    elif case == "expired":
        now, expected = invitation.expires_at + timedelta(seconds=1), "invitation_expired"
    elif case == "used":
        invitation.used_at = datetime.now(UTC)
        expected = "invitation_used"
    elif case == "revoked":
        invitation.revoked_at = datetime.now(UTC)
        expected = "invitation_revoked"
    elif case == "email_mismatch":
        email, expected = "other@example.test", "invitation_email_mismatch"
    elif case == "weak_password":
        password, expected = "password1234", "password_too_common"
    elif case == "wrong_password":
        UserFactory(email="new@example.test")
        password, expected = "Not-The-Right-Password-77", "invitation_wrong_password"
    elif case == "disabled_account":
        UserFactory(email="new@example.test", disabled_at=datetime.now(UTC))
        password, expected = DEFAULT_PASSWORD, "invitation_account_disabled"
    elif case == "linked_elsewhere":
        user = UserFactory(email="new@example.test")
        PersonFactory(email=None, user=user)
        password, expected = DEFAULT_PASSWORD, "invitation_account_linked"
    db.session.commit()
    before, audits = counts(), audit_types()
    with pytest.raises(DomainError) as caught:
        activate(code, email, password=password, now=now)
    assert caught.value.code == expected
    assert counts() == before and audit_types() == audits
    db.session.refresh(invitation)
    assert invitation.used_by_id is None
    assert db.session.get(Person, person.id).user_id is None


def test_expiry_follows_the_clock(app):
    with freeze_time("2026-07-01 09:00:00"):
        invitation = InvitationFactory(person=PersonFactory(email="late@example.test"))
    with freeze_time("2026-07-08 09:00:01"):
        with pytest.raises(DomainError) as caught:
            activate(invitation.code, "late@example.test")
        assert caught.value.code == "invitation_expired"
    with freeze_time("2026-07-08 08:59:59"):
        assert activate(invitation.code, "late@example.test").user.role == "staff"


def test_weak_password_reports_every_problem(app):
    invitation = InvitationFactory(person=PersonFactory(email="weak@example.test"))
    with pytest.raises(DomainError) as caught:
        activate(invitation.code, "weak@example.test", password="short")
    assert caught.value.field == "password"
    assert "password_too_short" in caught.value.params["problems"]


def test_a_code_works_only_once(app):
    invitation = InvitationFactory(person=PersonFactory(email=None))
    activate(invitation.code, "first@example.test")
    with pytest.raises(DomainError) as caught:
        activate(invitation.code, "second@example.test")
    assert caught.value.code == "invitation_used"
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


def test_a_code_used_behind_our_back_is_refused_by_the_conditional_update(app, monkeypatch):
    """Two activations racing: the second one's UPDATE finds the code already used and rolls back."""
    invitation = InvitationFactory(person=PersonFactory(email=None))
    original = invitations.check_usable

    def race(found, now):
        original(found, now)  # our check passes, then the other request wins
        with db.engine.begin() as other:
            other.execute(sa.update(Invitation).where(Invitation.id == found.id).values(used_at=now))

    monkeypatch.setattr(invitations, "check_usable", race)
    with pytest.raises(Conflict) as caught:
        activate(invitation.code, "racer@example.test")
    assert caught.value.code == "invitation_used"
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0
