"""TOTP secrets are stored encrypted (app/models/encrypted.py): the database never holds one in
clear, logins with oathtool codes work, secrets stored before encryption are still read and
`flask users reencrypt-secrets` encrypts them, and keys rotate through FIELD_ENCRYPTION_KEYS."""
from __future__ import annotations

import re

import sqlalchemy as sa
from freezegun import freeze_time

from app.extensions import db
from app.models import User
from app.models.encrypted import is_encrypted
from tests.checkers import oathtool
from tests.conftest import AuthActions
from tests.factories import UserFactory
from tests.functional.test_two_factor import (
    SECRET,
    T0,
    enrolled_user,
    is_logged_in,
    login_2fa,
)


def stored_secret(user_id: int) -> str | None:
    """The column as the database holds it (read without the model's decryption)."""
    with db.engine.connect() as connection:
        return connection.execute(sa.text("SELECT totp_secret FROM users WHERE id = :id"), {"id": user_id}).scalar()


def store_plain(user_id: int, secret: str) -> None:
    """What a database written before encryption holds."""
    with db.engine.begin() as connection:
        connection.execute(sa.text("UPDATE users SET totp_secret = :secret WHERE id = :id"),
                           {"secret": secret, "id": user_id})


def reencrypt(runner) -> str:
    result = runner.invoke(args=["users", "reencrypt-secrets"])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_the_database_holds_a_token_not_the_secret_and_login_works(client, auth):
    user, _ = enrolled_user()
    stored = stored_secret(user.id)
    assert is_encrypted(stored) and SECRET not in stored
    db.session.expire_all()
    assert db.session.get(User, user.id).totp_secret == SECRET
    with freeze_time(T0):
        login_2fa(client, auth, user, oathtool(SECRET, T0))
        assert is_logged_in(client)


def test_enrolling_through_the_account_page_stores_the_secret_encrypted(client, auth):
    user = UserFactory()
    with freeze_time(T0):
        auth.login(user)
        secret = re.search(r'data-secret="([A-Z2-7]+)"', client.get("/account/2fa/setup").get_data(as_text=True))[1]
        response = client.post("/account/2fa/setup", data={"code": oathtool(secret, T0)})
    assert response.status_code == 302
    stored = stored_secret(user.id)
    assert is_encrypted(stored) and secret not in stored
    db.session.expire_all()
    assert db.session.get(User, user.id).totp_secret == secret


def test_a_secret_stored_before_encryption_still_works_and_the_command_encrypts_it(client, auth, runner):
    user, _ = enrolled_user()
    store_plain(user.id, SECRET)
    with freeze_time(T0):
        login_2fa(client, auth, user, oathtool(SECRET, T0))
        assert is_logged_in(client)
    assert reencrypt(runner) == "Re-encrypted 1 two-factor secret with the first key.\n"
    stored = stored_secret(user.id)
    assert is_encrypted(stored) and SECRET not in stored
    db.session.expire_all()
    assert db.session.get(User, user.id).totp_secret == SECRET


def test_a_new_key_first_then_the_command_then_the_old_key_can_go(app, make_app):  # app: empty tables
    old_app = make_app(FIELD_ENCRYPTION_KEYS="old-field-key")
    with old_app.app_context():
        user, _ = enrolled_user()
        user_id, old_token = user.id, stored_secret(user.id)

    both = make_app(FIELD_ENCRYPTION_KEYS="new-field-key, old-field-key")
    with both.app_context():
        assert db.session.get(User, user_id).totp_secret == SECRET  # the old key still opens it
        assert reencrypt(both.test_cli_runner()).startswith("Re-encrypted 1 two-factor secret")
        assert stored_secret(user_id) != old_token

    new_only = make_app(FIELD_ENCRYPTION_KEYS="new-field-key")
    with new_only.app_context(), freeze_time(T0):
        assert db.session.get(User, user_id).totp_secret == SECRET
        client = new_only.test_client()
        login_2fa(client, AuthActions(client), db.session.get(User, user_id), oathtool(SECRET, T0))
        assert is_logged_in(client)


def test_without_the_key_the_second_step_refuses_calmly_and_the_command_names_the_account(app, make_app):
    old_app = make_app(FIELD_ENCRYPTION_KEYS="lost-field-key")
    with old_app.app_context():
        user, _ = enrolled_user()
        user_id = user.id

    new_app = make_app(FIELD_ENCRYPTION_KEYS="new-field-key")
    with new_app.app_context(), freeze_time(T0):
        client = new_app.test_client()
        response = login_2fa(client, AuthActions(client), db.session.get(User, user_id), oathtool(SECRET, T0))
        assert response.status_code == 200 and not is_logged_in(client)  # "invalid code", never a 500
        result = new_app.test_cli_runner().invoke(args=["users", "reencrypt-secrets"])
        assert result.exit_code == 1 and f"1 secret(s) open with none of the keys (user ids {user_id})" in result.output
