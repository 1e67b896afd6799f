"""Deployment files, checked without a Docker engine (there is none on the build machine):
nginx's own `nginx -t` on deploy/nginx.conf, the compose file parsed as YAML, the Dockerfile's
contents, gunicorn.conf.py loaded through gunicorn's settings, ProxyFix behind a proxy, and a real
nginx -> gunicorn -> app run on 127.0.0.1 through deploy/entrypoint.sh.
"""
from __future__ import annotations

import gzip
import html
import http.client
import json
import os
import re
import runpy
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from flask import request, request_started

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
NGINX_HINT = "nginx not found: install Debian's nginx with `apt-get install -y nginx` (.ci/run does)."


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if not found:
        if os.environ.get("REQUIRE_E2E"):  # CI installs nginx: a missing one fails the run there
            pytest.fail(NGINX_HINT)
        pytest.skip(NGINX_HINT)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render_nginx_conf(tmp: Path, *, upstream: str, listen: str, static_root: Path) -> Path:
    """A copy of deploy/nginx.conf runnable here: upstream on 127.0.0.1, pid, logs and temp files
    under `tmp`, static files from `static_root`. Every substitution must match, so the test
    notices when the real file drifts away from what it checks."""
    text = NGINX_CONF.read_text()
    (tmp / "logs").mkdir(parents=True, exist_ok=True)
    temp = tmp / "temp"
    temp.mkdir(exist_ok=True)
    temp_paths = "".join(f"    {kind}_temp_path {temp / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    substitutions = [
        ("user nginx;", "user root;" if os.geteuid() == 0 else ""),  # Debian has no "nginx" user
        ("worker_processes auto;", "worker_processes 1;"),
        ("pid /var/run/nginx.pid;", f"pid {tmp / 'nginx.pid'};"),
        ("/var/log/nginx/", f"{tmp / 'logs'}/"),
        ("server web:8000 ", f"server {upstream} "),
        ("listen 80;", f"listen {listen};"),
        ("alias /srv/static/;", f"alias {static_root}/;"),
        ("http {\n", "http {\n" + temp_paths),
    ]
    for old, new in substitutions:
        assert old in text, f"deploy/nginx.conf no longer contains {old!r}"
        text = text.replace(old, new)
    conf = tmp / "nginx.conf"
    conf.write_text(text)
    return conf


# --------------------------------------------------------------------------- nginx
def test_nginx_config_passes_nginx_t(tmp_path):
    nginx = nginx_binary()
    conf = render_nginx_conf(tmp_path, upstream="127.0.0.1:8000", listen=f"127.0.0.1:{free_port()}",
                             static_root=ROOT / "app" / "static")
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "logs" / "error.log"),
                             "-c", str(conf)], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_nginx_t_rejects_a_broken_config(tmp_path):
    """The check above can fail: a config with an unknown directive does not pass."""
    nginx = nginx_binary()
    conf = render_nginx_conf(tmp_path, upstream="127.0.0.1:8000", listen=f"127.0.0.1:{free_port()}",
                             static_root=ROOT / "app" / "static")
    conf.write_text(conf.read_text().replace("client_max_body_size 2m;", "client_max_body_size 2m;\n    no_such_directive on;"))
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "logs" / "error.log"),
                             "-c", str(conf)], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "no_such_directive" in result.stderr


def test_nginx_config_proxies_to_web_and_serves_static():
    text = NGINX_CONF.read_text()
    active = "\n".join(line.split("#", 1)[0] for line in text.splitlines())  # without comments
    assert re.search(r"^events\s*\{", active, re.MULTILINE) and re.search(r"^http\s*\{", active, re.MULTILINE)
    assert re.search(r"upstream guichet_web\s*\{[^}]*server web:8000", active)
    assert "proxy_pass http://guichet_web;" in active
    for header in ("Host $host", "X-Forwarded-For $proxy_add_x_forwarded_for", "X-Forwarded-Proto $scheme"):
        assert f"proxy_set_header {header};" in active
    assert "location /static/" in active and "alias /srv/static/;" in active and "expires" in active
    assert "client_max_body_size" in active and "gzip on;" in active and "server_tokens off;" in active
    # The app's security headers pass through: nginx hides none of them.
    assert "proxy_hide_header" not in active
    # The two-instance layout for issue 9 is written down, ready to uncomment.
    assert re.search(r"#\s*server 127\.0\.0\.1:8001", text) and re.search(r"#\s*server 127\.0\.0\.1:8002", text)


