"""The user key never reaches a person: no page, download, header or email a customer can get
shows it, in hex, base64 (standard or URL-safe, padded or not), base32 or raw."""
from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from werkzeug.routing import BuildError

from app.extensions import db
from app.models import Order, OrderLine, User
from app.services.tickets import issue_tickets
from tests.factories import OfferFactory, UserFactory


def key_forms(key: bytes) -> list[bytes]:
    b64, url = base64.b64encode(key), base64.urlsafe_b64encode(key)
    forms = [key, key.hex().encode(), key.hex().upper().encode(), b64, b64.rstrip(b"="), url, url.rstrip(b"="),
             base64.b32encode(key).rstrip(b"=")]
    return forms


def assert_no_key(key: bytes, where: str, data: bytes) -> None:
    for form in key_forms(key):
        assert form not in data, f"the user key appears on {where}"


def paid_order(user: User) -> Order:
    offer = OfferFactory()
    now = datetime.now(UTC)
    order = Order(code="GCH-ABCDEF", user_id=user.id, status="paid", total_cents=5000, created_at=now,
                  expires_at=now + timedelta(minutes=15), paid_at=now, idempotency_key="key-secrecy-test")
    order.lines.append(OrderLine(offer_id=offer.id, event_id=offer.event_id, quantity=2, persons=1,
                                 unit_price_cents=2500))
    db.session.add(order)
    db.session.flush()
    order.user = user
    issue_tickets(db.session, order, now=now)
    db.session.commit()
    return order


def reachable_paths(app, values: dict) -> list[str]:
    """Every GET route: those without arguments, and those whose arguments we can fill in."""
    paths = set()
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint == "static":
                continue
            if not set(rule.arguments) <= set(values):
                continue
            with contextlib.suppress(BuildError, ValueError):  # a converter refusing our value
                paths.add(url_for(rule.endpoint, **{name: values[name] for name in rule.arguments}))
    return sorted(paths)


def test_no_page_a_customer_can_reach_shows_their_user_key(app, client, auth, outbox):
    client.post("/auth/register", data={
        "username": "keyholder", "email": "keyholder@example.test", "first_name": "Kim", "last_name": "Holder",
        "password": "Velvet-Harbor-Lantern-93", "confirm": "Velvet-Harbor-Lantern-93"})
    user = db.session.scalar(sa.select(User).where(User.email == "keyholder@example.test"))
    user.email_verified_at = datetime.now(UTC)
    db.session.commit()
    key = user.user_key
    order = paid_order(user)
    ticket = order_ticket = db.session.execute(sa.text("SELECT id FROM tickets LIMIT 1")).scalar()
    event = order.lines[0].event

    for message in outbox:
        assert_no_key(key, f"the email {message.subject!r}", message.as_bytes())

    responses = {"anonymous /": client.get("/")}
    assert auth.login(user, "Velvet-Harbor-Lantern-93").status_code == 302
    values = {"slug": event.slug, "code": order.code, "order_code": order.code, "id": ticket,
              "ticket_id": order_ticket, "event_id": event.id, "offer_id": order.lines[0].offer_id,
              "filename": "css/app.css"}
    paths = reachable_paths(app, values) + ["/account/", "/account/profile", "/account/password",
                                            "/auth/verify/resend", "/account/2fa"]
    assert "/account/" in paths and "/" in paths and "/auth/login" in paths
    for path in paths:
        responses[path] = client.get(path)
    for where, response in responses.items():
        assert response.status_code != 500, where
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items()).encode()
        assert_no_key(key, where, response.get_data() + headers)
    # The pages were really the customer's (not login redirects).
    assert "Kim Holder" in responses["/account/"].get_data(as_text=True)


def test_the_key_is_not_in_the_cache_or_the_session_store(app, client, auth):
    """What every request reads from the shared cache leaves the secret columns out."""
    from app.auth.cache import user_cache_key
    from app.extensions import cache

    user = UserFactory()
    auth.login(user)
    db.session.expunge_all()  # the requests share the test's session: make them load the user themselves
    assert client.get("/account/").status_code == 200
    db.session.expunge_all()
    assert client.get("/account/").status_code == 200
    cached = cache.get(user_cache_key(user.id))
    assert cached is not None and cached["email"] == user.email
    assert "user_key" not in cached and "password_hash" not in cached and "totp_secret" not in cached
