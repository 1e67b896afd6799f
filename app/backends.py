"""Choose the storage behind sessions, cache and rate limits: embedded defaults or Redis."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask


def configure_backends(app: Flask) -> None:
    cfg = app.config
    redis_url = cfg.get("REDIS_URL")
    if redis_url:
        pool_size, pool_wait = int(cfg["REDIS_MAX_CONNECTIONS"]), float(cfg["REDIS_POOL_TIMEOUT"])
        client = shared_redis_client(redis_url, pool_size, pool_wait)
        # Flask-Session 0.8 wants a client instance: a URL string would silently use localhost.
        if not cfg.get("SESSION_REDIS"):
            cfg["SESSION_REDIS"] = client
        cfg["SESSION_TYPE"] = "redis"
        if cfg.get("CACHE_TYPE") in (None, "SimpleCache"):
            cfg["CACHE_TYPE"] = "RedisCache"
            cfg["CACHE_REDIS_HOST"] = client  # cachelib takes a client object as its host
        if cfg.get("RATELIMIT_STORAGE_URI") in (None, "memory://"):
            cfg["RATELIMIT_STORAGE_URI"] = redis_url
            options = dict(cfg.get("RATELIMIT_STORAGE_OPTIONS") or {})
            options.setdefault("connection_pool", blocking_pool(redis_url, pool_size, pool_wait))
            cfg["RATELIMIT_STORAGE_OPTIONS"] = options
    elif cfg.get("SESSION_TYPE") == "cachelib" and not cfg.get("SESSION_CACHELIB"):
        from cachelib.file import FileSystemCache

        session_dir = Path(cfg["SESSION_DIR"])
        session_dir.mkdir(parents=True, exist_ok=True)
        cfg["SESSION_CACHELIB"] = FileSystemCache(str(session_dir), threshold=100_000, mode=0o600)

    uri = cfg["SQLALCHEMY_DATABASE_URI"]
    if not uri.startswith("sqlite"):
        options = dict(cfg.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.setdefault("pool_size", int(cfg.get("DATABASE_POOL_SIZE", 16)))
        options.setdefault("max_overflow", int(cfg.get("DATABASE_MAX_OVERFLOW", 0)))
        # Replaced by app.db_pool.install_idle_ping: a ping only after DATABASE_PING_IDLE_SECONDS.
        options["pool_pre_ping"] = False
        if sa.engine.make_url(uri).get_driver_name() == "psycopg":
            from app.db_cursor import LazyDescriptionCursor

            connect_args = dict(options.get("connect_args") or {})
            connect_args.setdefault("cursor_factory", LazyDescriptionCursor)
            options["connect_args"] = connect_args
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if uri.startswith("sqlite"):
        options = dict(cfg.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.pop("pool_pre_ping", None)
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("timeout", 30)
        connect_args.setdefault("check_same_thread", False)
        options["connect_args"] = connect_args
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = options
        path = uri.removeprefix("sqlite:///")
        if uri.startswith("sqlite:///") and path and not path.startswith(":"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def blocking_pool(redis_url: str, max_connections: int, timeout: float):
    """A pool that makes a request wait for a free connection instead of failing.

    redis-py's default pool raises "Too many connections" past 100. gunicorn's gevent worker
    runs every open connection's request at once (hundreds during an on-sale rush), so a burst
    would turn into 500s; with the blocking pool the extra requests queue for `timeout` seconds."""
    import redis

    return redis.BlockingConnectionPool.from_url(redis_url, max_connections=max_connections, timeout=timeout)


def shared_redis_client(redis_url: str, max_connections: int, timeout: float):
    """One client and pool for sessions and the cache: a request needs both, in turn."""
    import redis

    return redis.Redis(connection_pool=blocking_pool(redis_url, max_connections, timeout))


def tune_sqlite(engine: sa.Engine) -> None:
    """WAL lets readers work while one writer commits; foreign keys are off by default in SQLite."""

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
