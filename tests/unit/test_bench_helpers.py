"""Bench helpers that read pages and reports: forms and CSRF tokens, wrk verdict lines, nginx config,
the README table (no timing, no server)."""
from __future__ import annotations

import json

import pytest

from bench import checkin, common, nginx, report
from bench.browser import csrf_token, parse_forms

PAGE = """
<form method="post" action="/cart/add" class="d-flex">
  <input id="csrf_token" name="csrf_token" type="hidden" value="IjE2Yz.token">
  <input type="hidden" name="offer_id" value="12">
  <select name="quantity"><option value="1">1</option><option value="2" selected>2</option></select>
  <input type="checkbox" name="gift" value="yes">
  <input type="checkbox" name="remember" value="y" checked>
  <button type="submit" name="go" value="1">Add</button>
</form>
<form action="/events/"><input name="sport" value=""></form>
"""


def test_forms_are_read_like_a_browser_would_submit_them():
    add, search = parse_forms(PAGE)
    assert add.action == "/cart/add" and add.method == "post"
    assert add.fields == {"csrf_token": "IjE2Yz.token", "offer_id": "12", "quantity": "2", "remember": "y"}
    assert add.filled(quantity=1) == {**add.fields, "quantity": "1"}
    assert search.method == "get" and search.fields == {"sport": ""}


def test_a_named_submit_button_is_sent_only_when_clicked():
    add, search = parse_forms(PAGE)
    assert add.buttons == {"go": "1"} and "go" not in add.fields
    assert add.filled("go") == {**add.fields, "go": "1"}
    with pytest.raises(LookupError):
        search.filled("go")


def test_forms_unescape_values_and_accept_any_quoting():
    page = """<FORM method='POST' action="/orders/?next=a&amp;b=1"><input name=code value=AB&lt;1>
    <input type="radio" name="size" value="s"><input type="radio" checked name="size" value="m">
    <textarea name="note">ignored</textarea><input name="empty" value=""></form>"""
    (form,) = parse_forms(page)
    assert form.action == "/orders/?next=a&b=1" and form.method == "post"
    assert form.fields == {"code": "AB<1", "size": "m", "empty": ""}


def test_csrf_token_in_either_attribute_order():
    assert csrf_token(PAGE) == "IjE2Yz.token"
    assert csrf_token('<input value="abc" type="hidden" name="csrf_token">') == "abc"
    assert csrf_token("<p>no form</p>") is None


def test_checkin_verdict_lines_from_the_lua_script():
    output = "Requests/sec: 10\nverdict VALID 950\nverdict ALREADY_USED 3\nverdict OTHER 0\n"
    assert checkin.parse_verdicts(output) == {"VALID": 950, "ALREADY_USED": 3, "OTHER": 0}


def test_nginx_config_listens_on_loopback_with_private_paths(tmp_path):
    text = nginx.render_config(tmp_path, 40123, [40001, 40002])
    assert "listen 127.0.0.1:40123;" in text
    assert "server 127.0.0.1:40001" in text and "server 127.0.0.1:40002" in text
    assert f"pid {tmp_path}/nginx.pid;" in text and f"proxy_temp_path {tmp_path}/proxy;" in text


def test_report_table_marks_targets_met_and_missed(tmp_path, monkeypatch):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"catalogue_rps": 950.0, "catalogue_p99_ms": 75.0, "catalogue_loadavg": [1, 2, 3],
                                   "oversell": 0, "machine": {"cpu": "Test CPU", "cores": 2}}))
    monkeypatch.setattr(common, "RESULTS", results)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Bench\n\nintro\n{report.START}\nstale table\n{report.END}\nafter\n")
    report.write_readme(readme)
    text = readme.read_text()
    assert text.startswith("# Bench\n\nintro\n") and text.endswith("after\n") and "stale table" not in text
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "| 950 | yes | 1.0 2.0 3.0 |" in rows["catalogue pages req/s (worse of /events/ and an event)"]
    assert "| **no** |" in rows["catalogue p99"]
    assert "| — | — |" in rows["admin dashboard warm"]
    assert "Test CPU, 2 cores" in text


def test_report_gives_each_check_in_ladder_rung_its_line():
    results = {"ladder_write_rps": 1688.03, "ladder_write_p50_ms": 8.84, "ladder_write_p99_ms": 22.84,
               "ladder_write_app_cpu_ms": 0.73, "ladder_write_pg_cpu_ms": 0.19, "ladder_loadavg": [2, 2, 2]}
    rows = [line for line in report.table(results).splitlines() if "check-in ladder" in line]
    assert [row.split(" — ")[0].removeprefix("| check-in ladder: ") for row in rows] == [
        label for _, label in report.LADDER_RUNGS]
    assert "| 1,688, 8.84 ms, 23 ms; 0.73 / 0.19 ms | 2.0 2.0 2.0 |" in rows[1]
    assert "| — |" in rows[0]  # a rung not measured yet


