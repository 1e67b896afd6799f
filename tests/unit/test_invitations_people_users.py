"""The people directory and the admin actions on users, as services (no HTTP)."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Invitation, Person, UserSession
from app.services import people, users_admin
from app.services.errors import Conflict, DomainError
from tests.factories import PersonFactory, UserFactory, code_pepper

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def data(**changes):
    values = {"first_name": " Ada ", "last_name": "Lovelace", "phone1": "06 12 34 56 78",
              "intended_role": "staff", "phone2": "", "email": "Ada@Example.test"}
    values.update(changes)
    return people.PersonData(**values)


def add_session(user, revoked=False):
    row = UserSession(public_id=f"s-{user.id}-{db.session.scalar(sa.select(sa.func.count(UserSession.id)))}",
                      user_id=user.id, revoked_at=NOW if revoked else None)
    db.session.add(row)
    db.session.commit()
    return row


# --------------------------------------------------------------------------- people
def test_create_person_normalises_phone_and_email(app):
    person, issued = people.create_person(db.session, data(phone2="+44 20 7946 0958"), actor_id=None, now=NOW)
    assert (person.first_name, person.phone1, person.phone2, person.email) == (
        "Ada", "+33612345678", "+442079460958", "ada@example.test")
    assert issued is None and db.session.scalar(sa.select(sa.func.count(Invitation.id))) == 0


def test_create_person_with_a_code_is_one_transaction(app):
    person, issued = people.create_person(db.session, data(), actor_id=None, now=NOW,
                                          invite=people.InvitationSettings(pepper=code_pepper(), valid_days=7))
    assert issued.invitation.person_id == person.id and issued.invitation.state(NOW) == "pending"


@pytest.mark.parametrize("field, value", [("phone1", "12"), ("phone1", "+33 6 12 34 56 78 ext. 4"),
                                          ("phone2", "not a phone")])
def test_invalid_phone_is_refused_with_its_field(app, field, value):
    with pytest.raises(DomainError) as caught:
        people.create_person(db.session, data(**{field: value}), actor_id=None, now=NOW)
    assert (caught.value.code, caught.value.field) == ("person_phone_invalid", field)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(Person.id))) == 0


def test_two_people_cannot_share_an_email(app):
    PersonFactory(email="ada@example.test")
    with pytest.raises(Conflict) as caught:
        people.create_person(db.session, data(), actor_id=None, now=NOW)
    assert caught.value.field == "email"


def test_search_people_by_name_email_and_phone(app):
    ada = PersonFactory(first_name="Ada", last_name="Lovelace", email="ada@example.test", phone1="+33612345678")
    # An explicit phone: the factory's numbers run through the digits of "100%_" sooner or later.
    PersonFactory(first_name="Alan", last_name="Turing", email="alan@example.test", intended_role="admin",
                  phone1="+33698765432")
    assert [p.id for p in people.search_people(db.session, query="lovelace")[0]] == [ada.id]
    assert [p.id for p in people.search_people(db.session, query="ADA@")[0]] == [ada.id]
    assert [p.id for p in people.search_people(db.session, query="2345678")[0]] == [ada.id]
    assert people.search_people(db.session, role="admin")[1] == 1
    assert people.search_people(db.session, query="100%_")[1] == 0


# --------------------------------------------------------------------------- users
def test_change_role_audits_and_keeps_sessions(app):
    """The loader renews the session id on the user's next request; the sessions stay valid."""
    admin = UserFactory(role="admin")
    user = UserFactory(role="customer")
    session_row = add_session(user)
    change = users_admin.change_role(db.session, user.id, "staff", actor_id=admin.id, now=NOW, ip_address="198.51.100.1")
    assert change.user.role == "staff" and change.old_role == "customer" and session_row.is_active
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.type == "role_changed"))
    assert (event.actor_id, event.subject_user_id) == (admin.id, user.id)
    assert event.details["old_role"] == "customer" and event.details["new_role"] == "staff"