# --------------------------------------------------------------------------- compose
def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_has_the_four_services_wired_together():
    compose = load_compose()
    services = compose["services"]
    assert set(services) >= {"web", "db", "redis", "nginx"}

    web = services["web"]
    assert web["build"] == "."
    assert web["env_file"] == ".env" or ".env" in web["env_file"]
    assert web["depends_on"]["db"]["condition"] == "service_healthy"
    assert web["depends_on"]["redis"]["condition"] == "service_healthy"
    env = web["environment"]
    assert env["GUICHET_ENV"] == "production"
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://") and "@db:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert str(env["PROXY_FIX_X_FOR"]) == "1"
    assert "ports" not in web  # only nginx is published

    db = services["db"]
    assert db["image"] == "postgres:16"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert services["redis"]["image"] == "redis:7" and "healthcheck" in services["redis"]

    nginx = services["nginx"]
    assert nginx["image"] == "nginx:stable"
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert nginx["depends_on"] == {"web": {"condition": "service_healthy"}} or "web" in nginx["depends_on"]
    # One volume: web exports its static files there, nginx serves it where nginx.conf says.
    assert "static:/srv/static" in web["volumes"] and "static:/srv/static:ro" in nginx["volumes"]
    assert env["STATIC_EXPORT_DIR"] == "/srv/static"
    assert "static" in compose["volumes"] and "pgdata" in compose["volumes"]


def test_compose_file_holds_no_secret():
    text = (ROOT / "docker-compose.yml").read_text()
    env = load_compose()["services"]["web"]["environment"]
    assert "SECRET_KEY" not in env and "TICKET_SIGNING_KEY" not in env  # they come from .env
    # The database password is interpolated from .env, and compose refuses to start without it.
    assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
    assert "${POSTGRES_PASSWORD:?" in load_compose()["services"]["db"]["environment"]["POSTGRES_PASSWORD"]
    assert "change-me" not in text


def test_compose_runs_the_email_worker_next_to_web(runner):
    """Issue 9: web only queues the confirmation emails (MAIL_QUEUE) and `worker`, the same image
    with the same settings, sends them with `flask emails work`."""
    compose = load_compose()
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    assert worker["image"] == web["image"] and worker["build"] == web["build"] == "."
    assert worker["command"] == ["flask", "emails", "work"]
    assert worker["env_file"] == web["env_file"]
    env, web_env = worker["environment"], web["environment"]
    for name in ("GUICHET_ENV", "DATABASE_URL", "REDIS_URL", "MAIL_QUEUE"):
        assert env[name] == web_env[name], name
    assert str(web_env["MAIL_QUEUE"]) == "1"
    assert "SECRET_KEY" not in env and "TICKET_SIGNING_KEY" not in env  # from .env, as for web
    # web runs the migrations; the worker starts once web is healthy (schema in place) and skips them.
    assert str(env["RUN_MIGRATIONS"]) == "0" and env["STATIC_EXPORT_DIR"] == ""
    assert worker["depends_on"]["web"]["condition"] == "service_healthy"
    assert worker["depends_on"]["db"]["condition"] == "service_healthy"
    assert "ports" not in worker and "expose" not in worker
    assert worker["healthcheck"] == {"disable": True}  # the image's check asks web's /healthz
    assert worker["restart"] == "unless-stopped"
    # Its container gets a low CPU weight (the nice value only ranks processes inside a container).
    assert worker["cpu_shares"] < web.get("cpu_shares", 1024)
    # The command is one the app really has, with the options the README documents.
    result = runner.invoke(args=[*worker["command"][1:], "--help"])
    assert result.exit_code == 0 and all(option in result.output for option in ("--poll", "--batch", "--once"))