def test_report_shows_instruction_counts_with_the_commit_they_measured():
    results = {"instructions_per_purchase_m": 130.98, "instructions_per_page_m": 5.16,
               "instructions_commit": "40c0b05abcde", "instructions_loadavg": [1, 1, 1]}
    row = next(line for line in report.table(results).splitlines() if line.startswith("| instructions"))
    assert "| 131.0 M / 5.16 M / — (commit 40c0b05abcde) | 1.0 1.0 1.0 |" in row  # no scan counted yet
    results["instructions_per_checkin_m"] = 2.844
    row = next(line for line in report.table(results).splitlines() if line.startswith("| instructions"))
    assert "| 131.0 M / 5.16 M / 2.84 M (commit 40c0b05abcde) | 1.0 1.0 1.0 |" in row


def test_check_in_ladder_refuses_an_unknown_rung():
    from bench import checkin_ladder

    with pytest.raises(SystemExit):
        checkin_ladder.main(["--rungs", "app,everything"])


def test_roundtrips_apart_counts_each_post_apart_from_the_page_it_redirects_to():
    """`roundtrips.py --apart`: the rush's eight requests, a POST never following its redirect."""
    from bench import roundtrips

    pages = {"/auth/login": '<form method="post" action="/auth/login"><input name="email"></form>',
             "/events/judo": '<form method="post" action="/cart/add"><input name="csrf_token" value="t"></form>',
             "/cart/checkout": '<form method="post" action="/orders/"><input name="expected_total_cents" value="9"></form>',
             "/orders/GCH-AAAAAA": '<form method="post" action="/orders/GCH-AAAAAA/pay"></form>'}
    redirects = {"/cart/add": "/cart/", "/orders/": "/orders/GCH-AAAAAA", "/orders/GCH-AAAAAA/pay": "/orders/GCH-AAAAAA"}

    class Response:
        def __init__(self, path):
            self.text, self.headers = pages.get(path, ""), {"Location": redirects.get(path)}

        def get_data(self, as_text=True):
            return self.text

    calls = []

    def step(name, method, path, data=None, follow=True):
        calls.append((name, method, path, follow))
        return Response(path)

    roundtrips.buyer_flow_apart(step, "a@example.test", {"slug": "judo", "offer_id": 3})
    assert [(name, path, follow) for name, _, path, follow in calls] == [
        ("login page", "/auth/login", True), ("login (bcrypt cost 4)", "/auth/login", True),
        ("event page", "/events/judo", True), ("add to cart (POST)", "/cart/add", False),
        ("cart page", "/cart/", True), ("checkout review", "/cart/checkout", True),
        ("place order (POST)", "/orders/", False), ("order page, pending", "/orders/GCH-AAAAAA", True),
        ("pay (POST)", "/orders/GCH-AAAAAA/pay", False), ("order page, paid", "/orders/GCH-AAAAAA", True)]


def test_the_rush_times_placing_and_paying_as_its_journey_makes_them():
    """Pay-now places and pays in one request; buy-now in two. A step the journey does not make is
    None, so a run never shows the figure an earlier run of another journey left in results.json."""
    from bench import rush

    def step(name, rows):
        return common.summary_ms([r["steps"][name] for r in rows if name in r["steps"]])

    pay_now = [{"steps": {"place_and_pay": seconds}} for seconds in (0.010, 0.020, 0.030)]
    figures = rush.step_figures(pay_now, step)
    assert figures["place_and_pay_p50_ms"] == 20.0 and figures["place_and_pay_p99_ms"] >= 29.0
    assert figures["placement_p50_ms"] is figures["payment_p99_ms"] is None
    buy_now = [{"steps": {"placement": 0.004, "payment": 0.006}}]
    figures = rush.step_figures(buy_now, step)
    assert (figures["placement_p50_ms"], figures["payment_p50_ms"], figures["place_and_pay_p50_ms"]) == (4.0, 6.0, None)
    assert rush.JOURNEYS[rush.DEFAULT_JOURNEY] == 5


def test_report_shows_both_journeys_of_placing_and_paying():
    results = {"place_and_pay_p50_ms": 11.5, "place_and_pay_p99_ms": 40.0, "placement_p50_ms": None,
               "buy_now_orders_per_minute": 4900.0, "buy_now_oversell": 0, "buy_now_errors_5xx": 0,
               "buy_now_placement_p50_ms": 5.5, "buy_now_placement_p99_ms": 20.0}
    table = report.table(results)
    assert "(the review's \"Pay\") p50 / p99 | 12 / 40 ms |" in table  # ≥ 10: no decimals
    assert "orders/min; oversell / 5xx | 4,900; 0 / 0 |" in table
    assert "… its place order p50 / p99 | 5.5 / 20 ms |" in table
    assert "place order p50 / p99 (journeys that place and pay apart) | — / — ms |" in table
