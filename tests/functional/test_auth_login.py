"""Login, logout, server-side sessions: rotation at login, revocation, `next`, the login limits."""
from __future__ import annotations

from datetime import UTC

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, User, UserSession
from tests.factories import DEFAULT_PASSWORD, UserFactory

SESSION_COOKIE = "guichet_session"


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def audit_types() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.type).order_by(AuditEvent.id)))


def session_cookie(client) -> str | None:
    cookie = client.get_cookie(SESSION_COOKIE)
    return cookie.value if cookie else None


def post_login(client, email, password, *, ip="192.0.2.10", **extra):
    return client.post("/auth/login", data={"email": email, "password": password, **extra},
                       environ_overrides={"REMOTE_ADDR": ip})


def test_login_page_shows_the_three_tabs(client):
    html = client.get("/auth/login").get_data(as_text=True)
    assert "Email / password" in html and "Forgot password" in html
    assert 'href="/auth/reset"' in html


def test_login_creates_a_session_row_and_logs_in(client, auth):
    user = UserFactory()
    response = auth.login(user)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    row = db.session.scalar(sa.select(UserSession))
    assert row.user_id == user.id and row.revoked_at is None and row.ip_address.startswith("10.")
    assert audit_types() == ["login_succeeded"]
    page = client.get("/account/")
    assert page.status_code == 200 and user.email in page.get_data(as_text=True)


def test_activate_tab_is_shown_only_when_invitations_exist(app, client):
    html = client.get("/auth/login").get_data(as_text=True)
    assert ("Activate my access" in html) == ("invitations.activate" in app.view_functions)


