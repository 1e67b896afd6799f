"""From a fresh clone: `make run` serves the home page with demo content.

The clone is of this repository's HEAD (the committed tree, as a newcomer gets it), in a temporary
folder with its own instance/ (its own SQLite database), so the developer's data is untouched.

Offline: `make run VENV=<this test's venv>` reuses the packages already installed. Make then finds
`$(VENV)/bin/python` (no new venv) and, because the clone's requirements.txt is newer than the
`.run-installed` stamp, runs `pip install -r requirements.txt` — a quick no-op when every pin is
satisfied. PIP_NO_INDEX=1 guarantees pip never reaches for the network: if a pin were not
installed, the test fails at that step (saying so) instead of downloading. The only write to
the venv is make's empty `.run-installed` stamp, as `make run` in the checkout itself does.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO_TITLE = "Athletics — Men's 100m Final"
# Only what make, pip and flask need: nothing from the developer's environment (DATABASE_URL,
# REDIS_URL, INSTANCE_PATH, GUICHET_ENV ...) may steer the clone to other data.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_make_run_from_a_fresh_clone_serves_the_home_page_with_demo_content(tmp_path):
    if not (ROOT / ".git").exists() or not shutil.which("git") or not shutil.which("make"):
        pytest.skip("needs a git checkout, git and make")
    if sys.prefix == sys.base_prefix:
        pytest.skip("run the tests from a virtualenv (make test does): make run reuses it as VENV")

    clone = tmp_path / "guichet"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    assert not (clone / "instance").exists()

    port = free_port()
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1",
               GUICHET_ENV="development")
    log = tmp_path / "make-run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["make", "run", "HOST=127.0.0.1", f"PORT={port}", f"VENV={sys.prefix}"],
            cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        status, body = 0, ""
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"make run exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            try:
                status, body = get(base + "/")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        else:
            pytest.fail(f"make run did not answer on {base} within 90 s:\n{log.read_text()[-4000:]}")

        assert status == 200, body[:1000]
        assert DEMO_TITLE in html.unescape(body)
        health_status, health_body = get(base + "/healthz")
        assert health_status == 200 and json.loads(health_body)["status"] == "ok"
        # The clone used its own instance folder (fresh SQLite file with the demo data).
        assert (clone / "instance" / "guichet.sqlite").exists()
        output = log.read_text()
        assert re.search(r"Loaded \d+ events", output), output[-4000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
