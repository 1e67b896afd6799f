"""Configuration classes, read from the environment (and `.env` via python-dotenv).

The embedded defaults (SQLite, file sessions, in-process cache and rate limits,
emails to an outbox folder) need no service at all; setting `DATABASE_URL` and
`REDIS_URL` switches to PostgreSQL and Redis.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_PATH", BASE_DIR / "instance"))

# Values shipped in .env.example: production refuses to start with them.
EXAMPLE_VALUES = {"", "change-me", "changeme", "dev", "dev-insecure-secret-key", "example"}


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def database_url(url: str | None, default: str) -> str:
    """Accept the `postgres://` URLs hosting providers hand out, and use psycopg 3."""
    if not url:
        return default
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Config:
    ENV_NAME = "base"
    SECRET_KEY = env("SECRET_KEY", "dev-insecure-secret-key")
    TICKET_SIGNING_KEY = env("TICKET_SIGNING_KEY")
    TICKET_SIGNING_KEY_FILE = env("TICKET_SIGNING_KEY_FILE", str(INSTANCE_DIR / "ticket-signing-key.pem"))
    # Tickets: how long a scanner app's bearer token lasts, and how many one staff member may hold.
    SCANNER_TOKEN_DAYS = env_int("SCANNER_TOKEN_DAYS", 30)
    SCANNER_TOKENS_PER_USER = env_int("SCANNER_TOKENS_PER_USER", 20)
    # A scanner token's state is cached this long at most (revoking or demoting deletes it at once).
    SCANNER_TOKEN_CACHE_SECONDS = env_int("SCANNER_TOKEN_CACHE_SECONDS", 10)
    # HMAC key for hashing invitation and password-reset codes (kept out of the database).
    CODE_PEPPER = env("CODE_PEPPER")
    # Keys for the columns stored encrypted (TOTP secrets: app/models/encrypted.py), comma-separated:
    # the first encrypts, all decrypt. Unset: SECRET_KEY.
    FIELD_ENCRYPTION_KEYS = env("FIELD_ENCRYPTION_KEYS")

    SQLALCHEMY_DATABASE_URI = database_url(
        env("DATABASE_URL"), f"sqlite:///{INSTANCE_DIR / 'guichet.sqlite'}"
    )
    # Pool options are set in app/backends.py (and the idle ping in app/db_pool.py).
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {}
    # Connections per process (PostgreSQL). A request keeps its connection until it ends; the
    # requests beyond these wait for a free one (up to SQLAlchemy's 30 s pool timeout). No
    # overflow by default: the pool closes an overflow connection as soon as it comes back with
    # the pool full, so under a rush connections came and went by the hundred, each a new
    # PostgreSQL backend to start and warm (16 + 0 against 16 + 16: 15 % less CPU per order for
    # the whole machine, bench/README.md). Processes × both must stay below PostgreSQL's
    # max_connections (100 by default).
    DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 16)
    DATABASE_MAX_OVERFLOW = env_int("DATABASE_MAX_OVERFLOW", 0)
    # PostgreSQL: a pooled connection idle this many seconds or more is pinged before reuse (0:
    # every checkout, like pool_pre_ping); one used more recently is not, saving a round trip per
    # checkout. Trade-off: after a PostgreSQL restart under load, the request that reuses a dead
    # connection first fails (a 500; a few if they reuse one at the same moment); its error
    # invalidates the whole pool, so the following requests reconnect.
    DATABASE_PING_IDLE_SECONDS = env_int("DATABASE_PING_IDLE_SECONDS", 10)
    # Requests one gunicorn worker runs at once; the others wait before the app, in arrival order
    # (app/in_flight.py, installed by gunicorn.conf.py). As many as the pooled connections: none
    # then waits for one inside the app, holding its session and objects. 0 = no cap.
    REQUESTS_IN_FLIGHT = env_int("REQUESTS_IN_FLIGHT", DATABASE_POOL_SIZE)
    REDIS_URL = env("REDIS_URL")
    # Redis connections per process for sessions and cache (and as many for rate limits); a
    # request that finds none free waits up to REDIS_POOL_TIMEOUT seconds (app/backends.py).
    REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 64)
    REDIS_POOL_TIMEOUT = env_int("REDIS_POOL_TIMEOUT", 10)
    # `flask db …` (Alembic): everywhere but in the web workers (see register_migration_commands).
    MIGRATION_COMMANDS = not env_bool("GUICHET_WEB_SERVER", False)

    # Server-side sessions (Flask-Session); the backend is chosen in app.extensions.
    SESSION_TYPE = "cachelib"
    SESSION_DIR = env("SESSION_DIR", str(INSTANCE_DIR / "sessions"))
    SESSION_KEY_PREFIX = env("SESSION_KEY_PREFIX", "guichet:session:")
    SESSION_PERMANENT = True
    PERMANENT_SESSION_LIFETIME = timedelta(hours=env_int("SESSION_LIFETIME_HOURS", 12))
    # Write the server-side session only when it changed (not on every page): one store round
    # trip less per request; the lifetime then counts from the last change.
    SESSION_REFRESH_EACH_REQUEST = False
    SESSION_COOKIE_NAME = "guichet_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_DURATION = timedelta(days=14)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False

    CACHE_TYPE = "SimpleCache"
    CACHE_DEFAULT_TIMEOUT = 300
    CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", "guichet:cache:")

    RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_KEY_PREFIX = env("RATELIMIT_KEY_PREFIX", "guichet")
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True

    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    BCRYPT_LOG_ROUNDS = env_int("BCRYPT_LOG_ROUNDS", 12)
    # bcrypt runs on a background thread this many nice steps below the web threads (0 = in the
    # request thread, at full priority): a burst of sign-ins cannot starve the pages others load.
    PASSWORD_HASHING_NICE = env_int("PASSWORD_HASHING_NICE", 10)

    MAIL_SERVER = env("MAIL_SERVER")
    MAIL_PORT = env_int("MAIL_PORT", 25)
    MAIL_USE_TLS = env_bool("MAIL_USE_TLS", False)
    MAIL_USE_SSL = env_bool("MAIL_USE_SSL", False)
    MAIL_USERNAME = env("MAIL_USERNAME")
    MAIL_PASSWORD = env("MAIL_PASSWORD")
    MAIL_TIMEOUT = env_int("MAIL_TIMEOUT", 10)  # seconds for each SMTP step (connect, each command)
    MAIL_DEFAULT_SENDER = env("MAIL_DEFAULT_SENDER", "Guichet <tickets@guichet.test>")
    # When no SMTP server is configured, messages are written here as .eml files.
    MAIL_OUTBOX_DIR = env("MAIL_OUTBOX_DIR", str(INSTANCE_DIR / "outbox"))
    # Order emails (confirmation with PDF tickets, cancellation) leave the request when on: it only
    # queues them and `flask emails work` sends them, at this nice value (lower CPU priority than the web:
    # the lowest by default, so that during an on-sale the buyers keep the cores and the emails catch up
    # afterwards; bench/README.md, "Runs of 2026-11-25").
    MAIL_QUEUE = env_bool("MAIL_QUEUE", False)
    EMAIL_WORKER_NICE = env_int("EMAIL_WORKER_NICE", 19)
    # Sent and given-up order emails are deleted after this many days (by the worker, hourly,
    # or `flask emails purge`); pending ones are kept whatever their age.
    EMAIL_JOBS_KEEP_DAYS = env_int("EMAIL_JOBS_KEEP_DAYS", 30)

    PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    DISPLAY_TIMEZONE = "Europe/Paris"
    MAX_TICKETS_PER_EVENT = env_int("MAX_TICKETS_PER_EVENT", 10)
    ORDER_HOLD_MINUTES = env_int("ORDER_HOLD_MINUTES", 15)
    # Shop: cart size, catalogue cache lifetime (a safety net: writes invalidate it at once),
    # and payment attempts per customer (slows card testing).
    MAX_CART_LINES = env_int("MAX_CART_LINES", 20)
    CATALOGUE_CACHE_SECONDS = env_int("CATALOGUE_CACHE_SECONDS", 60)
    # How long a process reuses the catalogue version it read from the shared cache: its own
    # changes show at once, another instance's within this delay (0 = ask on every page).
    CATALOGUE_VERSION_RECHECK_SECONDS = env_float("CATALOGUE_VERSION_RECHECK_SECONDS", 0.5)
    # Sales, cancellations and lapsed holds refresh the seat counts together, at most this long
    # after the change (one Redis write for a burst of sales; 0 = at each sale). Placing an order
    # re-checks the seats in the database whatever a page showed.
    CATALOGUE_SEATS_DELAY_SECONDS = env_float("CATALOGUE_SEATS_DELAY_SECONDS", 0.5)
    PAYMENT_RATE_LIMIT = env("PAYMENT_RATE_LIMIT", "20/minute")
    PAYMENT_PROVIDER = env("PAYMENT_PROVIDER", "mock")  # the app-wide provider (app/payments_provider.py)
    # Admin dashboard statistics: a safety net only, every sale, cancellation and check-in invalidates them.
    STATS_CACHE_SECONDS = env_int("STATS_CACHE_SECONDS", 300)
    # Check-ins at the gates and customers' payments invalidate them together, at most this long
    # after the change (one Redis write per burst instead of one per scan or sale); cancellations
    # and administrators' changes at once.
    STATS_REFRESH_DELAY_SECONDS = env_float("STATS_REFRESH_DELAY_SECONDS", 0.25)
    INVITATION_DAYS = env_int("INVITATION_DAYS", 7)
    PASSWORD_RESET_MINUTES = 20
    EMAIL_VERIFICATION_HOURS = env_int("EMAIL_VERIFICATION_HOURS", 48)
    REQUIRE_2FA_FOR_STAFF = env_bool("REQUIRE_2FA_FOR_STAFF", True)
    USER_CACHE_SECONDS = env_int("USER_CACHE_SECONDS", 30)
    SENTRY_DSN = env("SENTRY_DSN")
    LOG_LEVEL = env("LOG_LEVEL", "INFO")
    STATIC_MAX_AGE = 3600
    # Behind a reverse proxy (nginx): how many proxies in front set X-Forwarded-For / -Proto
    # (werkzeug ProxyFix). 0 ignores the headers: right when clients reach the app directly,
    # since they could forge them (and dodge the per-IP rate limits).
    PROXY_FIX_X_FOR = env_int("PROXY_FIX_X_FOR", 0)
    PROXY_FIX_X_PROTO = env_int("PROXY_FIX_X_PROTO", 0)


class DevelopmentConfig(Config):
    ENV_NAME = "development"
    DEBUG = env_bool("FLASK_DEBUG", False)
    REQUIRE_2FA_FOR_STAFF = env_bool("REQUIRE_2FA_FOR_STAFF", False)


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    WTF_CSRF_ENABLED = False  # the CSRF sweep test turns it back on
    SECRET_KEY = "testing-secret-key-not-for-production"
    BCRYPT_LOG_ROUNDS = 4
    SQLALCHEMY_DATABASE_URI = "sqlite://"  # replaced by the test fixtures
    MAIL_SERVER = None
    MAIL_SUPPRESS_SEND = True
    MAIL_OUTBOX_DIR = None
    MAIL_QUEUE = False  # the pay request sends the email; tests turn the queue on themselves
    RATELIMIT_ENABLED = True
    REQUIRE_2FA_FOR_STAFF = True
    USER_CACHE_SECONDS = 30
    STATS_REFRESH_DELAY_SECONDS = 0  # at once: tests of the delay set it themselves
    CATALOGUE_SEATS_DELAY_SECONDS = 0
    SENTRY_DSN = None
    PROXY_FIX_X_FOR = 0
    PROXY_FIX_X_PROTO = 0


class ProductionConfig(Config):
    ENV_NAME = "production"
    DEBUG = False
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    PREFERRED_URL_SCHEME = "https"
    # Production runs behind nginx (deploy/nginx.conf): trust one proxy hop by default.
    PROXY_FIX_X_FOR = env_int("PROXY_FIX_X_FOR", 1)
    PROXY_FIX_X_PROTO = env_int("PROXY_FIX_X_PROTO", 1)
    MAIL_OUTBOX_DIR = env("MAIL_OUTBOX_DIR")
    REQUIRED_SECRETS = ("SECRET_KEY", "TICKET_SIGNING_KEY")


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_env() -> type[Config]:
    return CONFIGS.get(os.environ.get("GUICHET_ENV", "development"), DevelopmentConfig)
