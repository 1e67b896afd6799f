"""The WSGI apps of the check-in ladder (bench/checkin_ladder.py): each rung adds one layer of the
real check-in to a bare Flask app, so the rungs show what each layer costs under the same load.

    LADDER_RUNG=flask       read the JSON body, answer JSON: HTTP, gunicorn and Flask alone
    LADDER_RUNG=write       + one committed write per scan (psycopg, autocommit): the ticket's row
                            is updated to the same values, so no ticket is used up
    LADDER_RUNG=minimal     beside the ladder, not a step of it: all of a valid scan's required
                            work, written as lean as we know how:
                            the signature checked, then one hand-written statement (psycopg,
                            autocommit, prepared) that checks the bearer token and its owner, the
                            double-key digest, checks the ticket in and writes the audit event
                            and the scan record; no ORM, no Redis, no statistics bump (nor the
                            token's last use, which the app writes once per 10 minutes)
    LADDER_RUNG=check_in    + the real `check_in` service instead of that write, for a fixed
                            steward: signature, digest, the one statement with audit event and
                            scan record, through the SQLAlchemy session
    LADDER_RUNG=services    + the bearer token, as the API view calls the services: checked in
                            the same statement (`check_in_by_token`), and the statistics
                            version bump shared by the scans of STATS_REFRESH_DELAY_SECONDS

None of the app's extensions, hooks or middlewares is loaded: the real endpoint (the last rung,
measured on the app itself) adds those. The settings come from the bench server's environment
(DATABASE_URL, REDIS_URL, TICKET_SIGNING_KEY, SCANNER_TOKEN_CACHE_SECONDS, CACHE_KEY_PREFIX).
"""
from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Flask, jsonify, request

RUNGS = ("flask", "write", "minimal", "check_in", "services")
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

elif RUNG in ("write", "minimal"):
    import hashlib

    from app.services.signing import (
        DIGEST_PREFIX_BYTES,
        PayloadError,
        load_private_key,
        parse_payload,
        verify_signature,
    )
    from bench.common import thread_connection

    _TOUCH = "UPDATE tickets SET checked_in_at = checked_in_at WHERE id = %s RETURNING id, number"
    # Every check a valid scan needs (token usable, owner an active staff member, digest of the
    # owner's current key, ticket neither used nor void) and every row it writes, in one round trip.
    _MINIMAL = f"""
        WITH caller AS (
            SELECT u.id FROM scanner_tokens t JOIN users u ON u.id = t.user_id
            WHERE t.token_hash = %(token_hash)s AND t.revoked_at IS NULL AND t.expires_at > %(now)s
              AND u.disabled_at IS NULL AND u.role IN ('staff', 'admin')),
        taken AS (
            UPDATE tickets SET checked_in_at = %(now)s, checked_in_by_id = (SELECT id FROM caller)
            WHERE tickets.id = %(ticket_id)s AND checked_in_at IS NULL AND voided_at IS NULL
              AND EXISTS (SELECT 1 FROM caller)
              AND substring(sha256((SELECT user_key FROM users WHERE users.id = tickets.user_id)
                                   || purchase_key) FROM 1 FOR {DIGEST_PREFIX_BYTES}) = %(digest_prefix)s
            RETURNING tickets.id, number, user_id, event_id, offer_id, persons, holder_name),
        audit AS (
            INSERT INTO audit_events (type, actor_id, subject_user_id, ip_address, details, created_at)
            SELECT 'check_in', caller.id, taken.user_id, %(ip)s,
                   json_build_object('ticket_id', taken.id, 'ticket_number', taken.number,
                                     'event_id', taken.event_id, 'persons', taken.persons), %(now)s
            FROM taken, caller),
        scan AS (
            INSERT INTO check_ins (ticket_id, event_id, staff_id, verdict, scanned_at)
            SELECT taken.id, taken.event_id, caller.id, 'VALID', %(now)s FROM taken, caller)
        SELECT (SELECT id FROM caller), taken.id, taken.number, taken.holder_name, taken.persons,
               offers.name, events.title, events.starts_at
        FROM (SELECT 1) AS one LEFT JOIN taken ON true
             LEFT JOIN offers ON offers.id = taken.offer_id LEFT JOIN events ON events.id = taken.event_id
    """
    _public_key = load_private_key(os.environ["TICKET_SIGNING_KEY"]).public_key() if RUNG == "minimal" else None

    def one_write():
        try:
            ticket_id = parse_payload(payload_text() or "").ticket_id
        except PayloadError:
            return jsonify(verdict="MALFORMED"), 400
        row = thread_connection().execute(_TOUCH, (ticket_id,)).fetchone()
        return jsonify(verdict="FLOOR", ticket=row[1] if row else None)

    def minimal():
        now = datetime.now(UTC)
        _, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            parsed = parse_payload(payload_text() or "")
        except PayloadError:
            return jsonify(verdict="MALFORMED"), 400
        if not verify_signature(_public_key, parsed):
            return jsonify(verdict="FORGED")
        row = thread_connection().execute(_MINIMAL, {
            "token_hash": hashlib.sha256(token.strip().encode()).hexdigest(), "now": now,
            "ticket_id": parsed.ticket_id, "digest_prefix": parsed.digest_prefix,
            "ip": request.remote_addr}, prepare=True).fetchone()
        if row[0] is None:
            return jsonify(error="invalid_token"), 401
        if row[1] is None:  # a refusal: the real endpoint reads the ticket to say which
            return jsonify(verdict="NOT_TAKEN")
        return jsonify(verdict="VALID", ticket={
            "id": row[1], "number": row[2], "holder": row[3], "persons": row[4], "offer": row[5],
            "event": row[6], "starts_at": row[7].isoformat()}, checked_in_at=now.isoformat(),
            scanned_at=now.isoformat())

    app.add_url_rule("/tickets/api/check-in", view_func=one_write if RUNG == "write" else minimal,
                     methods=["POST"])

else:
    import redis
    import sqlalchemy as sa
    from cachelib.redis import RedisCache
    from sqlalchemy.orm import scoped_session, sessionmaker

    from app.coalescer import Coalescer
    from app.messages import message_for
    from app.services.checkin import check_in, check_in_by_token
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

    bump_soon = Coalescer(lambda: bump_stats_version(cache),
                          float(os.environ.get("STATS_REFRESH_DELAY_SECONDS", "0.25")))

    @app.post("/tickets/api/check-in")
    def services():
        now = datetime.now(UTC)
        try:
            text = payload_text()
            if text is None:
                return jsonify(error="payload_required"), 400
            if RUNG == "services":
                _, _, token = request.headers.get("Authorization", "").partition(" ")
                token = token.strip()
                result = check_in_by_token(
                    Session, public_key, text, token=token, now=now, ip_address=request.remote_addr,
                    staff_id_for_token=lambda: staff_id_for_token(Session, token, now=now, cache=cache,
                                                                  cache_seconds=token_seconds))
                if result is None:
                    return jsonify(error="invalid_token"), 401
                if result.is_valid:
                    bump_soon.request()  # what the app's after-commit listener asks for
            else:
                result = check_in(Session, public_key, text, staff_id=steward_id, now=now,
                                  ip_address=request.remote_addr)
            body = result.as_json()
            body["message"] = message_for(f"scan_{result.verdict}")
            return jsonify(body)
        finally:
            Session.remove()
