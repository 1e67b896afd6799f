"""nginx (Debian's /usr/sbin/nginx) in front of several gunicorn instances, for the benchmarks.

The configuration is rendered into a temporary directory with its own pid file, error log and
temp paths, listens on a free 127.0.0.1 port, and proxies like deploy/nginx.conf (HTTP/1.1 to
the upstreams with keep-alive, X-Forwarded-* headers, buffering). nginx runs in the foreground
(`daemon off`) as our child and is stopped by PID.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import common

NGINX = os.environ.get("BENCH_NGINX", "/usr/sbin/nginx")

CONFIG = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_timeout 65s;
    client_max_body_size 2m;
    upstream guichet_web {{
{servers}
        keepalive 32;
    }}
{extra_upstreams}
    server {{
        listen 127.0.0.1:{port};
{extra_locations}
        location / {{
            proxy_pass http://guichet_web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_connect_timeout 5s;
            proxy_read_timeout 60s;
            proxy_buffering on;
            proxy_buffers 16 16k;
            proxy_buffer_size 16k;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    proc: subprocess.Popen
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


PROXY_HEADERS = """\
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;"""


def render_config(directory: Path, port: int, upstream_ports: list[int], routes: dict | None = None) -> str:
    """`routes` maps a path prefix (e.g. "/auth/") to the ports of its own upstream."""
    def servers(ports):
        return "\n".join(f"        server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;" for p in ports)

    extra_upstreams, extra_locations = [], []
    for n, (prefix, ports) in enumerate((routes or {}).items()):
        extra_upstreams.append(f"    upstream guichet_route{n} {{\n{servers(ports)}\n        keepalive 8;\n    }}")
        extra_locations.append(f"        location {prefix} {{\n            proxy_pass http://guichet_route{n};\n"
                               f"{PROXY_HEADERS}\n        }}")
    return CONFIG.format(dir=directory, port=port, servers=servers(upstream_ports),
                         extra_upstreams="\n".join(extra_upstreams), extra_locations="\n".join(extra_locations))


def start_nginx(upstream_ports: list[int], timeout: float = 15.0, routes: dict | None = None) -> Nginx:
    directory = Path(tempfile.mkdtemp(prefix="guichet-bench-nginx-"))
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / sub).mkdir()
        (directory / sub).chmod(0o777)  # nginx workers drop root privileges
    port = common.free_port()
    conf = directory / "nginx.conf"
    conf.write_text(render_config(directory, port, upstream_ports, routes))
    check = subprocess.run([NGINX, "-t", "-q", "-c", str(conf), "-p", str(directory)], capture_output=True, text=True,
                           check=False)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed: {check.stderr}")
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(directory)], stdout=subprocess.DEVNULL,
                            stderr=open(directory / "stderr.log", "wb"), start_new_session=True)  # noqa: SIM115
    server = Nginx(proc, port, directory)
    try:
        common.wait_healthy(server.url, timeout, proc)
    except Exception:
        stop_nginx(server)
        raise
    return server


def stop_nginx(server: Nginx) -> None:
    if server.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.proc.pid, signal.SIGQUIT)  # graceful: the master stops its workers
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait(5)
    shutil.rmtree(server.directory, ignore_errors=True)


@contextlib.contextmanager
def two_instances_behind_nginx(model: common.WorkerModel):
    """Two gunicorn processes on two ports (same PostgreSQL and Redis) behind one nginx."""
    # Four worker processes share PostgreSQL's 100 connections: the default 16 each (config.py).
    env = {"PROXY_FIX_X_FOR": "1", "PROXY_FIX_X_PROTO": "1"}
    first = common.start_server(model, env=env)
    try:
        second = common.start_server(model, env=env)
        try:
            proxy = start_nginx([first.port, second.port])
            try:
                yield proxy, (first, second)
            finally:
                stop_nginx(proxy)
        finally:
            common.stop_server(second)
    finally:
        common.stop_server(first)
