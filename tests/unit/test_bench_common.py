"""The benchmark helpers read wrk's report and compute percentiles correctly (no timing here)."""
from __future__ import annotations

import json
import os
import sys

import pytest

from bench import common

WRK_REPORT = """Running 30s test @ http://127.0.0.1:40001/events/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.30ms    4.10ms  98.20ms   80.00%
    Req/Sec   650.12     40.20   700.00     70.00%
  Latency Distribution
     50%   11.52ms
     75%   14.01ms
     90%   17.80ms
     99%    1.02s
  38901 requests in 30.03s, 301.22MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:   1295.41
Transfer/sec:     10.03MB
"""


def test_parse_wrk_reads_throughput_latency_and_errors():
    figures = common.parse_wrk(WRK_REPORT)
    assert figures["rps"] == 1295.41
    assert figures["p50_ms"] == 11.52
    assert figures["p99_ms"] == 1020.0  # seconds converted to milliseconds
    assert figures["requests"] == 38901
    assert figures["non_2xx"] == 5
    assert figures["socket_errors"] == 7
    assert figures["errors"] == 12


def test_parse_wrk_without_error_lines_counts_zero_and_microseconds():
    report = WRK_REPORT.replace("  Socket errors: connect 0, read 2, write 1, timeout 4\n", "")
    report = report.replace("  Non-2xx or 3xx responses: 5\n", "").replace("11.52ms", "870.00us")
    figures = common.parse_wrk(report)
    assert figures["errors"] == 0
    assert figures["p50_ms"] == 0.87


def test_wrk_duration_units():
    assert common._ms("250us") == 0.25
    assert common._ms("3.5ms") == 3.5
    assert common._ms("2.00s") == 2000.0
    with pytest.raises(ValueError):
        common._ms("fast")


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert common.percentile(values, 50) == 50
    assert common.percentile(values, 99) == 99
    assert common.percentile(values, 100) == 100
    assert common.percentile([7.0], 99) == 7.0
    assert common.percentile([], 99) == 0.0


def test_summary_ms_converts_seconds():
    summary = common.summary_ms([0.010, 0.020, 0.030])
    assert summary == {"p50": 20.0, "p99": 30.0, "n": 3}


def test_record_merges_flat_keys_with_machine_date_and_loadavg(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"catalogue_rps": 1.0, "kept": True}))
    data = common.record("catalogue", {"catalogue_rps": 900.5}, path=path)
    saved = json.loads(path.read_text())
    assert saved == data
    assert saved["catalogue_rps"] == 900.5 and saved["kept"] is True
    assert len(saved["catalogue_loadavg"]) == 3 and saved["loadavg"] == saved["catalogue_loadavg"]
    assert saved["machine"]["cores"] >= 1 and "catalogue_date" in saved and "date" in saved
    assert saved["machine"]["python_executable"] == os.path.realpath(sys.executable)  # which build measured


def test_run_wrk_refuses_other_hosts():
    with pytest.raises(ValueError):
        common.run_wrk("http://example.com/", duration=1)
