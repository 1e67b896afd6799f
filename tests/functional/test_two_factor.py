"""Two-factor authentication through HTTP: enrolment (QR read by zbarimg), the login second step
(codes from oathtool), recovery codes, disabling, the staff gate and the admin reset."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from app.access import ADMIN, STAFF, allow
from app.extensions import db
from app.models import AuditEvent, RecoveryCode, User
from app.services import two_factor
from app.services.totp import hash_recovery_code, provisioning_uri
from tests.checkers import oathtool
from tests.factories import DEFAULT_PASSWORD, UserFactory

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
T0 = datetime(2026, 5, 4, 10, 0, 5, tzinfo=UTC)  # 5 s into a 30 s step: no boundary nearby


# --------------------------------------------------------------------------- helpers


def zbarimg(png: bytes, tmp_path) -> str:
    """Decode a QR code with zbar (Debian's zbar-tools), independent of the code that drew it."""
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg missing: apt-get install -y zbar-tools")
    path = tmp_path / "qr.png"
    path.write_bytes(png)
    done = subprocess.run(["zbarimg", "-q", "--raw", "--nodbus", "-Sdisable", "-Sqrcode.enable", str(path)], check=False, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def html(response) -> str:
    return response.get_data(as_text=True)


def enrolled_user(**kwargs) -> tuple[User, list[str]]:
    """A user whose 2FA (SECRET) was turned on an hour before T0."""
    user = UserFactory(**kwargs)
    earlier = T0 - timedelta(hours=1)
    codes = two_factor.enable_two_factor(db.session, user, SECRET, oathtool(SECRET, earlier), now=earlier)
    return user, codes


def is_logged_in(client) -> bool:
    response = client.get("/account/2fa")
    return response.status_code == 200


def second_step(client, code):
    return client.post("/auth/2fa", data={"code": code})


def login_2fa(client, auth, user, code):
    response = auth.login(user, client=client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/2fa")
    return second_step(client, code)


def audit_types() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.type).order_by(AuditEvent.id)))


# --------------------------------------------------------------------------- enrolment
def test_enrolment_qr_decodes_to_the_exact_otpauth_uri(client, auth, tmp_path):
    user = UserFactory(email="ana.lopez@example.test")
    auth.login(user)
    page = html(client.get("/account/2fa/setup"))
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page).group(1)
    shown = re.search(r'id="totp-secret"[^>]*>([^<]+)<', page).group(1)
    assert shown.replace(" ", "") == secret and len(secret) == 32
    data_uri = re.search(r'<img[^>]+src="data:image/png;base64,([^"]+)"', page).group(1)

    decoded = zbarimg(base64.b64decode(data_uri), tmp_path)

    assert decoded == provisioning_uri(secret, "ana.lopez@example.test")
    uri = urlparse(decoded)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == "/Guichet:ana.lopez@example.test"
    assert parse_qs(uri.query) == {"secret": [secret], "issuer": ["Guichet"]}
    # the pending secret lives in the server-side session, not in the cookie, and survives a reload
    assert secret not in (client.get_cookie("guichet_session").value if client.get_cookie("guichet_session") else "")
    assert f'data-secret="{secret}"' in html(client.get("/account/2fa/setup"))


def test_enrolment_turns_on_only_with_a_valid_code(client, auth, outbox):
    user = UserFactory()
    with freeze_time(T0) as frozen:
        auth.login(user)
        page = html(client.get("/account/2fa/setup"))
        secret = re.search(r'data-secret="([A-Z2-7]+)"', page).group(1)

        wrong = client.post("/account/2fa/setup", data={"code": "000000"})
        assert wrong.status_code == 200 and "That code is not valid" in html(wrong)
        assert 'aria-invalid="true"' in html(wrong)
        assert f'data-secret="{secret}"' in html(wrong)  # same key: nothing to re-scan
        blank = client.post("/account/2fa/setup", data={"code": ""})
        assert "Enter the 6-digit code" in html(blank)
        db.session.refresh(user)
        assert not user.has_2fa and user.totp_secret is None

        frozen.tick(31)
        response = client.post("/account/2fa/setup", data={"code": oathtool(secret, T0 + timedelta(seconds=31))})
        assert response.status_code == 302 and response.headers["Location"].endswith("/account/2fa/recovery-codes")
        check_codes_shown_once(client, user, secret, outbox)


