"""Application factory: `create_app(config)` wires extensions, blueprints, errors and commands."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask

load_dotenv()  # before config.py reads the environment

from app import csrf_tokens
from app.extensions import (
    bcrypt,
    cache,
    csrf,
    db,
    limiter,
    login_manager,
    mail,
    sess,
)
from app.models.encrypted import configure_field_encryption
from config import EXAMPLE_VALUES, Config, config_from_env


class ConfigurationError(RuntimeError):
    """The configuration cannot run safely (e.g. a missing secret in production)."""


def create_app(config: type[Config] | None = None, overrides: Mapping | None = None) -> Flask:
    config = config or config_from_env()
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or str(Path(__file__).parent.parent / "instance"))
    app.config.from_object(config)
    if overrides:
        app.config.update(overrides)
    check_required_secrets(app)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    configure_logging(app)
    configure_field_encryption(field_encryption_keys(app.config))
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_security(app)
    register_template_helpers(app)
    register_commands(app)
    register_proxy_fix(app)
    return app


def check_required_secrets(app: Flask) -> None:
    """Production refuses to start without real secrets, naming the variable to set."""
    for name in app.config.get("REQUIRED_SECRETS", ()):
        value = app.config.get(name)
        if value is None or str(value).strip().lower() in EXAMPLE_VALUES or "change-me" in str(value):
            raise ConfigurationError(
                f"{name} is missing or left at an example value; set {name} in the environment "
                "before starting Guichet in production."
            )


def field_encryption_keys(config: Mapping) -> list[str]:
    """FIELD_ENCRYPTION_KEYS, comma-separated, or SECRET_KEY alone."""
    keys = [key.strip() for key in (config.get("FIELD_ENCRYPTION_KEYS") or "").split(",") if key.strip()]
    return keys or [config["SECRET_KEY"]]


def configure_logging(app: Flask) -> None:
    level = getattr(logging, str(app.config.get("LOG_LEVEL", "INFO")).upper(), logging.INFO)
    if not app.debug and not app.testing:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app.logger.setLevel(level)
    dsn = app.config.get("SENTRY_DSN")
    if dsn:
        import sentry_sdk
        from sentry_sdk.integrations.flask import FlaskIntegration

        # Request bodies may hold card numbers, passwords and codes: never send them.
        sentry_sdk.init(dsn=dsn, integrations=[FlaskIntegration()], send_default_pii=False,
                        max_request_body_size="never", environment=app.config.get("ENV_NAME"))


def register_migration_commands(app: Flask) -> None:
    """`flask db …` (Flask-Migrate). It loads Alembic, about 12 MB in every process, so the web
    workers, which never migrate, leave it out (gunicorn.conf.py sets GUICHET_WEB_SERVER=1)."""
    from flask_migrate import Migrate

    Migrate(app, db, render_as_batch=True)


def register_extensions(app: Flask) -> None:
    from app.backends import configure_backends

    configure_backends(app)  # picks SQLite/PostgreSQL, files/Redis for sessions, cache, limits
    db.init_app(app)
    if app.config["MIGRATION_COMMANDS"]:
        register_migration_commands(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    csrf_tokens.install(app)
    bcrypt.init_app(app)
    mail.init_app(app)
    cache.init_app(app)
    sess.init_app(app)
    limiter.init_app(app)

    from app import models  # noqa: F401  (register every table)
    from app.backends import tune_sqlite
    from app.db_pool import install_idle_ping

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            tune_sqlite(db.engine)
        else:
            install_idle_ping(db.engine, app.config["DATABASE_PING_IDLE_SECONDS"])
        if db.engine.dialect.driver == "psycopg":
            from app.db_late_begin import install_late_begin

            install_late_begin(app, db)
    from app import prefetch
    from app.auth.loader import register_user_loader

    register_user_loader(app)
    prefetch.register(app)


def register_blueprints(app: Flask) -> None:
    from app.account import bp as account_bp
    from app.admin import bp as admin_bp
    from app.auth import bp as auth_bp
    from app.cart import bp as cart_bp
    from app.invitations import bp as invitations_bp
    from app.main import bp as main_bp
    from app.offers import bp as offers_bp
    from app.orders import bp as orders_bp
    from app.tickets import bp as tickets_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp, url_prefix="/auth")
    app.register_blueprint(invitations_bp, url_prefix="/invitations")
    app.register_blueprint(account_bp, url_prefix="/account")
    app.register_blueprint(offers_bp, url_prefix="/events")
    app.register_blueprint(cart_bp, url_prefix="/cart")
    app.register_blueprint(orders_bp, url_prefix="/orders")
    app.register_blueprint(tickets_bp, url_prefix="/tickets")
    app.register_blueprint(admin_bp, url_prefix="/admin")


def register_errorhandlers(app: Flask) -> None:
    from app.errors import register

    register(app)


def register_security(app: Flask) -> None:
    from app.access import enforce_access
    from app.security import set_security_headers

    app.before_request(enforce_access)
    app.after_request(set_security_headers)


def register_template_helpers(app: Flask) -> None:
    from app import flashes, form_html
    from app.templating import register

    register(app)
    flashes.install(app)  # flash() and get_flashed_messages() through a cookie, not the session
    form_html.install()  # WTForms' field attributes, same HTML, without Markup.format


def register_commands(app: Flask) -> None:
    from app.cli import register
    from app.orders.cli import register_email_commands

    register(app)
    register_email_commands(app)  # `flask emails work` / `status` (the email outbox)


def register_proxy_fix(app: Flask) -> None:
    """Behind nginx, take the client address and scheme from the X-Forwarded-* headers the
    proxy sets (PROXY_FIX_X_FOR / PROXY_FIX_X_PROTO = number of trusted proxy hops); per-IP
    rate limits and audit IPs then see the real client, not the proxy."""
    x_for = int(app.config.get("PROXY_FIX_X_FOR") or 0)
    x_proto = int(app.config.get("PROXY_FIX_X_PROTO") or 0)
    if x_for or x_proto:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=x_for, x_proto=x_proto)
