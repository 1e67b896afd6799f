"""CSRF sweep: every endpoint accepting POST/PUT/PATCH/DELETE (from the url map) refuses a
signed-in, allowed user's request that lacks a valid CSRF token (400), and nothing changes:
every row of every table is the same afterwards.

Three forgeries per endpoint: no token, a made-up token, and a genuine token taken from
another browser's session. The JSON check-in API is exempt from the form CSRF check only for
Bearer-token callers (scanner apps): a session-authenticated call without X-CSRFToken is
refused like any form.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import url_for

from app.access import ADMIN, CUSTOMER, SIGNED_IN, STAFF, allow, rule_for
from app.extensions import csrf, db
from app.models import CheckIn, Person, User
from app.services.scanner_tokens import create_scanner_token
from tests.functional.test_access_matrix import PARAMS, client_as, fresh_world

pytestmark = pytest.mark.app_config(WTF_CSRF_ENABLED=True)

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
TOKEN_IN_PAGE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
# Plausible values for the fields forms ask for: with a valid token many of these requests would act.
FORM = {
    "email": "forged@example.test", "password": "Forged-Password-2026!", "confirm": "Forged-Password-2026!",
    "current_password": "Correct-Horse-Battery-42", "new_password": "Forged-Password-2026!",
    "username": "forged", "first_name": "Forged", "last_name": "Request", "phone1": "+33612345678",
    "intended_role": "staff", "generate_code": "y", "role": "admin", "name": "Forged token", "quantity": "2",
    "offer_id": "1", "code": "123456", "payload": "GCH1-FORGED", "title": "Forged event", "sport": "Forgery",
    "venue": "Nowhere", "capacity": "10", "price": "10.00", "holder_name": "Forged", "card_number": "4242424242424242",
    "identity_check": "Forged identity check, long enough",
}


def acting_role(rule: frozenset[str]) -> str:
    """The signed-in user an attacker would target: the most privileged one the rule allows."""
    for role, name in ((ADMIN, "admin"), (STAFF, "staff"), (CUSTOMER, "customer")):
        if role in rule:
            return name
    return "customer"  # ANYONE or SIGNED_IN: a signed-in customer


def snapshot() -> dict[str, list[tuple]]:
    db.session.expire_all()
    with db.engine.connect() as connection:
        return {table.name: sorted(map(tuple, connection.execute(table.select())), key=repr)
                for table in db.metadata.sorted_tables}


def csrf_token_of(client) -> str:
    page = client.get("/account/").get_data(as_text=True)
    return TOKEN_IN_PAGE.search(page).group(1)


def unsafe_rules(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        for method in sorted(rule.methods & UNSAFE):
            yield rule, method


def sweep_problems(app, endpoints: set[str] | None = None) -> tuple[list[str], int]:
    problems, checked = [], 0
    world = None
    for rule, method in unsafe_rules(app):
        if endpoints is not None and rule.endpoint not in endpoints:
            continue
        declared = rule_for(rule.endpoint)
        if declared is None or set(rule.arguments) - set(PARAMS):
            problems.append(f"{rule.endpoint}: no access rule or unknown parameter (see test_access_matrix)")
            continue
        world = world or fresh_world()  # refused requests change nothing, so the world is shared
        role = acting_role(declared)
        victim = client_as(app, world, role)
        elsewhere = client_as(app, world, "other_customer" if role != "other_customer" else "customer")
        stolen = csrf_token_of(elsewhere)
        with app.test_request_context():
            url = url_for(rule.endpoint, _method=method, **{n: PARAMS[n].build(world) for n in rule.arguments})
        before = snapshot()
        for label, token in (("no token", None), ("a made-up token", "forged-token"),
                             ("another session's token", stolen)):
            data = dict(FORM, **({"csrf_token": token} if token else {}))
            headers = {"X-CSRFToken": token} if token else {}
            if rule.endpoint == "tickets.api_check_in":
                response = victim.open(url, method=method, json={"payload": FORM["payload"]}, headers=headers)
            else:
                response = victim.open(url, method=method, data=data)
            checked += 1
            if response.status_code != 400:
                problems.append(f"{rule.endpoint} {method} {url} as {role} with {label}: "
                                f"expected 400, got {response.status_code}")
        if snapshot() != before:
            problems.append(f"{rule.endpoint} {method} {url}: the database changed")
            world = None
    return problems, checked


def test_every_state_changing_endpoint_refuses_a_request_without_a_valid_token(app):
    assert app.config["WTF_CSRF_ENABLED"] is True
    problems, checked = sweep_problems(app)
    assert checked >= 3 * 25
    assert not problems, "CSRF sweep failures:\n  " + "\n  ".join(problems)


def test_an_endpoint_exempted_from_csrf_fails_the_sweep(app):
    @app.post("/_sweep/exempt")
    @allow(SIGNED_IN)
    @csrf.exempt
    def exempt():
        db.session.add(Person(first_name="Cross", last_name="Site", phone1="+33612345678", intended_role="staff"))
        db.session.commit()
        return "", 204

    problems, checked = sweep_problems(app, endpoints={"exempt"})
    assert checked == 3
    assert "exempt POST /_sweep/exempt as customer with no token: expected 400, got 204" in problems
    assert "exempt POST /_sweep/exempt: the database changed" in problems


def test_the_same_requests_with_a_valid_token_do_act(app):
    """Control: the sweep's refusals come from the missing token, not from the requests."""
    world = fresh_world()
    admin = client_as(app, world, "admin")
    token = csrf_token_of(admin)
    response = admin.post("/admin/people/new", data=dict(FORM, csrf_token=token))
    assert response.status_code == 302
    assert db.session.scalar(sa.select(Person).where(Person.first_name == "Forged")) is not None
    victim = world.users["victim"]
    admin.post(f"/admin/users/{victim.id}/role", data={"role": "staff", "csrf_token": token})
    db.session.expire_all()
    assert db.session.get(User, victim.id).role == "staff"


def test_the_check_in_api_needs_csrf_for_sessions_but_not_for_scanner_tokens(app):
    world = fresh_world()
    staff = client_as(app, world, "staff")
    url = "/tickets/api/check-in"
    count = db.session.scalar(sa.select(sa.func.count(CheckIn.id)))
    refused = staff.post(url, json={"payload": "GCH1-FORGED"})
    assert refused.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count(CheckIn.id))) == count
    with_header = staff.post(url, json={"payload": "GCH1-FORGED"}, headers={"X-CSRFToken": csrf_token_of(staff)})
    assert with_header.status_code == 200 and with_header.json["verdict"]
    # a scanner app with its Bearer token and no cookie at all
    _, token = create_scanner_token(db.session, world.users["staff"], name="Scanner", now=datetime.now(UTC),
                                    valid_days=30, max_tokens=20)
    scanner = app.test_client(use_cookies=False)
    answer = scanner.post(url, json={"payload": "GCH1-FORGED"}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json["verdict"]
