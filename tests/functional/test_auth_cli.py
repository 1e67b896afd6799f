"""`flask create-admin`: flags or prompts, refuses weak passwords and taken addresses."""
from __future__ import annotations

import sqlalchemy as sa

from app.extensions import bcrypt, db
from app.models import User
from tests.factories import UserFactory

STRONG = "Velvet-Harbor-Lantern-93"


def admins():
    return db.session.scalars(sa.select(User).where(User.role == "admin")).all()


def test_create_admin_with_flags(runner):
    result = runner.invoke(args=["create-admin", "--email", "Ada@Example.test", "--username", "ada",
                                 "--first-name", "Ada", "--last-name", "Lovelace", "--password", STRONG])
    assert result.exit_code == 0, result.output
    [admin] = admins()
    assert admin.email == "ada@example.test" and admin.is_verified and len(admin.user_key) == 32
    assert bcrypt.check_password_hash(admin.password_hash, STRONG)
    assert STRONG not in result.output


def test_create_admin_prompts_for_what_is_missing(runner):
    result = runner.invoke(args=["create-admin"], input=f"ada@example.test\nada\nAda\nLovelace\n{STRONG}\n{STRONG}\n")
    assert result.exit_code == 0, result.output
    assert len(admins()) == 1


def test_create_admin_refuses_a_weak_password(runner):
    result = runner.invoke(args=["create-admin", "--email", "ada@example.test", "--username", "ada",
                                 "--first-name", "Ada", "--last-name", "Lovelace", "--password", "password"])
    assert result.exit_code == 1
    assert "Use at least 12 characters." in result.output
    assert "commonly used" in result.output
    assert admins() == []


def test_create_admin_refuses_a_taken_email_and_a_bad_email(runner):
    UserFactory(email="ada@example.test")
    taken = runner.invoke(args=["create-admin", "--email", "ada@example.test", "--username", "ada2",
                                "--first-name", "Ada", "--last-name", "L", "--password", STRONG])
    assert taken.exit_code == 1 and "already uses this email" in taken.output
    bad = runner.invoke(args=["create-admin", "--email", "not-an-email", "--username", "ada3",
                              "--first-name", "Ada", "--last-name", "L", "--password", STRONG])
    assert bad.exit_code == 1 and "valid email" in bad.output
    assert admins() == []


def test_created_admin_can_log_in(runner, client):
    runner.invoke(args=["create-admin", "--email", "ada@example.test", "--username", "ada",
                        "--first-name", "Ada", "--last-name", "Lovelace", "--password", STRONG])
    response = client.post("/auth/login", data={"email": "ada@example.test", "password": STRONG})
    assert response.status_code == 302