def test_session_cookie_changes_at_login_and_the_old_id_is_dead(app, client, auth):
    user = UserFactory()
    with client.session_transaction() as sess:
        sess["visitor_note"] = "kept"  # anonymous data survives the rotation
    before = session_cookie(client)
    assert before
    auth.login(user)
    after = session_cookie(client)
    assert after and after != before
    assert client.get("/account/").status_code == 200
    with client.session_transaction() as sess:
        assert sess["visitor_note"] == "kept"
    # The pre-login id no longer opens anything (no fixation): it is an anonymous, empty session.
    other = app.test_client()
    other.set_cookie(SESSION_COOKIE, before)
    response = other.get("/account/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize("known_email", [False, True])
def test_unknown_email_and_wrong_password_get_the_same_message(client, known_email):
    user = UserFactory(email="lucie@example.test")
    email = "lucie@example.test" if known_email else "nobody@example.test"
    users, sessions = count(User), count(UserSession)
    response = post_login(client, email, "Wrong-password-123")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The email or password is wrong." in html
    assert "Wrong-password-123" not in html  # never echo a password
    assert email in html  # the typed email is kept
    assert (count(User), count(UserSession)) == (users, sessions)
    event = db.session.scalar(sa.select(AuditEvent))
    assert event.type == "login_failed" and event.subject_user_id == (user.id if known_email else None)
    assert client.get("/account/").status_code == 302


def test_email_is_case_insensitive_at_login(client):
    UserFactory(email="lucie@example.test")
    assert post_login(client, "  Lucie@Example.TEST ", DEFAULT_PASSWORD).status_code == 302


def test_disabled_account_is_told_only_after_a_correct_password(client):
    from datetime import datetime

    user = UserFactory(disabled_at=datetime.now(UTC))
    wrong = post_login(client, user.email, "Wrong-password-123").get_data(as_text=True)
    assert "The email or password is wrong." in wrong and "disabled" not in wrong
    right = post_login(client, user.email, DEFAULT_PASSWORD, ip="192.0.2.11")
    assert right.status_code == 200
    assert "This account has been disabled." in right.get_data(as_text=True)
    assert count(UserSession) == 0
    assert client.get("/account/").status_code == 302


def test_unverified_customer_can_log_in(client, auth):
    user = UserFactory(email_verified_at=None)
    assert auth.login(user).status_code == 302
    html = client.get("/account/").get_data(as_text=True)
    assert "not confirmed" in html and "/auth/verify/resend" in html


def test_password_over_72_bytes_is_refused_without_error(client):
    user = UserFactory()
    response = post_login(client, user.email, "é" * 60)
    assert response.status_code == 200
    assert "The email or password is wrong." in response.get_data(as_text=True)


@pytest.mark.parametrize("next_url", [
    "https://evil.example", "//evil.example", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
    "http:/evil.example", "/\t/evil.example", "/%0a/evil.example\n", "evil.example", "///evil.example",
])
def test_open_redirect_next_values_are_ignored(client, next_url):
    user = UserFactory()
    response = post_login(client, user.email, DEFAULT_PASSWORD, next=next_url)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert count(UserSession) == 1  # logged in, just not sent away


def test_same_site_next_is_honoured_and_passed_through_the_form(client):
    user = UserFactory()
    page = client.get("/account/")
    assert page.status_code == 302
    login_url = page.headers["Location"]
    assert login_url.startswith("/auth/login?next=")
    assert 'value="/account/"' in client.get(login_url).get_data(as_text=True)
    response = post_login(client, user.email, DEFAULT_PASSWORD, next="/account/")
    assert response.headers["Location"] == "/account/"


def test_logout_revokes_the_row_and_clears_the_session(client, auth):
    user = UserFactory()
    auth.login(user)
    response = auth.logout()
    assert response.status_code == 302
    row = db.session.scalar(sa.select(UserSession))
    db.session.refresh(row)
    assert row.revoked_at is not None
    assert audit_types() == ["login_succeeded", "logout"]
    assert client.get("/account/").status_code == 302


def test_logout_by_get_is_not_allowed(client, auth):
    auth.login(UserFactory())
    assert client.get("/auth/logout", headers={"Accept": "application/json"}).status_code == 405
    assert client.get("/account/").status_code == 200


def test_revoked_session_is_anonymous_on_its_next_request(app, client, auth):
    user = UserFactory()
    laptop, phone = client, app.test_client()
    auth.login(user, client=laptop)
    auth.login(user, client=phone)
    assert phone.get("/account/").status_code == 200  # the state is now cached
    phone_row = db.session.scalars(sa.select(UserSession).order_by(UserSession.id)).all()[1]
    response = laptop.post(f"/account/sessions/{phone_row.id}/revoke")
    assert response.status_code == 302
    assert phone.get("/account/").status_code == 302  # anonymous at once, despite the cache
    assert laptop.get("/account/").status_code == 200


def test_disabling_a_user_logs_them_out_on_the_next_request(client, auth):
    from datetime import datetime

    user = UserFactory()
    auth.login(user)
    assert client.get("/account/").status_code == 200
    user.disabled_at = datetime.now(UTC)
    db.session.commit()
    assert client.get("/account/").status_code == 302


def test_role_change_takes_effect_and_rotates_the_session_id(client, auth):
    user = UserFactory()
    auth.login(user)
    assert client.get("/account/").status_code == 200
    before = session_cookie(client)
    user.role = "staff"
    db.session.commit()
    client.get("/account/")
    assert session_cookie(client) != before
    assert client.get("/account/").status_code == 200


def test_remember_me_restores_a_login_until_the_session_is_revoked(app, client, auth):
    user = UserFactory()
    auth.login(user, remember=True)
    remember = client.get_cookie("guichet_remember")
    assert remember is not None and remember.expires is not None and remember.http_only
    assert client.get_cookie(SESSION_COOKIE).expires is not None  # outlives the browser
    fresh = app.test_client()  # a browser restarted: only the remember cookie survives
    fresh.set_cookie("guichet_remember", remember.value)
    assert fresh.get("/account/").status_code == 200
    db.session.scalar(sa.select(UserSession)).revoked_at = db.session.scalar(sa.select(User.created_at))
    db.session.commit()
    again = app.test_client()
    again.set_cookie("guichet_remember", remember.value)
    assert again.get("/account/").status_code == 302


def test_tampered_remember_cookie_is_ignored(app):
    fresh = app.test_client()
    fresh.set_cookie("guichet_remember", "not-a-signed-value")
    assert fresh.get("/account/").status_code == 302


def test_without_remember_me_the_session_cookie_ends_with_the_browser(client, auth):
    auth.login(UserFactory())
    assert client.get_cookie(SESSION_COOKIE).expires is None
    assert client.get_cookie("guichet_remember") is None


def test_account_with_2fa_is_not_logged_in_after_the_password(client):
    from datetime import datetime

    user = UserFactory(totp_secret="JBSWY3DPEHPK3PXP", totp_enabled_at=datetime.now(UTC))
    response = post_login(client, user.email, DEFAULT_PASSWORD, next="/account/")
    assert response.status_code == 302 and response.headers["Location"] == "/auth/2fa"
    with client.session_transaction() as sess:
        pending = sess["pending_2fa"]
        assert pending["user_id"] == user.id and pending["next"] == "/account/" and pending["remember"] is False
        assert "_user_id" not in sess
    assert count(UserSession) == 0
    assert client.get("/account/").status_code == 302


# ----------------------------------------------------------------- rate limits
def test_sixth_failed_login_in_a_minute_answers_429_and_changes_nothing(client):
    user = UserFactory()
    for _ in range(5):
        assert post_login(client, user.email, "Wrong-password-123").status_code == 200
    audit_before, sessions_before = audit_types(), count(UserSession)
    hash_before = db.session.scalar(sa.select(User.password_hash))
    response = post_login(client, user.email, DEFAULT_PASSWORD)  # even the right password
    assert response.status_code == 429
    assert "Too many requests" in response.get_data(as_text=True)
    assert audit_types() == audit_before and count(UserSession) == sessions_before
    assert db.session.scalar(sa.select(User.password_hash)) == hash_before
    assert client.get("/account/").status_code == 302


def test_per_account_limit_holds_across_addresses(client):
    user = UserFactory()
    for n in range(5):
        post_login(client, user.email, "Wrong-password-123", ip=f"198.51.100.{n + 1}")
    assert post_login(client, user.email, DEFAULT_PASSWORD, ip="198.51.100.99").status_code == 429
    other = UserFactory()  # another account from a fresh address is not affected
    assert post_login(client, other.email, DEFAULT_PASSWORD, ip="198.51.100.100").status_code == 302


def test_per_ip_limit_holds_across_accounts(client):
    for n in range(5):
        post_login(client, f"nobody{n}@example.test", "Wrong-password-123", ip="203.0.113.5")
    user = UserFactory()
    assert post_login(client, user.email, DEFAULT_PASSWORD, ip="203.0.113.5").status_code == 429


def test_successful_logins_do_not_count_towards_the_limit(app):
    user = UserFactory()
    for _ in range(7):
        browser = app.test_client()
        assert post_login(browser, user.email, DEFAULT_PASSWORD).status_code == 302


# ----------------------------------------------------------------- CSRF and the 2FA step
def csrf_token_from(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"', html)
    return match.group(1) or match.group(2)


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_login_and_logout_need_the_csrf_token(client):
    user = UserFactory()
    refused = post_login(client, user.email, DEFAULT_PASSWORD)
    assert refused.status_code == 400 and count(UserSession) == 0
    token = csrf_token_from(client.get("/auth/login").get_data(as_text=True))
    ok = post_login(client, user.email, DEFAULT_PASSWORD, csrf_token=token)
    assert ok.status_code == 302
    assert client.post("/auth/logout").status_code == 400  # no token: still logged in
    assert client.get("/account/").status_code == 200
    html = client.get("/account/").get_data(as_text=True)
    assert client.post("/auth/logout", data={"csrf_token": csrf_token_from(html)}).status_code == 302
    assert client.get("/account/").status_code == 302


def test_2fa_step_ends_in_complete_login(client):
    pytest.importorskip("app.auth.two_factor")
    from datetime import datetime

    import pyotp

    secret = pyotp.random_base32()
    user = UserFactory(totp_secret=secret, totp_enabled_at=datetime.now(UTC))
    before = session_cookie(client) or ""
    post_login(client, user.email, DEFAULT_PASSWORD, next="/account/", remember="y")
    response = client.post("/auth/2fa", data={"code": pyotp.TOTP(secret).now()},
                           environ_overrides={"REMOTE_ADDR": "192.0.2.10"})
    assert response.status_code == 302 and response.headers["Location"] == "/account/"
    assert session_cookie(client) != before
    assert client.get_cookie("guichet_remember") is not None
    row = db.session.scalar(sa.select(UserSession))
    assert row.user_id == user.id
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.type == "login_succeeded"))
    assert event.details["method"] == "totp"
    assert client.get("/account/").status_code == 200