def check_codes_shown_once(client, user, secret, outbox):
    db.session.refresh(user)
    assert user.has_2fa and user.totp_secret == secret
    assert "2fa_enabled" in audit_types()
    assert [m.subject for m in outbox] == ["Guichet — two-factor authentication is on"]

    codes_page = html(client.get("/account/2fa/recovery-codes"))
    codes = re.findall(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", codes_page)
    assert len(codes) == 10
    stored = set(db.session.scalars(sa.select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)))
    assert stored == {hash_recovery_code(c) for c in codes}

    # shown once: a reload does not show them again, the download still works for a moment
    again = html(client.get("/account/2fa/recovery-codes"))
    assert not any(code in again for code in codes) and "shown only once" in again
    download = client.get("/account/2fa/recovery-codes.txt")
    assert download.status_code == 200 and download.mimetype == "text/plain"
    assert download.headers["Content-Disposition"] == 'attachment; filename="guichet-recovery-codes.txt"'
    assert all(code in download.get_data(as_text=True) for code in codes)
    # ... until the user moves on; then never again
    client.post("/account/2fa/recovery-codes/done")
    gone = client.get("/account/2fa/recovery-codes.txt")
    assert gone.status_code == 302
    assert not any(code in html(client.get("/account/2fa/recovery-codes")) for code in codes)
    # and the setup page now says it is already on
    assert client.get("/account/2fa/setup").headers["Location"].endswith("/account/2fa")


def test_recovery_code_download_expires(client, auth):
    user = UserFactory()
    with freeze_time(T0) as frozen:
        auth.login(user)
        secret = re.search(r'data-secret="([A-Z2-7]+)"', html(client.get("/account/2fa/setup"))).group(1)
        client.post("/account/2fa/setup", data={"code": oathtool(secret, T0)})
        assert client.get("/account/2fa/recovery-codes.txt").status_code == 200
        frozen.tick(11 * 60)
        assert client.get("/account/2fa/recovery-codes.txt").status_code == 302


def test_enrolment_pages_need_a_login(client):
    for url in ("/account/2fa", "/account/2fa/setup", "/account/2fa/recovery-codes.txt"):
        response = client.get(url)
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


# --------------------------------------------------------------------------- login second step
def test_login_asks_for_the_second_factor_and_accepts_an_oathtool_code(client, auth):
    user, _ = enrolled_user()
    with freeze_time(T0):
        response = auth.login(user, next_url="/account/2fa")
        assert response.headers["Location"].endswith("/auth/2fa")
        page = client.get("/auth/2fa")
        assert page.status_code == 200 and "Two-step verification" in html(page)

        response = second_step(client, oathtool(SECRET, T0))

        assert response.status_code == 302 and response.headers["Location"].endswith("/account/2fa")
        assert is_logged_in(client)
    db.session.refresh(user)
    assert user.totp_last_step == int(T0.timestamp()) // 30
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == "login_succeeded")).one()
    assert event.subject_user_id == user.id or event.actor_id == user.id


def test_half_logged_in_state_grants_nothing_else(app, client, auth):
    user, _ = enrolled_user(role="staff")

    @app.get("/_test/staff-only")
    @allow(STAFF, ADMIN)
    def staff_only():
        return "staff page"

    with freeze_time(T0):
        auth.login(user)
        for url in ("/account/2fa", "/account/2fa/setup", "/_test/staff-only"):
            response = client.get(url)
            assert response.status_code == 302 and "/auth/login" in response.headers["Location"], url
        for url in ("/account/2fa/disable", "/account/2fa/recovery-codes/new"):
            response = client.post(url, data={"disable-password": DEFAULT_PASSWORD,
                                              "disable-code": oathtool(SECRET, T0)})
            assert response.status_code == 302 and "/auth/login" in response.headers["Location"], url
        # still waiting for the code, and the code still works
        assert client.get("/auth/2fa").status_code == 200
        assert second_step(client, oathtool(SECRET, T0)).status_code == 302
        assert client.get("/_test/staff-only").get_data(as_text=True) == "staff page"


