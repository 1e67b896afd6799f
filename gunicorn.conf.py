"""gunicorn settings for Guichet: `gunicorn --config gunicorn.conf.py run:app`.

Every value can be overridden from the environment (empty means "use the default"), so the
Docker image, docker-compose.yml and a plain host share this one file:

    GUNICORN_BIND                 127.0.0.1:8000 (the Docker image sets 0.0.0.0:8000); comma-separated for several
    GUNICORN_WORKERS              one per core, at most 8
    GUNICORN_WORKER_CLASS         gevent (measured in bench/README.md "Worker model": every request
                                  waits on PostgreSQL/Redis several times; greenlets overlap those waits
                                  like gthread's threads did, for 14-23 % less CPU per order in the rush)
    GUNICORN_WORKER_CONNECTIONS   1000 open connections per gevent worker (each one's request runs
                                  as a greenlet; database and Redis connections are pooled per process)
    GUNICORN_THREADS              32, for GUNICORN_WORKER_CLASS=gthread only (most of them wait: on
                                  PostgreSQL/Redis, or for the low-priority bcrypt thread during a
                                  sign-in; 8 let a burst of 20 sign-ins take every thread, and the
                                  catalogue p99 went from 30 ms to 7 s — bench/logins.py)
    GUNICORN_TIMEOUT              30 seconds
    GUNICORN_KEEPALIVE            75 seconds (longer than nginx's upstream keepalive_timeout of 60 s)
    GUNICORN_MAX_REQUESTS         0 = never recycle workers (jitter: GUNICORN_MAX_REQUESTS_JITTER)
    GUNICORN_PRELOAD              0 (see post_fork below before turning it on)
    GUNICORN_REUSE_PORT           1: every worker listens on its own SO_REUSEPORT socket (see below)
    GUNICORN_FORWARDED_ALLOW_IPS  127.0.0.1,::1 — who may set X-Forwarded-Proto (compose: "*")
    GUNICORN_ACCESSLOG            "-" (stdout); "" or "off" disables it
    GUNICORN_LOGLEVEL             info
    GUNICORN_CONTROL_SOCKET       unset = no control socket (gunicornc); a path turns it on

Client addresses and the https scheme behind nginx are the app's business (werkzeug ProxyFix,
PROXY_FIX_X_FOR / PROXY_FIX_X_PROTO in config.py): it rewrites REMOTE_ADDR in the WSGI environ,
so the access log below shows the real client too.
"""
from __future__ import annotations

import multiprocessing
import os
import re

from gunicorn.glogging import Logger


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


def default_workers() -> int:
    """One process per core: greenlets cover the I/O waits; more processes only add ~130 MB each."""
    return max(1, min(multiprocessing.cpu_count(), 8))


# Set by gunicorn for the app it loads: web workers only serve requests, so the app leaves out
# the `flask db` commands and the ~12 MB of Alembic they need (config.py MIGRATION_COMMANDS).
raw_env = ["GUICHET_WEB_SERVER=1"]

bind = [address.strip() for address in _env("GUNICORN_BIND", "127.0.0.1:8000").split(",") if address.strip()]
workers = _env_int("GUNICORN_WORKERS", default_workers())
threads = _env_int("GUNICORN_THREADS", 32)
worker_class = _env("GUNICORN_WORKER_CLASS", "gevent")
worker_connections = _env_int("GUNICORN_WORKER_CONNECTIONS", 1000)
timeout = _env_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _env_int("GUNICORN_KEEPALIVE", 75)
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 0)
preload_app = _env("GUNICORN_PRELOAD", "0").lower() in {"1", "true", "yes", "on"}

# One shared listening socket lets whichever worker wakes first accept a whole burst of
# keep-alive connections: measured with wrk's 16, one worker got all of them and the other
# none (bench/README.md, "Worker model"). With SO_REUSEPORT each worker has its own socket and
# the kernel spreads new connections across them. Another process of the same user could then
# bind the same port too: give each instance on a host its own port (a container has its own network).
reuse_port = _env("GUNICORN_REUSE_PORT", "1").lower() in {"1", "true", "yes", "on"}