def test_the_last_admin_cannot_be_demoted_or_disabled(app):
    admin = UserFactory(role="admin")
    other = UserFactory(role="admin", disabled_at=NOW)  # a disabled admin does not count
    with pytest.raises(Conflict) as caught:
        users_admin.change_role(db.session, admin.id, "staff", actor_id=admin.id, now=NOW)
    assert caught.value.code == "last_admin"
    db.session.rollback()
    with pytest.raises(Conflict) as caught:  # e.g. from a command-line tool: no acting admin
        users_admin.disable_user(db.session, admin.id, actor_id=None, now=NOW)
    assert caught.value.code == "last_admin"
    db.session.rollback()
    assert db.session.get(type(admin), admin.id).role == "admin" and not admin.is_disabled
    assert other.is_disabled


def test_with_two_admins_one_may_step_down(app):
    admin, second = UserFactory(role="admin"), UserFactory(role="admin")
    users_admin.change_role(db.session, admin.id, "staff", actor_id=admin.id, now=NOW)
    with pytest.raises(Conflict):
        users_admin.change_role(db.session, second.id, "customer", actor_id=second.id, now=NOW)


def test_disable_revokes_sessions_and_enable_restores(app):
    admin = UserFactory(role="admin")
    user = UserFactory()
    add_session(user)
    add_session(user, revoked=True)
    change = users_admin.disable_user(db.session, user.id, actor_id=admin.id, now=NOW)
    assert change.user.is_disabled and len(change.revoked_sessions) == 1
    with pytest.raises(Conflict):
        users_admin.disable_user(db.session, user.id, actor_id=admin.id, now=NOW)
    db.session.rollback()
    users_admin.enable_user(db.session, user.id, actor_id=admin.id, now=NOW)
    assert not db.session.get(type(user), user.id).is_disabled
    types = list(db.session.scalars(sa.select(AuditEvent.type).order_by(AuditEvent.id)))
    assert types == ["account_disabled", "account_enabled"]


def test_an_admin_cannot_disable_themself(app):
    admin = UserFactory(role="admin")
    UserFactory(role="admin")
    with pytest.raises(DomainError) as caught:
        users_admin.disable_user(db.session, admin.id, actor_id=admin.id, now=NOW)
    assert caught.value.code == "cannot_disable_self"


def test_revoke_sessions(app):
    admin, user = UserFactory(role="admin"), UserFactory()
    with pytest.raises(Conflict):
        users_admin.revoke_user_sessions(db.session, user.id, actor_id=admin.id, now=NOW)
    db.session.rollback()
    rows = [add_session(user), add_session(user)]
    change = users_admin.revoke_user_sessions(db.session, user.id, actor_id=admin.id, now=NOW)
    assert sorted(change.revoked_sessions) == sorted(r.public_id for r in rows)
    assert all(not r.is_active for r in users_admin.user_sessions(db.session, user.id))


def test_role_must_be_known_and_different(app):
    admin = UserFactory(role="admin")
    for role, code in (("root", "role_invalid"), ("admin", "role_unchanged")):
        with pytest.raises(DomainError) as caught:
            users_admin.change_role(db.session, admin.id, role, actor_id=admin.id, now=NOW)
        assert caught.value.code == code


def test_search_users(app):
    ada = UserFactory(username="ada", email="ada@example.test", first_name="Ada", role="staff")
    UserFactory(username="bob", email="bob@example.test", first_name="Bob", disabled_at=NOW)
    assert [u.id for u in users_admin.search_users(db.session, query="ADA")[0]] == [ada.id]
    assert users_admin.search_users(db.session, role="staff")[1] == 1
    assert users_admin.search_users(db.session, status="disabled")[1] == 1
    assert users_admin.count_by_role(db.session) == {"customer": 1, "staff": 1, "admin": 0, "disabled": 1}