def test_wrong_code_shows_a_message_and_stays_on_the_second_step(client, auth):
    user, _ = enrolled_user()
    with freeze_time(T0):
        auth.login(user)
        for bad in ("123456", "", "not a code", "ABCDE-FGHJK", "9" * 80):
            response = second_step(client, bad)
            assert response.status_code == 200
            body = html(response)
            assert "Two-step verification" in body and 'aria-invalid="true"' in body
            assert ("That code is not valid" in body or "Enter the code" in body
                    or "too long" in body), bad
            if bad:
                assert f'value="{bad}"' not in body
            assert not is_logged_in(client)
            assert client.get("/auth/2fa").status_code == 200  # still on the second step
    assert "login_succeeded" not in audit_types()


def test_the_same_code_is_refused_the_second_time(client, auth, app):
    user, _ = enrolled_user()
    code = oathtool(SECRET, T0)
    with freeze_time(T0):
        assert login_2fa(client, auth, user, code).status_code == 302
        auth.logout()
        assert not is_logged_in(client)
        other = app.test_client()  # even from another browser
        response = login_2fa(other, auth, user, code)
        assert response.status_code == 200 and "That code is not valid" in html(response)
        assert not is_logged_in(other)


def test_a_code_two_steps_old_is_refused(client, auth):
    user, _ = enrolled_user()
    with freeze_time(T0):
        response = login_2fa(client, auth, user, oathtool(SECRET, T0 - timedelta(seconds=60)))
        assert response.status_code == 200 and "That code is not valid" in html(response)
        # one step old is inside the ±1 window
        assert second_step(client, oathtool(SECRET, T0 - timedelta(seconds=30))).status_code == 302


def test_second_step_expires_after_five_minutes(client, auth):
    user, _ = enrolled_user()
    with freeze_time(T0) as frozen:
        auth.login(user)
        frozen.tick(5 * 60 + 1)
        now = T0 + timedelta(seconds=5 * 60 + 1)
        response = second_step(client, oathtool(SECRET, now))
        assert response.status_code == 302 and response.headers["Location"].endswith("/auth/login")
        assert "took more than 5 minutes" in html(client.get("/auth/login"))
        assert not is_logged_in(client)
        assert client.get("/auth/2fa").headers["Location"].endswith("/auth/login")
    db.session.refresh(user)
    assert user.totp_last_step == int((T0 - timedelta(hours=1)).timestamp()) // 30  # code not spent


def test_second_step_is_rate_limited(client, auth):
    # Real time here: the in-memory limiter's expiry thread runs on the real clock.
    user, _ = enrolled_user()
    auth.login(user)
    for _ in range(5):
        assert second_step(client, "000000").status_code == 200
    response = second_step(client, oathtool(SECRET, datetime.now(UTC)))
    assert response.status_code == 429 and "Too many" in html(response)
    assert not is_logged_in(client)
    db.session.refresh(user)
    assert user.totp_last_step == int((T0 - timedelta(hours=1)).timestamp()) // 30


def test_second_step_without_a_password_first(client):
    response = client.get("/auth/2fa")
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/login")
    assert client.post("/auth/2fa", data={"code": "123456"}).status_code == 302


def test_each_recovery_code_works_once(client, auth, app):
    user, codes = enrolled_user()
    with freeze_time(T0):
        response = login_2fa(client, auth, user, codes[0].lower())
        assert response.status_code == 302
        assert "9 left" in html(client.get("/account/2fa"))
        auth.logout()
        other = app.test_client()
        refused = login_2fa(other, auth, user, codes[0])
        assert refused.status_code == 200 and "That code is not valid" in html(refused)
        assert second_step(other, codes[1]).status_code == 302
    used = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == "2fa_recovery_code_used")).all()
    assert [e.details["remaining"] for e in used] == [9, 8]
    assert all(code not in str(e.details) for e in used for code in codes)


# --------------------------------------------------------------------------- disable / regenerate
@pytest.mark.parametrize("password, code_when", [
    ("Wrong-Password-123", T0), (DEFAULT_PASSWORD, T0 - timedelta(minutes=3)), (DEFAULT_PASSWORD, None), ("", T0)])
