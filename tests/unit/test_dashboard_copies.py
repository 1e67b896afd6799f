"""The dashboard's in-process copies of values cached under a stats version (app/admin/dashboard.py)."""
from __future__ import annotations

import pytest

from app.admin import dashboard
from app.admin.dashboard import VersionCopies


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(dashboard.time, "monotonic", lambda: now[0])
    return now


def test_a_copy_is_only_for_its_own_version(clock):
    copies = VersionCopies()
    copies.put("v1", "section:all", "<p>1</p>", seconds=60)
    assert copies.get("v1", "section:all") == "<p>1</p>"
    assert copies.get("v2", "section:all") is None
    assert copies.get("v1", "section:other") is None


def test_a_new_version_drops_every_copy_of_the_old_one(clock):
    copies = VersionCopies()
    copies.put("v1", "a", 1, seconds=60)
    copies.put("v1", "b", 2, seconds=60)
    copies.put("v2", "a", 3, seconds=60)
    assert copies.get("v2", "a") == 3
    assert copies.get("v1", "a") is None and copies.get("v1", "b") is None


def test_copies_expire(clock):
    copies = VersionCopies()
    copies.put("v1", "a", 1, seconds=60)
    clock[0] += 60
    assert copies.get("v1", "a") == 1
    clock[0] += 0.001
    assert copies.get("v1", "a") is None


def test_the_number_of_copies_is_bounded(clock):
    copies = VersionCopies(max_entries=3)
    for n in range(3):
        copies.put("v1", f"filters-{n}", n, seconds=60)
    assert [copies.get("v1", f"filters-{n}") for n in range(3)] == [0, 1, 2]
    copies.put("v1", "filters-3", 3, seconds=60)
    assert [copies.get("v1", f"filters-{n}") for n in range(4)] == [None, None, None, 3]


def test_clear(clock):
    copies = VersionCopies()
    copies.put("v1", "a", 1, seconds=60)
    copies.clear()
    assert copies.get("v1", "a") is None


@pytest.mark.parametrize("stats_seconds, local_seconds", [(300, 60), (20, 20), (0, 60)])
def test_a_copy_never_outlives_the_shared_entry(app, clock, monkeypatch, stats_seconds, local_seconds):
    """0 means "no timeout" to Flask-Caching: the copy still expires after LOCAL_SECONDS."""
    copies = VersionCopies()
    monkeypatch.setattr(dashboard, "copies", copies)
    app.config["STATS_CACHE_SECONDS"] = stats_seconds
    builds = []
    with app.app_context():
        assert dashboard.cached("v1", "x", lambda: builds.append(1) or "built") == "built"
        dashboard.cache.delete("stats:v1:x")  # only the copy is left
        clock[0] += local_seconds
        assert dashboard.cached("v1", "x", lambda: builds.append(1) or "again") == "built"
        clock[0] += 0.001
        assert dashboard.cached("v1", "x", lambda: builds.append(1) or "again") == "again"
    assert len(builds) == 2


def test_without_a_version_nothing_is_kept(app, monkeypatch):
    copies = VersionCopies()
    monkeypatch.setattr(dashboard, "copies", copies)
    with app.app_context():
        assert [dashboard.cached(None, "x", lambda n=n: n) for n in range(2)] == [0, 1]
    assert copies.get("None", "x") is None