# --------------------------------------------------------------------------- Dockerfile
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_runs_as_non_root_and_migrates_at_start():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}
    assert any(op == "RUN" and "pip install -r requirements.txt" in arg for op, arg in instructions)
    assert any(op == "ENV" and "GUICHET_ENV=production" in arg for op, arg in instructions)

    healthcheck = next(arg for op, arg in instructions if op == "HEALTHCHECK")
    assert "/healthz" in healthcheck and "curl" not in healthcheck and "python" in healthcheck

    entrypoint = json.loads(next(arg for op, arg in instructions if op == "ENTRYPOINT"))
    assert entrypoint == ["/app/deploy/entrypoint.sh"]
    cmd = json.loads(next(arg for op, arg in instructions if op == "CMD"))
    assert cmd == ["gunicorn", "--config", "gunicorn.conf.py", "run:app"]

    script = (ROOT / "deploy" / "entrypoint.sh").read_text()
    assert os.access(ROOT / "deploy" / "entrypoint.sh", os.X_OK)
    assert script.index("flask db upgrade") < script.index('exec "$@"')


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", "instance/", ".git"):
        assert entry in ignored


def test_runtime_requirements_are_pinned():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*", line), line


# --------------------------------------------------------------------------- gunicorn
def gunicorn_settings(monkeypatch, **env):
    """gunicorn.conf.py read the way gunicorn reads it: each value goes through its validator."""
    from gunicorn.config import Config

    for name in [n for n in os.environ if n.startswith("GUNICORN_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    namespace = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    for name, value in namespace.items():
        if name in cfg.settings:
            cfg.set(name, value)
    return cfg, namespace


def test_gunicorn_config_has_sane_defaults(monkeypatch):
    cfg, _ = gunicorn_settings(monkeypatch)
    assert cfg.bind == ["127.0.0.1:8000"]  # on a host: loopback only (the image sets 0.0.0.0)
    assert 1 <= cfg.workers <= 8
    assert cfg.worker_class_str == "gevent" and cfg.worker_connections == 1000  # chosen by bench/rush.py and logins.py
    assert cfg.threads == 32  # for GUNICORN_WORKER_CLASS=gthread
    assert cfg.timeout >= 30 and cfg.keepalive > 60  # outlives nginx's upstream keepalive
    assert cfg.preload_app is False
    assert cfg.reuse_port is True  # one listening socket per worker: the kernel spreads connections
    assert cfg.control_socket_disable is True
    assert "127.0.0.1" in cfg.forwarded_allow_ips
    for atom in ("%(r)s", "%(q)s", "%(f)s"):  # request line and referer may carry tokens
        assert atom not in cfg.access_log_format
    assert cfg.logger_class.__name__ == "RedactingLogger"


def test_gunicorn_config_follows_the_environment(monkeypatch):
    cfg, _ = gunicorn_settings(monkeypatch, GUNICORN_BIND="0.0.0.0:8000", GUNICORN_WORKERS="3",
                               GUNICORN_THREADS="4", GUNICORN_WORKER_CLASS="gthread",
                               GUNICORN_FORWARDED_ALLOW_IPS="*", GUNICORN_ACCESSLOG="off")
    assert cfg.bind == ["0.0.0.0:8000"] and cfg.workers == 3 and cfg.threads == 4
    assert cfg.worker_class_str == "gthread" and cfg.forwarded_allow_ips == ["*"]
    assert cfg.accesslog is None
    cfg, _ = gunicorn_settings(monkeypatch, GUNICORN_WORKERS="")  # empty (as in .env) = default
    assert cfg.workers >= 1
    cfg, _ = gunicorn_settings(monkeypatch, GUNICORN_WORKER_CONNECTIONS="200")
    assert cfg.worker_connections == 200


def test_a_gevent_worker_yields_between_two_requests_of_a_connection(monkeypatch):
    """Without it, a keep-alive connection whose pages wait on nothing was served over and over
    while the worker's other connections starved (wrk on /events/: p99 0.4-1.5 s)."""
    import gevent

    _, namespace = gunicorn_settings(monkeypatch)
    waits = []
    monkeypatch.setattr(gevent, "sleep", waits.append)
    gevent_worker = type("GeventWorker", (), {"__module__": "gunicorn.workers.ggevent"})()
    thread_worker = type("ThreadWorker", (), {"__module__": "gunicorn.workers.gthread"})()
    namespace["post_request"](thread_worker, None, {}, None)
    assert waits == []
    namespace["post_request"](gevent_worker, None, {}, None)
    assert len(waits) == 1 and waits[0] > 0  # a timer: the connections already waiting go first


def test_gunicorn_access_log_redacts_tokens(monkeypatch):
    from datetime import timedelta
    from types import SimpleNamespace

    cfg, namespace = gunicorn_settings(monkeypatch)
    logger = namespace["RedactingLogger"](cfg)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/auth/reset/tok-SECRET-1?code=123456",
               "PATH_INFO": "/auth/reset/tok-SECRET-1", "QUERY_STRING": "code=123456",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "198.51.100.4",
               "HTTP_REFERER": "https://x.test/auth/verify/tok-SECRET-2"}
    atoms = logger.atoms(SimpleNamespace(status="200 OK", sent=10, headers=[]), SimpleNamespace(headers=[]),
                         environ, timedelta(milliseconds=5))
    line = cfg.access_log_format % atoms
    assert "SECRET" not in line and "123456" not in line
    assert "/auth/reset/[redacted]" in line and "198.51.100.4" in line
    assert namespace["redact_path"]("/auth/verify/abc") == "/auth/verify/[redacted]"
    assert namespace["redact_path"]("/events/athletics") == "/events/athletics"


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on 127.0.0.1:port, from /proc/net/tcp (state 0A = LISTEN)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
            inodes.add(fields[9])
    return inodes


def _socket_inodes_of(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_every_gunicorn_worker_accepts_on_its_own_socket(tmp_path):
    """With one shared socket, one worker could take every keep-alive connection of a burst while
    the other idled; SO_REUSEPORT gives each worker its own socket, which the kernel balances."""
    port = free_port()
    environ = {**os.environ, "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "2", "GUNICORN_ACCESSLOG": "off",
               "GUNICORN_BIND": f"127.0.0.1:{port}", "INSTANCE_PATH": str(tmp_path),
               "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}", "REDIS_URL": "", "GUICHET_ENV": "development"}
    for name in ("TEST_DATABASE_URL", "TEST_REDIS_URL", "GUNICORN_REUSE_PORT"):
        environ.pop(name, None)
    master = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "run:app"],
                              cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            workers = [int(pid) for pid in Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()]
            if len(workers) == 2 and len(_listening_inodes(port)) == 2:
                break
            assert master.poll() is None and time.monotonic() < deadline, "gunicorn did not start two listeners"
            time.sleep(0.2)
        listening = _listening_inodes(port)
        owned = [_socket_inodes_of(pid) & listening for pid in workers]
        assert all(len(inodes) == 1 for inodes in owned) and owned[0] != owned[1]
        assert not _socket_inodes_of(master.pid) & listening  # the master holds none
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert client.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(30)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait(5)


_FROZEN = """
import gc, runpy, types
import run  # the app, loaded as a worker loads it
namespace = runpy.run_path("gunicorn.conf.py")
before = gc.get_freeze_count()
worker = types.SimpleNamespace(wsgi=run.app)
namespace["post_worker_init"](worker)
print(before, gc.get_freeze_count() > 10_000, type(worker.wsgi).__name__)
"""


def test_gunicorn_workers_freeze_what_the_app_loaded(tmp_path):
    """A worker's full garbage collections skip the objects made while loading the app."""
    environ = {**os.environ, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
               "REDIS_URL": "", "GUICHET_ENV": "development"}
    done = subprocess.run([sys.executable, "-c", _FROZEN], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "0 True InFlightLimit"  # and capped (REQUESTS_IN_FLIGHT)


_WAIT_INSTALLED = """
import runpy
from psycopg import waiting
import run  # the app, loaded as a worker loads it
from app.db_wait import wait_on_gevent
hooks = runpy.run_path("gunicorn.conf.py")
hooks["freeze_loaded_objects"] = lambda: None
def worker(module):
    made = type("Worker", (), {"__module__": module})()
    made.wsgi = run.app
    return made
hooks["post_worker_init"](worker("gunicorn.workers.gthread"))
print(waiting.wait is wait_on_gevent)
hooks["post_worker_init"](worker("gunicorn.workers.ggevent"))
print(waiting.wait is wait_on_gevent)
"""


def test_gevent_workers_make_psycopg_wait_on_the_hub(tmp_path):
    """gunicorn.conf.py installs app/db_wait.py in a gevent worker, and only there."""
    environ = {**os.environ, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
               "REDIS_URL": "", "GUICHET_ENV": "development"}
    done = subprocess.run([sys.executable, "-c", _WAIT_INSTALLED], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.split()[-2:] == ["False", "True"]


# --------------------------------------------------------------------------- ProxyFix
def remote_addrs_seen(app) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []

    def record(sender, **extra):
        seen.append((request.remote_addr, request.scheme))

    request_started.connect(record, app, weak=False)
    return seen


FORWARDED = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9", "X-Forwarded-Proto": "https"}


@pytest.mark.app_config(PROXY_FIX_X_FOR=1, PROXY_FIX_X_PROTO=1)
def test_proxy_fix_takes_the_client_address_from_the_proxy(app, client):
    seen = remote_addrs_seen(app)
    client.get("/healthz", headers=FORWARDED, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    # One trusted hop: the address nginx appended (the last one), not what the client claimed.
    assert seen == [("203.0.113.9", "https")]


def test_forwarded_headers_are_ignored_without_the_setting(app, client):
    assert app.config["PROXY_FIX_X_FOR"] == 0
    seen = remote_addrs_seen(app)
    client.get("/healthz", headers=FORWARDED, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert seen == [("10.0.0.2", "http")]


def test_production_trusts_one_proxy_hop_by_default():
    if os.environ.get("PROXY_FIX_X_FOR") or os.environ.get("PROXY_FIX_X_PROTO"):
        pytest.skip("PROXY_FIX_* set in the environment")
    from config import DevelopmentConfig, ProductionConfig

    assert ProductionConfig.PROXY_FIX_X_FOR == 1 and ProductionConfig.PROXY_FIX_X_PROTO == 1
    assert DevelopmentConfig.PROXY_FIX_X_FOR == 0


# --------------------------------------------------------------------------- the real stack
def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"process exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"nothing answered on 127.0.0.1:{port} within {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def fetch(port: int, path: str, headers: dict | None = None, source: str = "127.0.0.2"):
    """GET through nginx from another loopback address, so the client is not 127.0.0.1."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15, source_address=(source, 0))
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


@pytest.mark.slow
def test_nginx_gunicorn_and_the_entrypoint_serve_guichet_in_production_mode(tmp_path):
    """deploy/entrypoint.sh (migrations, static export, gunicorn.conf.py) behind deploy/nginx.conf."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from app.services.signing import private_key_seed_b64

    nginx = nginx_binary()
    app_port, nginx_port = free_port(), free_port()
    static_dir = tmp_path / "static"
    access_log = tmp_path / "gunicorn-access.log"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
        "GUICHET_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "TICKET_SIGNING_KEY": private_key_seed_b64(Ed25519PrivateKey.generate()),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'guichet.sqlite'}",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "REDIS_URL": "", "MAIL_SERVER": "", "SENTRY_DSN": "",  # nothing from a stray .env
        "STATIC_EXPORT_DIR": str(static_dir),
        "GUNICORN_BIND": f"127.0.0.1:{app_port}", "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESSLOG": str(access_log),
    }
    app_log, nginx_log = tmp_path / "app.log", tmp_path / "nginx.out"
    with app_log.open("w") as out:
        web = subprocess.Popen([str(ROOT / "deploy" / "entrypoint.sh")], cwd=tmp_path, env=env,
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proxy = None
    try:
        wait_for_port(app_port, web, app_log)
        assert (tmp_path / "guichet.sqlite").exists()  # `flask db upgrade` ran
        assert (static_dir / "css" / "app.css").read_bytes() == (ROOT / "app/static/css/app.css").read_bytes()

        conf = render_nginx_conf(tmp_path / "nginx", upstream=f"127.0.0.1:{app_port}",
                                 listen=f"127.0.0.1:{nginx_port}", static_root=static_dir)
        with nginx_log.open("w") as out:
            proxy = subprocess.Popen(
                [nginx, "-p", str(tmp_path / "nginx"), "-e", str(tmp_path / "nginx" / "logs" / "error.log"),
                 "-c", str(conf), "-g", "daemon off;"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(nginx_port, proxy, nginx_log)

        # A page from the app, through nginx: the app's own security headers arrive intact.
        response, body = fetch(nginx_port, "/", {"X-Forwarded-For": "203.0.113.66", "Accept-Encoding": "gzip"})
        assert response.status == 200, body[:500]
        assert "Guichet" in html.unescape(body.decode())
        assert "frame-ancestors 'none'" in response.getheader("Content-Security-Policy")
        assert response.getheader("X-Frame-Options") == "DENY"
        assert response.getheader("Strict-Transport-Security", "").startswith("max-age=")
        assert response.getheader("Server") == "nginx"  # no version
        assert response.getheader("Content-Encoding") is None  # no gzip on dynamic pages (BREACH)

        health, health_body = fetch(nginx_port, "/healthz")
        assert health.status == 200 and json.loads(health_body)["status"] == "ok"

        # Static files come from nginx (the app never sees them), cached and with the headers.
        css, css_body = fetch(nginx_port, "/static/css/app.css")
        assert css.status == 200 and css_body == (ROOT / "app/static/css/app.css").read_bytes()
        assert "max-age=604800" in css.getheader("Cache-Control")
        assert css.getheader("X-Content-Type-Options") == "nosniff"
        assert "frame-ancestors 'none'" in css.getheader("Content-Security-Policy")
        vendor, vendor_body = fetch(nginx_port, "/static/vendor/bootstrap/bootstrap.min.css",
                                    {"Accept-Encoding": "gzip"})
        assert vendor.status == 200 and "max-age=2592000" in vendor.getheader("Cache-Control")
        assert vendor.getheader("Content-Encoding") == "gzip"
        assert gzip.decompress(vendor_body) == (ROOT / "app/static/vendor/bootstrap/bootstrap.min.css").read_bytes()

        fetch(nginx_port, "/auth/reset/tok-SECRET-42?code=987654")
        nginx_log = tmp_path / "nginx" / "logs" / "access.log"
        # gunicorn and nginx both write the access line just after the response: give them a moment.
        def logged_reset(log: Path) -> bool:
            return log.exists() and "/auth/reset/" in log.read_text()

        deadline = time.monotonic() + 10
        while not (logged_reset(access_log) and logged_reset(nginx_log)) and time.monotonic() < deadline:
            time.sleep(0.05)

        gunicorn_lines = access_log.read_text().splitlines()
        home_line = next(line for line in gunicorn_lines if '"GET / HTTP/1.1"' in line)
        # ProxyFix (production default: one hop) gives the real client, not nginx's 127.0.0.1
        # nor the address the client forged in X-Forwarded-For.
        assert home_line.startswith("127.0.0.2 "), home_line
        assert not any("/static/" in line for line in gunicorn_lines)
        nginx_access = nginx_log.read_text()
        for log_text in (access_log.read_text(), nginx_access):
            assert "/auth/reset/[redacted]" in log_text
            assert "SECRET-42" not in log_text and "987654" not in log_text
    finally:
        if proxy is not None:
            stop(proxy)
        stop(web)
    assert "Traceback" not in app_log.read_text(), app_log.read_text()[-3000:]


def test_entrypoint_passes_its_arguments_through(tmp_path):
    """With RUN_MIGRATIONS=0 and no STATIC_EXPORT_DIR, the entrypoint only runs the command."""
    env = {"PATH": "/usr/bin:/bin", "RUN_MIGRATIONS": "0"}
    result = subprocess.run([str(ROOT / "deploy" / "entrypoint.sh"), "sh", "-c", "pwd; echo $FLASK_APP"],
                            check=False, env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(ROOT), "run.py"], result.stdout


# --------------------------------------------------------------------------- web workers' memory
_LOADED = ("import sys; from app import create_app; app = create_app(); "
           "print(sorted(m for m in ('alembic', 'flask_migrate') if m in sys.modules), 'db' in app.cli.commands)")


def _app_modules(tmp_path, **env) -> str:
    environ = {name: value for name, value in os.environ.items() if name != "GUICHET_WEB_SERVER"}
    environ.update(GUICHET_ENV="development", INSTANCE_PATH=str(tmp_path), **env)
    done = subprocess.run([sys.executable, "-c", _LOADED], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_web_workers_leave_out_the_migration_commands(monkeypatch, tmp_path):
    """gunicorn sets GUICHET_WEB_SERVER for its workers (raw_env), which then never load Alembic;
    the `flask` command keeps `flask db`."""
    cfg, _ = gunicorn_settings(monkeypatch)
    assert cfg.env == {"GUICHET_WEB_SERVER": "1"}
    assert _app_modules(tmp_path, GUICHET_WEB_SERVER="1") == "[] False"
    assert _app_modules(tmp_path) == "['alembic', 'flask_migrate'] True"
