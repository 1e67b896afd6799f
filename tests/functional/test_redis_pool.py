"""Sessions, cache and rate limits take Redis connections from pools that make a request wait
for a free connection instead of failing (app/backends.py). Under gunicorn's gevent worker every
open connection's request runs at once: redis-py's default pool raised "Too many connections"
past 100 of them and the rush got 284 answers 500 (bench/README.md, 2026-11-23 16:42)."""
from __future__ import annotations

import os
import threading

import pytest
import redis

from app.backends import shared_redis_client
from app.extensions import cache, limiter

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")


def test_sessions_and_cache_share_one_blocking_pool_and_limits_have_their_own(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0", REDIS_MAX_CONNECTIONS=7, REDIS_POOL_TIMEOUT=3,
                   RATELIMIT_STORAGE_URI="memory://")
    session_client = app.config["SESSION_REDIS"]
    with app.app_context():
        assert cache.cache._write_client is session_client
    pool = session_client.connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert pool.max_connections == 7 and pool.timeout == 3
    limits_pool = app.config["RATELIMIT_STORAGE_OPTIONS"]["connection_pool"]
    assert isinstance(limits_pool, redis.BlockingConnectionPool) and limits_pool is not pool
    assert limiter._storage.storage.connection_pool is limits_pool


@pytest.mark.skipif(not TEST_REDIS_URL, reason="set TEST_REDIS_URL to run against Redis")
def test_more_callers_than_connections_wait_for_one():
    client = shared_redis_client(TEST_REDIS_URL, max_connections=2, timeout=10)
    errors: list[Exception] = []
    start = threading.Barrier(6)

    def caller():
        start.wait()
        try:  # each holds its connection for 0.1 s: six callers need three rounds of two
            client.blpop([f"guichet_test_{os.getpid()}_nothing"], timeout=0.1)
        except redis.RedisError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(client.connection_pool._connections) <= 2
