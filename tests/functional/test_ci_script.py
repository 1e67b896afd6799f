"""CI must fail when a test fails or when no test is collected (pytest's exit code is kept)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run(cmd: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PIP_NO_INDEX": "1", **(env or {})}
    full_env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300, check=False)


def make_test(pytest_args: str) -> subprocess.CompletedProcess:
    # VENV points at the running interpreter's environment, whose install stamps already exist.
    return run(["make", "test", f"VENV={sys.prefix}", f"PYTEST_ARGS={pytest_args}"])


def test_make_test_fails_when_a_test_fails():
    result = make_test("tests/ci_samples/failing_sample.py -p no:cacheprovider -q")
    assert result.returncode != 0
    assert "1 failed" in result.stdout


def test_make_test_fails_when_no_test_is_collected():
    result = make_test("tests/ci_samples -k no_test_has_this_name -p no:cacheprovider -q")
    assert result.returncode != 0
    assert "deselected" in result.stdout or "no tests ran" in result.stdout


def test_ci_script_stops_on_the_first_failing_run(tmp_path):
    """.ci/run with a `make` that fails must exit non-zero and not go on to the service run."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "calls.txt"
    fake_make = fake_bin / "make"
    fake_make.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\nexit 3\n")
    fake_make.chmod(0o755)
    result = run(["bash", ".ci/run"], env={"PATH": f"{fake_bin}:{os.environ['PATH']}"})
    assert result.returncode != 0
    assert calls.read_text().splitlines() == ["test"]  # the PostgreSQL/Redis run never started
