"""Two app instances sharing PostgreSQL/SQLite and Redis behave as one site (needs TEST_REDIS_URL).

A login made on one instance is valid on the other, a revoke made on one takes effect on the
other at once (the session-state cache lives in Redis and is invalidated there), and the
login rate-limit counts are shared.
"""
from __future__ import annotations

import os

import pytest
import redis
import sqlalchemy as sa

from app.extensions import db
from app.models import UserSession
from tests.factories import DEFAULT_PASSWORD, UserFactory

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="set TEST_REDIS_URL to run the shared-Redis tests")
COOKIE = "guichet_session"


@pytest.fixture
def instances(app, make_app):
    other = make_app()
    assert app.config["SESSION_TYPE"] == other.config["SESSION_TYPE"] == "redis"
    assert app.config["CACHE_TYPE"] == other.config["CACHE_TYPE"] == "RedisCache"
    assert app.config["RATELIMIT_STORAGE_URI"].startswith("redis://")
    return app, other


def carry_cookie(source, target) -> None:
    target.set_cookie(COOKIE, source.get_cookie(COOKIE).value)


def test_login_on_one_instance_is_valid_on_the_other(instances, auth):
    first, second = instances
    user = UserFactory()
    browser_a = first.test_client()
    assert auth.login(user, client=browser_a).status_code == 302
    browser_b = second.test_client()
    carry_cookie(browser_a, browser_b)  # the load balancer sends the next request elsewhere
    page = browser_b.get("/account/")
    assert page.status_code == 200 and user.email in page.get_data(as_text=True)


def test_revoke_on_one_instance_takes_effect_on_the_other(instances, auth):
    first, second = instances
    user = UserFactory()
    laptop = first.test_client()
    phone_on_a = first.test_client()
    auth.login(user, client=laptop)
    auth.login(user, client=phone_on_a)
    phone_on_b = second.test_client()
    carry_cookie(phone_on_a, phone_on_b)
    assert phone_on_b.get("/account/").status_code == 200  # its state is now cached in Redis
    client = redis.Redis.from_url(TEST_REDIS_URL)
    assert any(client.scan_iter(f"{first.config['CACHE_KEY_PREFIX']}auth:session:*"))

    phone_row = db.session.scalars(sa.select(UserSession).order_by(UserSession.id)).all()[1]
    assert laptop.post(f"/account/sessions/{phone_row.id}/revoke").status_code == 302
    assert phone_on_b.get("/account/").status_code == 302
    assert laptop.get("/account/").status_code == 200


def test_logout_on_one_instance_ends_the_session_on_the_other(instances, auth):
    first, second = instances
    user = UserFactory()
    browser_a = first.test_client()
    auth.login(user, client=browser_a)
    browser_b = second.test_client()
    carry_cookie(browser_a, browser_b)
    assert browser_b.get("/account/").status_code == 200
    assert browser_a.post("/auth/logout").status_code == 302
    assert browser_b.get("/account/").status_code == 302


def test_rate_limit_counts_are_shared(instances):
    first, second = instances
    user = UserFactory()
    a, b = first.test_client(), second.test_client()
    for n in range(5):
        browser = a if n % 2 == 0 else b
        response = browser.post("/auth/login", data={"email": user.email, "password": "Wrong-password-1"},
                                environ_overrides={"REMOTE_ADDR": "192.0.2.200"})
        assert response.status_code == 200
    client = redis.Redis.from_url(TEST_REDIS_URL)
    assert any(client.scan_iter(f"{first.config['RATELIMIT_KEY_PREFIX']}*"))  # the counters live in Redis
    for browser in (a, b):
        response = browser.post("/auth/login", data={"email": user.email, "password": DEFAULT_PASSWORD},
                                environ_overrides={"REMOTE_ADDR": "192.0.2.200"})
        assert response.status_code == 429
