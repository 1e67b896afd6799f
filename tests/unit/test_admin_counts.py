"""The admin overview's accounts counts: one statement, the same figures as the three services,
and the moment time alone changes them (the first pending invitation's expiry)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.extensions import db
from app.models import Person
from app.services import invitations, people, users_admin
from app.services.admin_counts import account_counts
from tests.checkers import sql_statements
from tests.factories import InvitationFactory, UserFactory

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def person(n: int, user=None) -> Person:
    """Made directly, not with PersonFactory, so this file leaves the factory's phone sequence
    where other tests expect it (one searches sequence-made phones for "100")."""
    row = Person(first_name=f"Count{n}", last_name="Test", phone1=f"+3361999{n:04d}", email=f"count{n}@example.test",
                 intended_role="staff", user=user)
    db.session.add(row)
    db.session.commit()
    return row


def invitation(n: int, **fields):
    return InvitationFactory(person=person(n), **fields)


def counts_from_the_services(now: datetime) -> dict:
    return {"users": users_admin.count_by_role(db.session), "people": people.count_people(db.session),
            "invitations": invitations.count_by_state(db.session, now=now)}


def figures(counts: dict) -> dict:
    """The counts without `changes_at`, as the three services give them."""
    return {name: counts[name] for name in ("users", "people", "invitations")}


def statements_of(call) -> tuple[list[str], object]:
    with sql_statements(db.engine) as seen:
        result = call()
    return [statement for statement in seen if statement != "COMMIT"], result


def test_no_one_yet_is_all_zeros(app):
    assert account_counts(db.session, now=NOW) == {
        "users": {"customer": 0, "staff": 0, "admin": 0, "disabled": 0},
        "people": {"total": 0, "with_account": 0, "without_account": 0},
        "invitations": {"pending": 0, "used": 0, "expired": 0, "revoked": 0},
        "changes_at": None,
    }


def test_every_figure_matches_the_services_in_one_statement(app):
    UserFactory.create_batch(3)
    UserFactory(disabled_at=NOW - timedelta(days=1))
    staff = UserFactory.create_batch(2, role="staff")
    UserFactory(role="admin")
    person(1, user=staff[0])
    person(2, user=staff[1])
    person(3)
    invitation(4, created_at=NOW - timedelta(days=1), expires_at=NOW + timedelta(days=6))  # pending
    invitation(5, created_at=NOW - timedelta(days=2), expires_at=NOW + timedelta(seconds=1))  # pending, just
    invitation(6, created_at=NOW - timedelta(days=8), expires_at=NOW)  # expired at this very moment
    invitation(7, created_at=NOW - timedelta(days=3), expires_at=NOW + timedelta(days=4), used_at=NOW)
    invitation(8, created_at=NOW - timedelta(days=3), expires_at=NOW + timedelta(days=4), revoked_at=NOW)
    invitation(9, created_at=NOW - timedelta(days=9), expires_at=NOW - timedelta(days=2), revoked_at=NOW)

    statements, counts = statements_of(lambda: account_counts(db.session, now=NOW))

    assert len(statements) == 1
    assert figures(counts) == counts_from_the_services(NOW)
    assert counts == {
        "users": {"customer": 4, "staff": 2, "admin": 1, "disabled": 1},
        "people": {"total": 9, "with_account": 2, "without_account": 7},  # each invitation has its person
        "invitations": {"pending": 2, "used": 1, "expired": 1, "revoked": 2},
        "changes_at": NOW + timedelta(seconds=1),  # the first pending invitation expires: nothing else is written
    }
    # `now` decides pending or expired, as in the invitations list
    expiring = NOW + timedelta(seconds=1)
    assert account_counts(db.session, now=expiring)["invitations"] == {"pending": 1, "used": 1, "expired": 2,
                                                                       "revoked": 2}
    assert account_counts(db.session, now=expiring)["changes_at"] == NOW + timedelta(days=6)
    later = NOW + timedelta(days=7)
    assert account_counts(db.session, now=later)["invitations"] == {"pending": 0, "used": 1, "expired": 3, "revoked": 2}
    assert account_counts(db.session, now=later)["changes_at"] is None
    assert figures(account_counts(db.session, now=later)) == counts_from_the_services(later)
