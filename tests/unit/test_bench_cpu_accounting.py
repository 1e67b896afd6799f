"""How the rush benchmarks count CPU (PostgreSQL backends that ended during a run, the whole machine)
and keep the warm-up rush's figures."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench import common, report


def test_postgres_cpu_since_adds_what_the_postmaster_reaped_minus_what_ended_backends_had_used_before():
    before = {1: (5.0, 100.0), 20: (2.0, 0.0), 30: (1.0, 0.0)}  # postmaster, a backend that stays, one that ends
    # Backend 30 ended at 1.5 s in all; backend 40 started and ended in between (3 s); 50 is new and alive.
    now = {1: (5.1, 100.0 + 1.5 + 3.0), 20: (2.5, 0.0), 50: (0.7, 0.0)}
    assert common.postgres_cpu_since(before, now) == pytest.approx(0.1 + 0.5 + (1.5 - 1.0) + 3.0 + 0.7)


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL on this machine")
def test_postgres_cpu_since_counts_a_backend_that_ended_during_the_run():
    import psycopg

    before = common.postgres_cpu()
    url = os.environ["TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.execute("SELECT count(*) FROM generate_series(1, 3000000)").fetchone()
        used = common.cpu_seconds([pid])
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the postmaster reaps it
    assert used >= 0.05
    assert common.postgres_cpu_since(before) >= used


def test_machine_busy_seconds_count_this_process_working():
    before, cpu0 = common.machine_busy_seconds(), time.process_time()
    while time.process_time() - cpu0 < 0.3:
        pass
    assert common.machine_busy_seconds() - before >= 0.25


def test_report_shows_cpu_per_order_with_a_dash_for_a_part_an_older_run_did_not_measure():
    cpu = {"app": 10.0, "postgres": 2.5, "client": 2.0, "email_worker": 0.5}
    assert report.cpu_per_order(cpu, 500) == "— / 20 / 5 / 4 / 1 ms"
    assert report.cpu_per_order({**cpu, "machine": 16.0}, 500) == "32 / 20 / 5 / 4 / 1 ms"
    assert report.cpu_per_order(None, 500) == "—"


def test_rush_ceilings_are_orders_a_minute_two_busy_cores_allow_at_the_cost_measured():
    from bench.rush import ceilings

    cpu = {"app": 5.0, "postgres": 4.0, "client": 1.0, "email_worker": 1.0, "machine": 12.0}
    assert ceilings(cpu, 500, 2) == {
        "rush_server_cpu_ms_per_order": 20.0, "rush_client_cpu_ms_per_order": 2.0,
        "rush_server_ceiling_orders_per_minute": 6000,  # 120 CPU-seconds a minute / 20 ms
        "rush_machine_ceiling_orders_per_minute": 5000}  # / 24 ms
    assert ceilings(cpu, 0, 2) == {}


def test_the_warm_up_rush_keeps_its_figures_as_cold_ones_and_the_table_shows_them():
    from bench.rush import cold_figures

    warm_up = {"orders_per_minute": 1700.0, "oversell": 0, "errors_5xx": 0, "rush_machine_cpu_ms_per_order": 69.9,
               "rush_app_cpu_ms_per_order": 44.5, "placement_p50_ms": 900.0}
    cold = cold_figures(warm_up)
    assert cold == {"rush_cold_orders_per_minute": 1700.0, "rush_cold_oversell": 0, "rush_cold_errors_5xx": 0,
                    "rush_cold_machine_cpu_ms_per_order": 69.9, "rush_cold_app_cpu_ms_per_order": 44.5}
    assert report.detail_value("rush_cold_orders_per_minute", "", cold) == "1,700; 0 / 0; 70 ms"


def test_a_failure_in_the_warm_up_rush_shows_as_a_missed_target():
    rows = {line.split(" | ")[0].lstrip("| "): line
            for line in report.table({"oversell": 0, "errors_5xx": 0, "rush_cold_oversell": 0,
                                      "rush_cold_errors_5xx": 3}).splitlines() if line.startswith("| ")}
    assert "| 0 | yes |" in rows["rush: 5xx answers"]
    assert "| 3 | **no** |" in rows["rush: 5xx answers in the warm-up rush before it"]
    assert "| 0 | yes |" in rows["rush: oversell in the warm-up rush before it"]