# X-Forwarded-Proto from these addresses sets wsgi.url_scheme (nginx on the same host by default).
forwarded_allow_ips = _env("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# The heartbeat file lives in RAM when /dev/shm exists (a container's overlay disk can stall it).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# gunicorn 25+ opens a control socket in $HOME by default; two instances on one host would
# fight over it and a container's non-root user may have no home: off unless asked for.
_control_socket = _env("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not _control_socket
if _control_socket:
    control_socket = _control_socket

loglevel = _env("GUNICORN_LOGLEVEL", "info")
errorlog = "-"
_accesslog = _env("GUNICORN_ACCESSLOG", "-")
accesslog = None if _accesslog.lower() in {"off", "none", "0"} else _accesslog

# No query string (%(q)s, %(r)s), no Referer (%(f)s): either may carry a token. The path itself
# is redacted for the routes that take a token in the URL (see RedactingLogger).
access_log_format = '%(h)s - %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'

# Paths whose last segment is a secret (SPEC §9: email verification and password-reset links).
TOKEN_PATHS = re.compile(r"^(/auth/(?:verify|reset)/)[^/?]+")


def redact_path(path: str | None) -> str:
    return TOKEN_PATHS.sub(r"\1[redacted]", path or "")


class RedactingLogger(Logger):
    """Access log atoms with token-bearing paths redacted and no query string or referer."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = redact_path(atoms.get("U"))
        atoms["r"] = f"{atoms.get('m')} {atoms['U']} {atoms.get('H')}"
        atoms["q"] = "-"
        atoms["f"] = "-"
        return atoms


logger_class = RedactingLogger


def post_fork(server, worker):
    """With preload_app the master imported the app before forking: a child must not reuse the
    parent's pooled database connections (two processes on one socket corrupt the protocol).
    `dispose(close=False)` drops the inherited pool without closing the parent's connections.
    Redis clients (redis-py) already reset their pools when they notice a new process id."""
    if not preload_app:
        return
    import sys

    run = sys.modules.get("run")
    if run is None:
        return
    from app.extensions import db

    with run.app.app_context():
        db.engine.dispose(close=False)


def post_worker_init(worker):
    """Cap the requests the worker runs at once, then move everything the app allocated while
    loading (modules, routes, templates, SQLAlchemy metadata) out of the collector's reach: a full
    collection otherwise walks those objects and held the GIL 80–120 ms in a loaded worker,
    stalling every request of that process."""
    cap_requests_in_flight(worker)
    if type(worker).__module__.endswith("ggevent"):
        from app import db_wait

        db_wait.install()  # psycopg waits on gevent's io watchers, not an emulated poll()
    freeze_loaded_objects()


def cap_requests_in_flight(worker) -> None:
    """The app's REQUESTS_IN_FLIGHT (config.py; 0 = none) around the worker's WSGI callable, made
    here rather than in the app factory: a slot is freed when the server closes the response
    body, which gunicorn always does and a test client does not."""
    config = getattr(worker.wsgi, "config", None) or {}
    limit = int(config.get("REQUESTS_IN_FLIGHT") or 0)
    if limit > 0:
        from app.in_flight import InFlightLimit

        worker.wsgi = InFlightLimit(worker.wsgi, limit)


def freeze_loaded_objects() -> None:
    import gc

    gc.collect()
    gc.freeze()


def post_request(worker, req, environ, resp):
    """gevent worker: serve the connections already waiting before this one's next request.

    A greenlet only gives way when it waits. A page served from the process's memory waits on
    nothing, and a client on a fast link sends its next request before the greenlet reads again,
    so one keep-alive connection was served over and over while the others starved: wrk at 16
    connections on /events/ got p50 1.2 ms but p99 0.85-1.5 s. `sleep(0)` and `idle()` left p99 at
    0.4 s and 0.2 s (the loop runs their callbacks before it polls the sockets again); a timer
    fires after the poll, so the connections that became ready meanwhile go first: p99 57 ms,
    about what gthread gets (bench/README.md, "Worker model")."""
    if type(worker).__module__.endswith("ggevent"):
        import gevent

        gevent.sleep(1e-6)
