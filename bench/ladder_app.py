"""The WSGI apps of the check-in ladder (bench/checkin_ladder.py): each rung adds one layer of the
real check-in to a bare Flask app, so the rungs show what each layer costs under the same load.

    LADDER_RUNG=flask       read the JSON body, answer JSON: HTTP, gunicorn and Flask alone
    LADDER_RUNG=write       + one committed write per scan (psycopg, autocommit): the ticket's row
                            is updated to the same values, so no ticket is used up
    LADDER_RUNG=check_in    + the real `check_in` service through SQLAlchemy instead of that write:
                            signature, digest, the one statement with audit event and scan record
    LADDER_RUNG=services    + the bearer token's state (a Redis GET) and the statistics version
                            bump (a Redis SET): every service call the API view makes

None of the app's extensions, hooks or middlewares is loaded: the real endpoint (the last rung,
measured on the app itself) adds those. The settings come from the bench server's environment
(DATABASE_URL, REDIS_URL, TICKET_SIGNING_KEY, SCANNER_TOKEN_CACHE_SECONDS, CACHE_KEY_PREFIX).
"""
from __future__ import annotations

import os
import threading
from datetime import UTC, datetime

from flask import Flask, jsonify, request

RUNGS = ("flask", "write", "check_in", "services")
RUNG = os.environ.get("LADDER_RUNG", "flask")
if RUNG not in RUNGS:
    raise SystemExit(f"LADDER_RUNG must be one of {', '.join(RUNGS)}, not {RUNG!r}")

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok", rung=RUNG)


def payload_text():
    data = request.get_json(silent=True)
    payload = data.get("payload") if isinstance(data, dict) else None
    return payload if isinstance(payload, str) else None


if RUNG == "flask":
    @app.post("/tickets/api/check-in")
    def flask_only():
        text = payload_text()
        return jsonify(verdict="FLOOR", length=len(text or "")), 200 if text else 400

elif RUNG == "write":
    import psycopg

    from app.services.signing import PayloadError, parse_payload

    _local = threading.local()
    _TOUCH = "UPDATE tickets SET checked_in_at = checked_in_at WHERE id = %s RETURNING id, number"

    def connection() -> psycopg.Connection:
        """One autocommit connection per gunicorn thread (no pool: the least a write can cost)."""
        conn = getattr(_local, "conn", None)
        if conn is None or conn.closed:
            url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
            conn = _local.conn = psycopg.connect(url, autocommit=True)
        return conn

    @app.post("/tickets/api/check-in")
    def one_write():
        try:
            ticket_id = parse_payload(payload_text() or "").ticket_id
        except PayloadError:
            return jsonify(verdict="MALFORMED"), 400
        row = connection().execute(_TOUCH, (ticket_id,)).fetchone()
        return jsonify(verdict="FLOOR", ticket=row[1] if row else None)

else:
    import redis
    import sqlalchemy as sa
    from cachelib.redis import RedisCache
    from sqlalchemy.orm import scoped_session, sessionmaker

    from app.messages import message_for
    from app.services.checkin import check_in
    from app.services.scanner_tokens import staff_id_for_token
    from app.services.signing import load_private_key
    from app.services.stats import bump_stats_version

    engine = sa.create_engine(os.environ["DATABASE_URL"], pool_size=32, max_overflow=8)
    Session = scoped_session(sessionmaker(engine))
    cache = RedisCache(redis.Redis.from_url(os.environ["REDIS_URL"]),
                       key_prefix=os.environ.get("CACHE_KEY_PREFIX", "guichet:cache:"))
    public_key = load_private_key(os.environ["TICKET_SIGNING_KEY"]).public_key()
    token_seconds = int(os.environ.get("SCANNER_TOKEN_CACHE_SECONDS", "10"))
    steward_id = int(os.environ.get("LADDER_STAFF_ID", "0"))

    @app.post("/tickets/api/check-in")
    def services():
        now = datetime.now(UTC)
        try:
            if RUNG == "services":
                _, _, token = request.headers.get("Authorization", "").partition(" ")
                staff_id = staff_id_for_token(Session, token.strip(), now=now, cache=cache,
                                              cache_seconds=token_seconds)
                if staff_id is None:
                    return jsonify(error="invalid_token"), 401
            else:
                staff_id = steward_id
            text = payload_text()
            if text is None:
                return jsonify(error="payload_required"), 400
            result = check_in(Session, public_key, text, staff_id=staff_id, now=now, ip_address=request.remote_addr)
            if RUNG == "services":
                bump_stats_version(cache)  # what the app's after-commit listener does
            body = result.as_json()
            body["message"] = message_for(f"scan_{result.verdict}")
            return jsonify(body)
        finally:
            Session.remove()
