"""Foundation: security headers, error pages, health check, production secrets."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import abort

from app import ConfigurationError, create_app
from app.access import ANYONE, allow
from config import ProductionConfig
from tests.security_headers import security_header_problems

ROOT = Path(__file__).resolve().parents[2]
def get_routes_without_arguments(app):
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments:
            yield rule.rule


def assert_security_headers(response):
    assert security_header_problems(response) == []


def test_every_get_route_carries_the_security_headers(app, client):
    routes = list(get_routes_without_arguments(app))
    assert "/" in routes and "/healthz" in routes
    for path in routes:
        response = client.get(path)
        assert_security_headers(response)
    with client.get("/static/css/app.css") as static_response:
        assert_security_headers(static_response)
    assert_security_headers(client.get("/no-such-page"))


def test_session_cookie_flags(app):
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_home_page_renders_layout(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "vendor/bootstrap/bootstrap.min.css" in html
    assert "<script>" not in html  # the CSP forbids inline scripts
    assert 'lang="en"' in html


def test_404_page_is_friendly_html(client):
    response = client.get("/there/is/nothing/here")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_404_as_json_for_json_clients(client):
    response = client.get("/there/is/nothing/here", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json["status"] == 404


def test_405_answers_with_allow_header(client):
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_405_html_page_for_browsers(client):
    response = client.delete("/", headers={"Accept": "text/html"})
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert "Not allowed" in response.get_data(as_text=True)


@pytest.mark.parametrize("status", [400, 403, 429, 503])
def test_error_pages_for_each_status(app, client, status):
    @app.get(f"/_test/abort/{status}")
    @allow(ANYONE)
    def aborting():
        abort(status)

    response = client.get(f"/_test/abort/{status}")
    assert response.status_code == status
    assert "Back to the home page" in response.get_data(as_text=True)


def test_500_in_production_mode_shows_no_traceback(make_app, tmp_path):
    app = make_app(
        ENV_NAME="production", TESTING=False, PROPAGATE_EXCEPTIONS=False, DEBUG=False,
        SECRET_KEY="a-real-secret-for-this-test-only",
    )

    @app.get("/_test/boom")
    @allow(ANYONE)
    def boom():
        raise RuntimeError("SELECT secret FROM users -- leaked?")

    response = app.test_client().get("/_test/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in body
    assert "Traceback" not in body and "SELECT" not in body and "RuntimeError" not in body
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["checks"]["database"] is True
    assert response.json["status"] == "ok"


def test_healthz_reports_redis_down(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0", RATELIMIT_STORAGE_URI="memory://",
                   CACHE_TYPE="SimpleCache")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": True, "redis": False}


def test_undeclared_endpoint_is_refused(app, client):
    @app.get("/_test/no-rule")
    def no_rule():
        return "should never be served"

    assert client.get("/_test/no-rule").status_code == 403


# ----------------------------------------------------------------- production secrets
def _start_production(env_overrides: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "TICKET_SIGNING_KEY")}
    env.update({"GUICHET_ENV": "production", "DATABASE_URL": "sqlite://", **env_overrides})
    return subprocess.run(
        [sys.executable, "-c", "from app import create_app; create_app()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


GOOD = {"SECRET_KEY": "9f1c0b4e-production-secret-value", "TICKET_SIGNING_KEY": "MC4CAQAwBQYDK2VwBCIEIExample"}


@pytest.mark.parametrize("variable", ["SECRET_KEY", "TICKET_SIGNING_KEY"])
@pytest.mark.parametrize("value", [None, "change-me"])
def test_production_refuses_to_start_without_secret(variable, value):
    env = dict(GOOD)
    if value is None:
        del env[variable]
    else:
        env[variable] = value
    result = _start_production(env)
    assert result.returncode != 0
    assert f"{variable} is missing or left at an example value" in result.stderr


def test_production_secret_check_accepts_real_values():
    with pytest.raises(ConfigurationError):
        create_app(ProductionConfig, {"SECRET_KEY": None})


def test_an_unchanged_session_is_not_written_back(app, client, auth, monkeypatch):
    """Pages that only read the session do not rewrite it (one store round trip less per page)."""
    from tests.factories import UserFactory

    auth.login(UserFactory())
    client.get("/account/")
    writes = []
    interface = app.session_interface
    original = interface._upsert_session
    monkeypatch.setattr(interface, "_upsert_session", lambda *a, **k: (writes.append(a), original(*a, **k)))
    for path in ("/events/", "/account/", "/"):
        assert client.get(path).status_code == 200
    assert writes == []
