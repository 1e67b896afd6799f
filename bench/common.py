"""Shared helpers for the benchmarks: the bench database and Redis, gunicorn servers, wrk, results.

Everything runs on 127.0.0.1 only. The benchmarks use their own PostgreSQL database
(`guichet_bench`, never the `test` database) and their own Redis DB number (14, flushed when
a server set starts). Servers are started as child processes and stopped by PID.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"  # git-ignored: keys, logs, payload files, server outboxes
RESULTS = BENCH / "results.json"
PY = sys.executable

PG_SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
BENCH_DB = os.environ.get("BENCH_DB", "guichet_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DATABASE_URL = f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/{BENCH_DB}"
LIBPQ_URL = f"{PG_SERVER}/{BENCH_DB}"
SECRET_KEY = "bench-secret-key-only-for-127.0.0.1-runs-aaaaaaaaaaaaaaaa"
SIGNING_KEY_FILE = OUT / "ticket-signing-key.pem"
ACCOUNTS_FILE = OUT / "accounts.json"  # written by seed.py: staff/admin credentials and TOTP secrets
PASSWORD = "Podium-Relay-Bench-2026"  # every seeded account (bcrypt cost 12)


# --------------------------------------------------------------------------- which code is measured
@functools.cache
def app_dir() -> Path:
    """The code under measurement, fixed once per benchmark process.

    Several engineers edit the work tree while benchmarks run; a half-written file must not
    break (or flatter) a measurement, so by default the last commit is exported with
    `git archive HEAD` into bench/out/src-<commit>/. BENCH_SOURCE=tree measures the work tree;
    BENCH_SOURCE=<directory> measures that copy. BENCH_PATCHES=a.diff,b.diff applies candidate
    fixes (`patch -p1`) to a copy of the snapshot, for before/after figures of a suggested change.
    """
    source = os.environ.get("BENCH_SOURCE", "")
    if source == "tree":
        return ROOT
    if source:
        return Path(source).resolve()
    sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    target = OUT / f"src-{sha}"
    if not (target / "run.py").exists():
        archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        _unpack(target, lambda tmp: subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True))
    patches = [Path(p).resolve() for p in os.environ.get("BENCH_PATCHES", "").split(",") if p.strip()]
    if patches:
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in patches)).hexdigest()[:10]
        patched = OUT / f"src-{sha}-patched-{digest}"
        if not (patched / "run.py").exists():
            def apply(tmp: Path) -> None:
                shutil.copytree(target, tmp, dirs_exist_ok=True)
                for patch in patches:
                    subprocess.run(["patch", "-p1", "-s", "-d", str(tmp), "-i", str(patch)], check=True)
            _unpack(patched, apply)
        target = patched
    os.utime(target)  # in use: not old
    _forget_old_snapshots(keep=target)
    return target


def _unpack(target: Path, fill) -> None:
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fill(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another benchmark process made it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)


def _forget_old_snapshots(keep: Path, max_age_s: float = 3 * 3600) -> None:
    """Remove snapshots unused for hours (a running benchmark may still serve from a recent one)."""
    now = time.time()
    for old in OUT.glob("src-*"):
        if old != keep and now - old.stat().st_mtime > max_age_s:
            shutil.rmtree(old, ignore_errors=True)


def use_app() -> Path:
    """Put the measured code first on sys.path (call before importing `app` in-process)."""
    source = app_dir()
    if str(source) not in sys.path:
        sys.path.insert(0, str(source))
    return source


# --------------------------------------------------------------------------- machine and results
def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(), "python": platform.python_version(),
        # Which build: the same version runs ~16 % apart between a plain build and one made with
        # profile-guided optimisation and LTO (bench/README.md, runs of 2026-11-23/24).
        "python_executable": os.path.realpath(sys.executable),
    }


def record(prefix: str, figures: dict, *, path: Path | None = None) -> dict:
    """Merge figures (flat keys) into results.json with the date, the machine and the loadavg."""
    path = path or RESULTS
    data = {}
    if path.exists():
        with contextlib.suppress(ValueError):
            data = json.loads(path.read_text())
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    load = loadavg()
    data.update(figures)
    data[f"{prefix}_loadavg"] = load
    data[f"{prefix}_date"] = now
    data["machine"] = machine()
    data["date"] = now
    data["loadavg"] = load
    path.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")
    return data


def load_results(path: Path | None = None) -> dict:
    path = path or RESULTS
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_text())
    return {}


def print_figures(title: str, figures: dict) -> None:
    print(f"\n== {title}  (loadavg {' '.join(map(str, loadavg()))})")
    for key, value in figures.items():
        print(f"  {key:40s} {value}")


def percentile(values, pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * pct // 100)))
    return ordered[int(rank) - 1]


def summary_ms(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "p50": round(statistics.median(ms), 2) if ms else 0.0,
        "p99": round(percentile(ms, 99), 2),
        "n": len(ms),
    }


# --------------------------------------------------------------------------- database and Redis
_thread = threading.local()


def thread_connection():
    """This thread's autocommit psycopg connection to DATABASE_URL, for the bench's hand-written
    WSGI apps (ladder_app.py, minimal_shop.py): one per gunicorn thread, no pool, the least a
    statement can cost."""
    import psycopg

    conn = getattr(_thread, "conn", None)
    if conn is None or conn.closed:
        url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        conn = _thread.conn = psycopg.connect(url, autocommit=True)
    return conn


def close_thread_connection() -> None:
    conn = getattr(_thread, "conn", None)
    if conn is not None:
        conn.close()


def pg_connect(dbname: str | None = None, autocommit: bool = False):
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/{dbname or BENCH_DB}", autocommit=autocommit)


def recreate_database() -> None:
    """Drop and create the bench database (only ever `guichet_bench`, never `test`)."""
    if BENCH_DB in ("test", "postgres") or not BENCH_DB.startswith("guichet_bench"):
        raise SystemExit(f"refusing to recreate database {BENCH_DB!r}")
    with pg_connect("postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def signing_key_pem() -> str:
    """The bench server's ticket-signing key, made once and kept in bench/out/."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not SIGNING_KEY_FILE.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        SIGNING_KEY_FILE.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        SIGNING_KEY_FILE.chmod(0o600)
    return SIGNING_KEY_FILE.read_text()