def test_disabling_without_the_right_password_and_code_fails(client, auth, outbox, password, code_when):
    user, _ = enrolled_user()
    with freeze_time(T0):
        login_2fa(client, auth, user, oathtool(SECRET, T0 - timedelta(seconds=30)))
        code = oathtool(SECRET, code_when) if code_when else "12345x"
        response = client.post("/account/2fa/disable", data={"disable-password": password, "disable-code": code})
        assert response.status_code == 200
        body = html(response)
        assert "password or your code is not right" in body or "Enter your password" in body
        assert DEFAULT_PASSWORD not in body
    db.session.refresh(user)
    assert user.has_2fa and db.session.scalar(sa.select(sa.func.count(RecoveryCode.id))) == 10
    assert "2fa_disabled" not in audit_types()
    assert not any("off" in m.subject for m in outbox)


def test_disabling_with_password_and_code(client, auth, outbox):
    user, _ = enrolled_user()
    with freeze_time(T0):
        login_2fa(client, auth, user, oathtool(SECRET, T0 - timedelta(seconds=30)))
        response = client.post("/account/2fa/disable",
                               data={"disable-password": DEFAULT_PASSWORD, "disable-code": oathtool(SECRET, T0)})
        assert response.status_code == 302
        assert "is <strong>off</strong>" in html(client.get("/account/2fa"))
    db.session.refresh(user)
    assert not user.has_2fa and user.totp_secret is None
    assert db.session.scalar(sa.select(sa.func.count(RecoveryCode.id))) == 0
    assert audit_types()[-1] == "2fa_disabled"
    notice = outbox[-1]
    assert notice.subject == "Guichet — two-factor authentication is off" and notice.recipients == [user.email]
    assert "turned off" in notice.body and "turned off" in notice.html
    # logging in now needs the password only
    auth.logout()
    assert auth.login(user).headers["Location"].endswith("/")


def test_regenerating_recovery_codes_needs_password_and_code(client, auth, outbox):
    user, old_codes = enrolled_user()
    with freeze_time(T0):
        login_2fa(client, auth, user, oathtool(SECRET, T0 - timedelta(seconds=30)))
        refused = client.post("/account/2fa/recovery-codes/new",
                              data={"regenerate-password": "nope-nope-nope", "regenerate-code": oathtool(SECRET, T0)})
        assert refused.status_code == 200 and "password or your code is not right" in html(refused)
        assert not outbox
        response = client.post("/account/2fa/recovery-codes/new",
                               data={"regenerate-password": DEFAULT_PASSWORD, "regenerate-code": old_codes[5]})
        assert response.headers["Location"].endswith("/account/2fa/recovery-codes")
        new_codes = re.findall(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", html(client.get(response.headers["Location"])))
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    stored = set(db.session.scalars(sa.select(RecoveryCode.code_hash)))
    assert stored == {hash_recovery_code(c) for c in new_codes}
    assert outbox[-1].subject == "Guichet — new recovery codes"
    assert "2fa_recovery_codes_regenerated" in audit_types()


def test_notice_reaches_a_real_smtp_server(client, auth, smtp_server):
    user, _ = enrolled_user()
    with freeze_time(T0):
        login_2fa(client, auth, user, oathtool(SECRET, T0 - timedelta(seconds=30)))
        client.post("/account/2fa/disable",
                    data={"disable-password": DEFAULT_PASSWORD, "disable-code": oathtool(SECRET, T0)})
    [message] = [m for m in smtp_server.messages if "two-factor" in m["Subject"]]
    assert message["To"] == user.email
    assert {part.get_content_type() for part in message.walk()} >= {"text/plain", "text/html"}


# --------------------------------------------------------------------------- staff gate
def register_staff_page(app):
    @app.get("/_test/staff-page")
    @allow(STAFF, ADMIN)
    def staff_page():
        return "staff page"


@pytest.mark.parametrize("role", ["staff", "admin"])
@freeze_time(T0)
def test_staff_without_2fa_is_sent_to_enrolment(app, client, auth, role):
    register_staff_page(app)
    user = UserFactory(role=role)
    auth.login(user)
    urls = ["/_test/staff-page"] + (["/tickets/scan"] if "tickets.scan" in app.view_functions else [])
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].endswith("/account/2fa/setup"), url
    setup_page = html(client.get("/account/2fa/setup"))
    assert "must turn on two-factor authentication" in setup_page
    api = client.get("/_test/staff-page", headers={"Accept": "application/json"})
    assert api.status_code == 403 and api.json["error"] == "2fa_required"
    # pages for any signed-in user still work
    assert client.get("/account/2fa").status_code == 200

    secret = re.search(r'data-secret="([A-Z2-7]+)"', setup_page).group(1)
    assert client.post("/account/2fa/setup", data={"code": oathtool(secret, T0)}).status_code == 302
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert client.get("/_test/staff-page").get_data(as_text=True) == "staff page"


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)
def test_staff_gate_can_be_turned_off(app, client, auth):
    register_staff_page(app)
    auth.login(UserFactory(role="staff"))
    assert client.get("/_test/staff-page").status_code == 200


