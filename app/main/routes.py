"""Home page and /healthz."""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app, jsonify, render_template

from app.access import ANYONE, allow
from app.extensions import db
from app.main import bp
from app.models import Event


@bp.get("/")
@allow(ANYONE)
def home():
    now = datetime.now(UTC)
    events = db.session.scalars(
        sa.select(Event).where(Event.published.is_(True), Event.starts_at > now).order_by(Event.starts_at).limit(6)
    ).all()
    return render_template("main/home.html", events=events)


@bp.get("/healthz")
@allow(ANYONE)
def healthz():
    checks = {"database": _database_ok()}
    if current_app.config.get("REDIS_URL"):
        checks["redis"] = _redis_ok()
    healthy = all(checks.values())
    return jsonify(status="ok" if healthy else "degraded", checks=checks), (200 if healthy else 503)


def _database_ok() -> bool:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        current_app.logger.warning("health check: database unreachable")
        return False


def _redis_ok() -> bool:
    import redis

    client = current_app.extensions.get("healthz_redis")
    if client is None:  # one client (and its connection pool) per app, not one per check
        client = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=1, socket_connect_timeout=1)
        current_app.extensions["healthz_redis"] = client
    try:
        return bool(client.ping())
    except redis.RedisError:
        current_app.logger.warning("health check: redis unreachable")
        return False