def app_overrides() -> dict:
    """Config for in-process use of the app against the bench database (seed, payloads)."""
    return {
        "SQLALCHEMY_DATABASE_URI": DATABASE_URL, "REDIS_URL": REDIS_URL, "SECRET_KEY": SECRET_KEY,
        "TICKET_SIGNING_KEY": signing_key_pem(), "CACHE_KEY_PREFIX": "guichet:cache:",
    }


def clear_app_cache() -> int:
    """Delete the Flask-Caching keys (statistics, catalogue) from the bench Redis DB."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter("guichet:cache:*"))
    if keys:
        client.delete(*keys)
    return len(keys)


# --------------------------------------------------------------------------- gunicorn servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class WorkerModel:
    workers: int = 2
    threads: int = 1
    worker_class: str = "sync"

    @property
    def label(self) -> str:
        if self.worker_class == "gevent":  # threads do not apply: a greenlet per open connection
            return f"gevent w{self.workers}"
        return f"{self.worker_class} w{self.workers} t{self.threads}"


# Chosen by measurement (bench/README.md, "Worker model"); bench/workers.py re-measures.
DEFAULT_MODEL = WorkerModel(
    workers=int(os.environ.get("BENCH_WORKERS", "2")),
    threads=int(os.environ.get("BENCH_THREADS", "32")),
    worker_class=os.environ.get("BENCH_WORKER_CLASS", "gevent"),
)
# The minimal shop keeps one PostgreSQL connection per thread (thread_connection): under gevent a
# thread is a greenlet, one per buyer's connection, and 600 buyers would open 600 connections
# (PostgreSQL refuses past max_connections). It keeps the thread model it was written for.
MINIMAL_SHOP_MODEL = WorkerModel(workers=DEFAULT_MODEL.workers, threads=32, worker_class="gthread")


def server_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    for name in ("FLASK_DEBUG", "TEST_DATABASE_URL", "TEST_REDIS_URL"):
        env.pop(name, None)
    OUT.mkdir(parents=True, exist_ok=True)
    env.update({
        "GUICHET_ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "TICKET_SIGNING_KEY": signing_key_pem(),
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SESSION_COOKIE_SECURE": "false",  # plain HTTP on 127.0.0.1
        # One client IP (127.0.0.1) plays hundreds of buyers: per-IP login limits would refuse
        # them. The limiter itself stays loaded; only its checks are switched off.
        "RATELIMIT_ENABLED": "false",
        "MAIL_OUTBOX_DIR": str(OUT / "outbox"),
        # As in production (docker-compose.yml): payments queue the confirmation email, and
        # `flask emails work` (running_email_worker) renders the PDFs and sends it.
        "MAIL_QUEUE": "1",
        "MAIL_SERVER": "",
        "LOG_LEVEL": "WARNING",
        "PUBLIC_BASE_URL": "http://127.0.0.1",
        "INSTANCE_PATH": str(OUT / "instance"),
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.update(extra or {})
    return env


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    model: WorkerModel
    log_path: Path
    url: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        return child_pids(self.pid)


def gunicorn_command(port: int, model: WorkerModel, app_spec: str = "run:app") -> list[str]:
    """gunicorn with the project's gunicorn.conf.py (tuned through its GUNICORN_* env vars).

    The bind address is always given explicitly so nothing listens beyond 127.0.0.1.
    """
    cmd = [PY, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "--pid", str(OUT / f"gunicorn-{port}.pid")]
    conf = app_dir() / "gunicorn.conf.py"
    if conf.exists():
        cmd += ["-c", str(conf)]
    else:  # before the deployment engineer's file lands
        cmd += ["-w", str(model.workers), "--threads", str(model.threads), "-k", model.worker_class]
    return cmd + [app_spec]


def start_server(model: WorkerModel = DEFAULT_MODEL, *, port: int | None = None, env: dict | None = None,
                 timeout: float = 60.0, nice: int = 0, app_spec: str = "run:app") -> Server:
    """gunicorn on 127.0.0.1; `nice` > 0 starts it at a lower CPU priority (`nice -n`, same PID);
    `app_spec` another WSGI app of the snapshot (it must answer /healthz)."""
    port = port or free_port()
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / f"gunicorn-{port}.log"
    extra = {
        "GUNICORN_WORKERS": str(model.workers), "GUNICORN_THREADS": str(model.threads),
        "GUNICORN_WORKER_CLASS": model.worker_class, "GUNICORN_BIND": f"127.0.0.1:{port}",
        # No access log: a line per request to the log file would be measured as well.
        "GUNICORN_ACCESSLOG": "off", "GUNICORN_LOGLEVEL": "warning", **(env or {}),
    }
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    command = (["nice", "-n", str(nice)] if nice else []) + gunicorn_command(port, model, app_spec)
    proc = subprocess.Popen(command, cwd=app_dir(), env=server_env(extra),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(proc, port, model, log_path, url=f"http://127.0.0.1:{port}")
    if nice:  # with sched_autogroup the new session is its own scheduling group: lower the group too
        with contextlib.suppress(OSError):
            Path(f"/proc/{proc.pid}/autogroup").write_text(str(nice))
    try:
        wait_healthy(server.url, timeout, proc)
    except Exception:
        stop_server(server)
        print(log_path.read_text()[-3000:], file=sys.stderr)
        raise
    return server


def wait_healthy(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:  # connection refused, 503 while warming up
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url}/healthz not healthy after {timeout}s ({last})")


def stop_server(server: Server, timeout: float = 20.0) -> None:
    """SIGTERM the master by PID (gunicorn stops its workers), SIGKILL if it hangs."""
    proc = server.proc
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in [*child_pids(proc.pid), proc.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait(5)


@contextlib.contextmanager
def running_server(model: WorkerModel = DEFAULT_MODEL, **kwargs):
    server = start_server(model, **kwargs)
    try:
        yield server
    finally:
        stop_server(server)


@contextlib.contextmanager
def running_email_worker(nice: int = 19):
    """`flask emails work` beside the servers, at the lowest CPU priority like in production
    (EMAIL_WORKER_NICE's default; nice +10 until 2026-11-25).

    It starts its own session (so the kernel's autogroup scheduling gives it its own group):
    that group is lowered too, or the worker would get as much CPU as all of gunicorn."""
    OUT.mkdir(parents=True, exist_ok=True)
    log = open(OUT / "email-worker.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([PY, "-m", "flask", "--app", "run", "emails", "work", "--poll", "0.5"], cwd=app_dir(),
                            env=server_env({"EMAIL_WORKER_NICE": str(nice)}), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    with contextlib.suppress(OSError):
        Path(f"/proc/{proc.pid}/autogroup").write_text(str(nice))
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


def pending_emails() -> int:
    with pg_connect() as conn:
        return conn.execute("SELECT count(*) FROM email_jobs WHERE status = 'pending'").fetchone()[0]


def child_pids(pid: int) -> list[int]:
    pids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            pids += [int(p) for p in (task / "children").read_text().split()]
    return sorted(set(pids))


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set size) of a live process, in MB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def _own_and_reaped_cpu(pid: int) -> tuple[float, float] | None:
    """(user + system CPU seconds of the process, those of its children it has reaped)."""
    ticks = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks, (int(fields[13]) + int(fields[14])) / ticks
    return None


def cpu_seconds(pids) -> float:
    """User + system CPU time consumed so far by these processes (from /proc/<pid>/stat)."""
    return sum(cpu[0] for pid in pids if (cpu := _own_and_reaped_cpu(pid)) is not None)


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (the benchmark's and anyone else's)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if stat.read_text().strip() in ("postgres", "postmaster"):
                pids.append(int(stat.parent.name))
    return pids


def postgres_cpu() -> dict[int, tuple[float, float]]:
    """A snapshot for `postgres_cpu_since`: each PostgreSQL process's own and reaped CPU."""
    return {pid: cpu for pid in postgres_pids() if (cpu := _own_and_reaped_cpu(pid)) is not None}


def postgres_cpu_since(before: dict[int, tuple[float, float]], now: dict[int, tuple[float, float]] | None = None) -> float:
    """CPU seconds PostgreSQL used since `before`, backends that ended in between included.

    A backend's CPU leaves /proc with it, into the postmaster's reaped-children time, whole: a
    run whose connections come and go (a pool closing its overflow) spent seconds there that
    counting live processes missed. So: what the processes alive now used since `before`, plus
    what the postmaster reaped since, minus what the reaped ones had used before `before`."""
    now = postgres_cpu() if now is None else now
    used = sum(own + reaped - sum(before.get(pid, (0.0, 0.0))) for pid, (own, reaped) in now.items())
    ended = sum(own for pid, (own, _) in before.items() if pid not in now)
    return round(used - ended, 6)  # whole clock ticks: drop the float sums' dust (0.2199999… for 0.22)


def machine_busy_seconds() -> float:
    """CPU seconds this machine's cores have worked since boot, for whoever: the server,
    PostgreSQL, Redis, the load generator, the kernel (/proc/stat: user, nice, system, irq and
    softirq; not idle, iowait, or steal, the time the hypervisor gave to another machine)."""
    user, nice, system, _idle, _iowait, irq, softirq, *_ = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def worker_rss(server: Server, prefix: str = "") -> dict:
    """Peak RSS (VmHWM) of each gunicorn worker of a live server; the key is the largest."""
    each = [rss for pid in server.worker_pids() if (rss := peak_rss_mb(pid)) is not None]
    name = f"{prefix}_worker_rss_mb" if prefix else "worker_rss_mb"
    return {name: max(each, default=None), f"{name}_each": each}


# --------------------------------------------------------------------------- wrk
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict:
    """req/s, p50/p99 (ms), requests, errors (non-2xx/3xx + socket errors) from `wrk --latency`."""
    figures = {"rps": 0.0, "p50_ms": None, "p99_ms": None, "requests": 0, "non_2xx": 0, "socket_errors": 0}
    for line in output.splitlines():
        line = line.strip()
        if m := re.match(r"Requests/sec:\s+([\d.]+)", line):
            figures["rps"] = float(m.group(1))
        elif m := re.match(r"(50|99)(?:\.000)?%\s+(\S+)", line):
            figures[f"p{m.group(1)}_ms"] = round(_ms(m.group(2)), 2)
        elif m := re.match(r"(\d+) requests in", line):
            figures["requests"] = int(m.group(1))
        elif m := re.match(r"Non-2xx or 3xx responses:\s+(\d+)", line):
            figures["non_2xx"] = int(m.group(1))
        elif m := re.match(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", line):
            figures["socket_errors"] = sum(int(x) for x in m.groups())
    figures["errors"] = figures["non_2xx"] + figures["socket_errors"]
    return figures


def run_wrk(url: str, *, threads: int = 2, connections: int = 16, duration: int = 30,
            script: Path | None = None, headers: dict | None = None, script_args=()) -> dict:
    """Run wrk against a 127.0.0.1 URL for a bounded time and parse its report."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("load goes to 127.0.0.1 only")
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    if script:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *map(str, script_args)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    figures = parse_wrk(done.stdout)
    figures["raw"] = done.stdout
    return figures


def http_get(url: str, headers: dict | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