def test_customers_are_not_sent_to_enrolment(app, client, auth):
    register_staff_page(app)
    auth.login(UserFactory())
    assert client.get("/_test/staff-page").status_code == 403
    assert client.get("/account/2fa").status_code == 200


# --------------------------------------------------------------------------- admin reset
def login_admin(client, auth):
    admin, _ = enrolled_user(role="admin")
    with freeze_time(T0):
        assert login_2fa(client, auth, admin, oathtool(SECRET, T0)).status_code == 302
    return admin


@freeze_time(T0)
def test_admin_resets_2fa_after_checking_identity(client, auth, outbox):
    user, _ = enrolled_user()
    admin = login_admin(client, auth)
    url = f"/admin/users/{user.id}/reset-2fa"
    confirm = client.get(url)
    assert confirm.status_code == 200 and user.email in html(confirm)
    assert "How did you check this person's identity?" in unescape(html(confirm))

    short = client.post(url, data={"identity_check": "ok"})
    assert short.status_code == 200 and "Between 10 and 500" in html(short)
    db.session.refresh(user)
    assert user.has_2fa

    response = client.post(url, data={"identity_check": "Passport seen on a video call"})
    assert response.status_code == 302
    db.session.refresh(user)
    assert not user.has_2fa and db.session.scalar(sa.select(sa.func.count(RecoveryCode.id)).where(
        RecoveryCode.user_id == user.id)) == 0
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == "2fa_reset_by_admin")).one()
    assert (event.actor_id, event.subject_user_id) == (admin.id, user.id)
    assert event.details == {"identity_check": "Passport seen on a video call"}
    assert outbox[-1].recipients == [user.email] and "reset" in outbox[-1].subject
    assert "no two-factor authentication to reset" in unescape(html(client.get(url)))
    assert client.get("/admin/users/999999/reset-2fa").status_code == 404


@pytest.mark.parametrize("role", ["customer", "staff"])
@freeze_time(T0)
def test_only_admins_reset_2fa(client, auth, role):
    target, _ = enrolled_user()
    user, _ = enrolled_user(role=role) if role == "staff" else (UserFactory(), None)
    with freeze_time(T0):
        if role == "staff":
            login_2fa(client, auth, user, oathtool(SECRET, T0))
        else:
            auth.login(user)
        assert client.get(f"/admin/users/{target.id}/reset-2fa").status_code == 403
        assert client.post(f"/admin/users/{target.id}/reset-2fa",
                           data={"identity_check": "trust me, it is them"}).status_code == 403
    db.session.refresh(target)
    assert target.has_2fa


# --------------------------------------------------------------------------- password reset
NEW_PASSWORD = "Brand-New-Lantern-Quiet-77"


def reset_link_and_code(client, outbox, user) -> tuple[str, str]:
    client.post("/auth/reset", data={"email": user.email})
    body = outbox[-1].body
    link = re.search(r"https?://\S+/auth/reset/\S+", body).group(0)
    code = re.search(r"\b(\d{6})\b", body.split(link)[-1]).group(1)
    return urlparse(link).path, code


