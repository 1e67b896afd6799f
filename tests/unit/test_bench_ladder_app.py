"""The check-in ladder's bare rung (bench/ladder_app.py): the same request as the check-in API,
answered by Flask alone; the rung is chosen by LADDER_RUNG when the module is imported."""
from __future__ import annotations

import importlib
import sys

import pytest


def load_ladder_app(monkeypatch, rung: str):
    monkeypatch.setenv("LADDER_RUNG", rung)
    monkeypatch.delitem(sys.modules, "bench.ladder_app", raising=False)
    return importlib.import_module("bench.ladder_app")


def test_flask_rung_reads_the_json_body_and_needs_no_database(monkeypatch):
    client = load_ladder_app(monkeypatch, "flask").app.test_client()
    answer = client.post("/tickets/api/check-in", json={"payload": "G1" + "A" * 141})
    assert answer.status_code == 200
    assert answer.get_json() == {"verdict": "FLOOR", "length": 143}
    assert client.post("/tickets/api/check-in", data="not json").status_code == 400
    assert client.get("/healthz").get_json() == {"status": "ok", "rung": "flask"}


def test_unknown_rung_is_refused_by_name(monkeypatch):
    with pytest.raises(SystemExit, match="LADDER_RUNG must be one of flask, write, minimal, check_in, services"):
        load_ladder_app(monkeypatch, "everything")
