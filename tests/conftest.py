"""Test harness: app, client, runner, db (clean per test), mail, SMTP, live server and browser.

The suite runs on the embedded defaults (a temporary SQLite file, in-process cache, sessions
and rate limits). `TEST_DATABASE_URL` (PostgreSQL) and `TEST_REDIS_URL` switch it to real
services; each run gets its own PostgreSQL schema and Redis key prefixes, removed at the end.

Tests may use `db.session` directly: pytest-flask pushes a request context around each test,
so models created in a test are visible to the requests the test client makes.
"""
from __future__ import annotations

import email
import email.policy
import itertools
import os
import secrets
import shutil
import socket
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import cache, db, limiter, mail
from config import TestingConfig

RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"


# --------------------------------------------------------------------------- database
def _postgres_url_with_schema(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """One database per test run: a temporary SQLite file, or a fresh PostgreSQL schema."""
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
        return
    schema = f"guichet_test_{RUN_ID}"
    admin_engine = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_url_with_schema(TEST_DATABASE_URL, schema)
    finally:
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin_engine.dispose()


@pytest.fixture(scope="session")
def base_config(database_url, tmp_path_factory):
    config = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "MAIL_OUTBOX_DIR": None,
        "TICKET_SIGNING_KEY_FILE": str(tmp_path_factory.mktemp("keys") / "ticket-signing-key.pem"),
        "SESSION_DIR": str(tmp_path_factory.mktemp("sessions")),
    }
    if TEST_REDIS_URL:
        config.update({
            "REDIS_URL": TEST_REDIS_URL,
            "SESSION_KEY_PREFIX": f"guichet_test_{RUN_ID}:session:",
            "CACHE_KEY_PREFIX": f"guichet_test_{RUN_ID}:cache:",
            "RATELIMIT_KEY_PREFIX": f"guichet_test_{RUN_ID}",
            # limiter.reset() then clears only this run's counters, not a parallel run's.
            "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": f"guichet_test_{RUN_ID}_limits"},
        })
    else:
        from cachelib import SimpleCache

        config["SESSION_CACHELIB"] = None  # replaced per app below
        config["_SESSION_CACHELIB_FACTORY"] = SimpleCache
    return config


@pytest.fixture(scope="session")
def _schema(base_config):
    """Create the tables once per run; each test then empties them."""
    app = create_app(TestingConfig, _resolve(base_config, {}))
    with app.app_context():
        db.create_all()
    yield
    with app.app_context():
        db.drop_all()
        db.engine.dispose()
    if TEST_REDIS_URL:
        import redis

        client = redis.Redis.from_url(TEST_REDIS_URL)
        for key in client.scan_iter(f"guichet_test_{RUN_ID}*"):
            client.delete(key)


def _resolve(base_config: dict, overrides: dict) -> dict:
    config = {k: v for k, v in base_config.items() if not k.startswith("_")}
    if "_SESSION_CACHELIB_FACTORY" in base_config:
        config["SESSION_CACHELIB"] = base_config["_SESSION_CACHELIB_FACTORY"](threshold=100_000)
    config.update(overrides)
    return config


def empty_all_tables() -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def make_app(base_config, _schema):
    """Build extra app instances (e.g. two instances sharing Redis) with config overrides."""
    apps = []

    def factory(**overrides):
        app = create_app(TestingConfig, _resolve(base_config, overrides))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(request, make_app):
    overrides = {}
    marker = request.node.get_closest_marker("app_config")
    if marker:
        overrides.update(marker.kwargs)
    if "smtp_server" in request.fixturenames:
        smtp = request.getfixturevalue("smtp_server")
        overrides.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, MAIL_SUPPRESS_SEND=False,
                         MAIL_USE_TLS=False, MAIL_USE_SSL=False)
    app = make_app(**overrides)
    with app.app_context():
        empty_all_tables()
        cache.clear()
        limiter.reset()
    yield app
    with app.app_context():
        db.session.rollback()
        db.session.remove()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --------------------------------------------------------------------------- auth helper
_client_addresses = itertools.count(1)


def next_client_address() -> str:
    """A distinct 10.x.y.z per call, so per-IP login limits never trip in tests that log several people in."""
    n = next(_client_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255 or 1}"


class AuthActions:
    """`auth.login(user_or_email)` performs a real POST to /auth/login; `auth.logout()` a real POST."""

    def __init__(self, client):
        self._client = client

    def login(self, user_or_email, password=None, client=None, *, remember=False, next_url=None):
        from tests.factories import DEFAULT_PASSWORD

        email = getattr(user_or_email, "email", user_or_email)
        data = {"email": email, "password": password or DEFAULT_PASSWORD}
        if remember:
            data["remember"] = "y"
        if next_url:
            data["next"] = next_url
        return (client or self._client).post("/auth/login", data=data,
                                             environ_overrides={"REMOTE_ADDR": next_client_address()})

    def logout(self, client=None):
        return (client or self._client).post("/auth/logout")

    def login_2fa(self, user, secret=None, *, code=None, client=None, **login_kwargs):
        """Password, then the second step (/auth/2fa) with `code`, or with a TOTP made from
        `secret` for a step not used yet (the current one, else the next: inside the ±1 window)."""
        from datetime import UTC, datetime

        import pyotp

        from app.models import User
        from app.services.totp import STEP_SECONDS, time_step

        client = client or self._client
        self.login(user, client=client, **login_kwargs)
        if code is None:
            last = db.session.scalar(sa.select(User.totp_last_step).where(User.id == user.id))
            step = max(time_step(datetime.now(UTC)), (last or 0) + 1)
            code = pyotp.TOTP(secret or user.totp_secret).at(step * STEP_SECONDS)
        return client.post("/auth/2fa", data={"code": code})


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def outbox(app):
    """Messages handed to Flask-Mail (sent or suppressed) during the test."""
    with mail.record_messages() as messages:
        yield messages


# --------------------------------------------------------------------------- SMTP
class SmtpSink:
    """A real SMTP server on 127.0.0.1 collecting parsed messages."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    sink.port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


# --------------------------------------------------------------------------- live server + browser
@pytest.fixture
def live_server(app):
    """The app served on 127.0.0.1 on a free port, in a thread, for the browser."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Live:
        url = f"http://127.0.0.1:{server.server_port}"
        port = server.server_port

    Live.app = app  # pytest-flask looks for it

    try:
        yield Live()
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _chromium_missing_message() -> str:
    return (f"Chromium not found at {CHROMIUM}: install Debian's browser with "
            "`apt-get install -y chromium` (Playwright's own download does not work here).")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if os.environ.get("REQUIRE_E2E"):
            pytest.fail(_chromium_missing_message())
        pytest.skip(_chromium_missing_message())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context; records console errors and requests leaving 127.0.0.1."""
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.console_errors = []
    page.foreign_requests = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))

    def track(request):
        host = request.url.split("/")[2] if "://" in request.url else ""
        if request.url.startswith(("http://", "https://", "ws://", "wss://")) and not host.startswith("127.0.0.1"):
            page.foreign_requests.append(request.url)

    page.on("request", track)
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def artifacts_dir():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