@freeze_time(T0)
def test_password_reset_of_a_2fa_account_needs_the_second_factor(app, client, auth, outbox):
    if "auth.reset_with_token" not in app.view_functions:
        pytest.skip("the password reset flow (accounts issue) is not there yet")
    user, codes = enrolled_user()
    db.session.execute(sa.update(RecoveryCode).where(RecoveryCode.code_hash == hash_recovery_code(codes[0]))
                       .values(used_at=T0 - timedelta(minutes=30)))
    db.session.commit()
    elsewhere = app.test_client()  # a session of this user that a reset would revoke
    login_2fa(elsewhere, auth, user, oathtool(SECRET, T0 - timedelta(seconds=30)))
    assert is_logged_in(elsewhere)
    db.session.refresh(user)
    before = (user.password_hash, user.totp_last_step)
    path, email_code = reset_link_and_code(client, outbox, user)
    assert "Authentication code or recovery code" in html(client.get(path))

    # four wrong second factors (the reset voids itself at five) and a missing one
    attempts = ["", "000000", oathtool(SECRET, T0 - timedelta(seconds=30)),  # a step already used
                oathtool(SECRET, T0 - timedelta(seconds=90)), codes[0]]  # too old; a used recovery code
    for n, second_factor in enumerate(attempts):
        response = client.post(path, data={"code": email_code, "second_factor": second_factor,
                                           "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
                               environ_overrides={"REMOTE_ADDR": f"10.77.0.{n + 1}"})  # not the IP limit
        assert response.status_code == 200, second_factor
        assert 'aria-invalid="true"' in html(response)
        db.session.expire_all()
        assert (user.password_hash, user.totp_last_step) == before  # nothing changed
        assert len(two_factor.unused_recovery_codes(db.session, user)) == 9
        assert is_logged_in(elsewhere)
        assert "password_reset_completed" not in audit_types()
    assert auth.login(user, client=app.test_client()).headers["Location"].endswith("/auth/2fa")  # old password

    # with a valid second factor the same reset goes through (the test above could fail)
    response = client.post(path, data={"code": email_code, "second_factor": codes[1],
                                       "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
                           environ_overrides={"REMOTE_ADDR": "10.77.0.99"})
    assert response.status_code == 302
    db.session.expire_all()
    assert user.password_hash != before[0]
    assert len(two_factor.unused_recovery_codes(db.session, user)) == 8
    assert not is_logged_in(elsewhere)


def test_successful_codes_do_not_count_towards_the_limit(app, auth):
    """Many people logging in from one address (a venue's network) are not held up."""
    user, codes = enrolled_user()
    for code in codes[:7]:
        assert login_2fa(app.test_client(), auth, user, code).status_code == 302


def test_auth_helper_logs_in_with_the_second_factor(client, auth):
    user, _ = enrolled_user()
    assert auth.login_2fa(user, SECRET).status_code == 302
    assert is_logged_in(client)
    auth.logout()
    assert auth.login_2fa(user, SECRET).status_code == 302  # the next step, not the used one


def csrf_token_in(page: str, name: str = "csrf_token") -> str:
    return re.search(rf'name="{name}"[^>]*value="([^"]+)"', page).group(1)


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
@freeze_time(T0)
def test_two_factor_forms_refuse_a_post_without_the_csrf_token(client):
    user, _ = enrolled_user()
    login_page = html(client.get("/auth/login"))
    client.post("/auth/login", data={"email": user.email, "password": DEFAULT_PASSWORD,
                                     "csrf_token": csrf_token_in(login_page)})
    code = oathtool(SECRET, T0)
    refused = client.post("/auth/2fa", data={"code": code})
    assert refused.status_code == 400 and not is_logged_in(client)
    token = csrf_token_in(html(client.get("/auth/2fa")))
    assert client.post("/auth/2fa", data={"code": code, "csrf_token": token}).status_code == 302

    page = html(client.get("/account/2fa"))
    later = oathtool(SECRET, T0 + timedelta(seconds=30))
    no_token = client.post("/account/2fa/disable", data={"disable-password": DEFAULT_PASSWORD, "disable-code": later})
    assert no_token.status_code == 400
    db.session.refresh(user)
    assert user.has_2fa
    with_token = client.post("/account/2fa/disable", data={
        "disable-password": DEFAULT_PASSWORD, "disable-code": later,
        "disable-csrf_token": csrf_token_in(page, "disable-csrf_token")})
    assert with_token.status_code == 302
    db.session.refresh(user)
    assert not user.has_2fa
