"""The access matrix: every endpoint of `app.url_map`, for every role, answers as declared.

For each endpoint the expected answer per role is derived from its `@allow(...)` rule
(app/access.py `rule_for`):

    role not signed in, endpoint not open to ANYONE  -> 302 to /auth/login (401 for JSON APIs)
    signed-in role the rule does not name            -> 403
    allowed role on an object it does not own        -> 404 ("another customer")
    allowed role                                     -> the endpoint's success status (SUCCESS table)

The tables below say how to build each URL parameter (a sample object owned by "customer"
when the parameter names a customer's object) and which endpoints answer something other
than 200 (GET) / 302 (POST) when used by an allowed role. An endpoint without an `@allow`
rule, or with a parameter PARAMS does not know, fails the test with a message saying what
to declare; so the next route added without a rule is caught.

After every action endpoint (POST...) the world is rebuilt (emptied tables, new users and
objects), so an action tried there (cancel, revoke, disable...) cannot change what the next
endpoint sees; pages (GET) share a world. Staff and admin have 2FA on, so REQUIRE_2FA_FOR_STAFF (on in
tests) lets them through. Users are signed in the way the login flow leaves them: a
`user_sessions` row whose public id the server-side session holds.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, url_for

from app.access import ADMIN, ANYONE, CUSTOMER, SIGNED_IN, STAFF, allow, rule_for
from app.auth.login_flow import ROLE_KEY, SESSION_KEY
from app.extensions import cache, db, limiter
from app.models import Ticket, User, UserSession
from app.services.scanner_tokens import create_scanner_token
from app.services.user_sessions import open_session
from tests.conftest import empty_all_tables
from tests.factories import (
    InvitationFactory,
    OfferFactory,
    PersonFactory,
    UserFactory,
    make_paid_order,
)
from tests.security_headers import security_header_problems

ROLES = ("anonymous", "customer", "other_customer", "staff", "admin")
ROLE_OF = {"customer": CUSTOMER, "other_customer": CUSTOMER, "staff": STAFF, "admin": ADMIN}
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
LOGIN = "login"  # outcome label: sent to the login page (or 401 from a JSON API)


# --------------------------------------------------------------------------- the world
@dataclass
class World:
    users: dict[str, User]
    session_ids: dict[str, str] = field(default_factory=dict)  # role -> user_sessions.public_id
    objects: dict[str, object] = field(default_factory=dict)


def build_world() -> World:
    """Five signed-in roles, plus a 'victim' account that admin actions on users are tried on."""
    now = datetime.now(UTC)
    users = {
        "customer": UserFactory(role="customer"),
        "other_customer": UserFactory(role="customer"),
        "staff": UserFactory(role="staff", totp_secret=TOTP_SECRET, totp_enabled_at=now),
        "admin": UserFactory(role="admin", totp_secret=TOTP_SECRET, totp_enabled_at=now),
        "victim": UserFactory(role="customer", totp_secret=TOTP_SECRET, totp_enabled_at=now),
    }
    world = World(users=users)
    for role in ROLE_OF:
        row = open_session(db.session, users[role], user_agent="access-matrix", ip_address="127.0.0.1", now=now)
        world.session_ids[role] = row.public_id
    offer = OfferFactory()
    order = make_paid_order(users["customer"], (offer, 1))
    token, _ = create_scanner_token(db.session, users["staff"], name="Gate A", now=now, valid_days=30,
                                    max_tokens=20)
    world.objects.update(
        offer=offer, event=offer.event, order=order,
        ticket=db.session.scalar(sa.select(Ticket).where(Ticket.order_id == order.id)),
        person=PersonFactory(), invitation=InvitationFactory(), scanner_token=token,
        customer_session=db.session.scalar(
            sa.select(UserSession).where(UserSession.public_id == world.session_ids["customer"])),
    )
    return world


def fresh_world() -> World:
    db.session.rollback()
    empty_all_tables()
    cache.clear()
    limiter.reset()
    return build_world()


def client_as(app: Flask, world: World, role: str):
    client = app.test_client()
    if role != "anonymous":
        user = world.users[role]
        with client.session_transaction() as session:
            session["_user_id"] = str(user.id)
            session["_fresh"] = True
            session[SESSION_KEY] = world.session_ids[role]
            session[ROLE_KEY] = user.role
    return client


# --------------------------------------------------------------------------- the tables
@dataclass(frozen=True)
class Param:
    build: Callable[[World], object]
    owner: str | None = None  # the role owning the object: other allowed roles get 404


PARAMS: dict[str, Param] = {
    "code": Param(lambda w: w.objects["order"].code, owner="customer"),          # order code
    "ticket_id": Param(lambda w: w.objects["ticket"].id, owner="customer"),
    "session_id": Param(lambda w: w.objects["customer_session"].id, owner="customer"),
    "token_id": Param(lambda w: w.objects["scanner_token"].id, owner="staff"),   # scanner token
    "slug": Param(lambda w: w.objects["event"].slug),
    "event_id": Param(lambda w: w.objects["event"].id),
    "offer_id": Param(lambda w: w.objects["offer"].id),
    "person_id": Param(lambda w: w.objects["person"].id),
    "invitation_id": Param(lambda w: w.objects["invitation"].id),
    "user_id": Param(lambda w: w.users["victim"].id),
    "token": Param(lambda w: "not-a-valid-token"),                               # emailed links
    "filename": Param(lambda w: "css/app.css"),                                  # static files
}

# Endpoints where an admin may see everybody's objects (owner or admin).
ADMIN_SEES_ALL = {"tickets.ticket_pdf"}

# Success status of an allowed role when it is not 200 (GET) or 302 (POST with no data).
# A dict maps a role to its status; "*" is every other allowed role.
SUCCESS: dict[str, int | str | dict[str, int | str]] = {
    # open pages that send a signed-in visitor elsewhere
    "auth.login": {"anonymous": 200, "*": 302},
    "auth.register": {"anonymous": 200, "*": 302},
    "auth.two_factor": {"anonymous": LOGIN, "*": 302},  # no login waiting for a second factor
    "auth.verify_email": 400,           # a bad link: friendly error page
    "auth.reset_with_token": 400,       # a bad link: friendly error page
    "auth.resend_verification": 302,    # everyone in the world is verified already
    # pages that depend on state the world does not have
    "account.two_factor_setup": {"customer": 200, "other_customer": 200, "*": 302},  # staff/admin: 2FA is on
    "account.two_factor_recovery_codes_download": 302,  # no fresh codes to download
    "cart.checkout": 302,               # an empty cart: back to the cart
    "cart.update_item": 404,            # the sample offer is not in this visitor's cart
    "cart.remove_item": 404,
    # actions tried with an empty form
    "account.two_factor_disable": 200,  # the form again, with its errors
    "account.two_factor_regenerate": 200,
    "orders.pay_order": 422,            # the card form again, with its errors
    # the JSON check-in API authenticates itself: staff session, or a Bearer scanner token
    "tickets.api_check_in": {"anonymous": LOGIN, "customer": 403, "other_customer": 403, "staff": 400, "admin": 400},
}

# Answers decided on purpose that differ from the derived rule (say why).
OVERRIDES: dict[str, dict[str, int | str]] = {}


# --------------------------------------------------------------------------- the check
def outcome(response) -> str | int:
    if response.status_code == 401:
        return LOGIN
    if response.status_code in (302, 303):
        if urlsplit(response.headers.get("Location", "")).path == "/auth/login":
            return LOGIN
        return 302  # 302 Found and 303 See Other are the same answer here
    return response.status_code


def expected_answer(endpoint: str, rule: frozenset[str], role: str, owners: set[str]) -> str | int:
    if endpoint in OVERRIDES and role in OVERRIDES[endpoint]:
        return OVERRIDES[endpoint][role]
    success = SUCCESS.get(endpoint)
    if isinstance(success, dict):
        if role in success:
            return success[role]
        success = success.get("*")
    if ANYONE not in rule:
        if role == "anonymous":
            return LOGIN
        if SIGNED_IN not in rule and ROLE_OF[role] not in rule:
            return 403
        admin_sees = role == "admin" and (rule == {ADMIN} or endpoint in ADMIN_SEES_ALL)
        if any(owner != role for owner in owners) and not admin_sees:
            return 404
    return success


def method_for(rule) -> str:
    methods = rule.methods - {"HEAD", "OPTIONS"}
    return "GET" if "GET" in methods else min(methods)


def matrix_problems(app: Flask, endpoints: set[str] | None = None) -> tuple[list[str], int]:
    """Walk the url map; return (problems, number of checks made)."""
    problems: list[str] = []
    checks = 0
    world = None
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if endpoints is not None and rule.endpoint not in endpoints:
            continue
        declared = rule_for(rule.endpoint)
        if declared is None:
            problems.append(
                f"{rule.endpoint} ({rule.rule}) has no access rule: declare who may use it with "
                "@allow(ANYONE | SIGNED_IN | CUSTOMER | STAFF | ADMIN) from app/access.py, right under the route "
                "decorator. Undeclared views answer 403 to everybody.")
            continue
        unknown = sorted(set(rule.arguments) - set(PARAMS))
        if unknown:
            problems.append(
                f"{rule.endpoint} ({rule.rule}): the access matrix cannot build <{'>, <'.join(unknown)}>. "
                "Add it to PARAMS in tests/functional/test_access_matrix.py: how to make a sample value, and "
                "owner='customer' when it names a customer's object (another customer must get 404).")
            continue
        method = method_for(rule)
        if world is None:
            world = fresh_world()
        values = {name: PARAMS[name].build(world) for name in rule.arguments}
        owners = {PARAMS[name].owner for name in rule.arguments if PARAMS[name].owner}
        with app.test_request_context():
            url = url_for(rule.endpoint, _method=method, **values)
        for role in ROLES:
            expected = expected_answer(rule.endpoint, declared, role, owners)
            if expected is None:
                expected = 200 if method == "GET" else 302
            client = client_as(app, world, role)
            checks += 1
            try:
                if rule.endpoint == "tickets.api_check_in":
                    response = client.post(url, json={})
                else:
                    response = client.open(url, method=method, data={} if method != "GET" else None)
            except Exception as error:  # noqa: BLE001 (report every endpoint, not just the first crash)
                problems.append(f"{rule.endpoint} {method} {url} as {role}: raised {error!r}")
                db.session.rollback()
                continue
            got = outcome(response)
            problems.extend(f"{rule.endpoint} {method} {url} as {role}: {problem}"
                            for problem in security_header_problems(response))
            response.close()  # static files stream from disk
            if got != expected:
                where = response.headers.get("Location", "")
                problems.append(f"{rule.endpoint} {method} {url} as {role}: expected {expected}, got {got}"
                                + (f" (to {where})" if where else ""))
        if method != "GET":
            world = None  # an action may have changed the world: the next endpoint gets a fresh one
    return problems, checks


def test_every_endpoint_answers_every_role_as_declared(app):
    problems, checks = matrix_problems(app)
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert len(endpoints) > 60 and checks >= len(endpoints) * len(ROLES)
    assert not problems, "Access matrix mismatches:\n  " + "\n  ".join(problems)


def test_a_get_on_a_post_only_endpoint_answers_405(app):
    """An action URL opened in the browser gets the friendly 405 page with its Allow header."""
    world = fresh_world()
    problems = []
    for rule in app.url_map.iter_rules():
        methods = rule.methods - {"HEAD", "OPTIONS"}
        if "GET" in methods or set(rule.arguments) - set(PARAMS):
            continue
        if any("GET" in other.methods for other in app.url_map.iter_rules() if other.rule == rule.rule):
            continue  # e.g. GET /orders/ is the list, POST /orders/ places an order
        with app.test_request_context():
            url = url_for(rule.endpoint, _method=min(methods), **{n: PARAMS[n].build(world) for n in rule.arguments})
        for role in ("anonymous", "admin"):
            try:
                response = client_as(app, world, role).get(url)
                status, allow_header = response.status_code, response.headers.get("Allow", "")
            except Exception as error:  # noqa: BLE001
                status, allow_header = repr(error), ""
            if status != 405 or min(methods) not in allow_header:
                problems.append(f"{rule.endpoint} GET {url} as {role}: expected 405 with Allow, got {status}")
    assert not problems, "\n  ".join(problems)


def test_a_route_without_a_rule_fails_the_matrix(app):
    @app.get("/_matrix/undeclared")
    def undeclared():
        return "should never be served"

    problems, _ = matrix_problems(app, endpoints={"undeclared"})
    assert len(problems) == 1 and "has no access rule" in problems[0] and "@allow" in problems[0]
    assert app.test_client().get("/_matrix/undeclared").status_code == 403  # and it is refused meanwhile


def test_a_parameter_the_matrix_does_not_know_fails_it(app):
    @app.get("/_matrix/gizmos/<int:gizmo_id>")
    @allow(CUSTOMER)
    def gizmo(gizmo_id: int):
        return "a gizmo"

    problems, _ = matrix_problems(app, endpoints={"gizmo"})
    assert len(problems) == 1 and "<gizmo_id>" in problems[0] and "PARAMS" in problems[0]


def test_a_wrong_answer_is_reported(app):
    @app.get("/_matrix/leaky")
    @allow(ADMIN)
    def leaky():
        return "admins only, but the view forgets nothing: fine"

    @app.get("/_matrix/broken")
    @allow(CUSTOMER)
    def broken():
        from flask import abort

        abort(404)  # an allowed customer must not get 404 on a page without an object

    problems, _ = matrix_problems(app, endpoints={"leaky", "broken"})
    assert problems == [
        "broken GET /_matrix/broken as customer: expected 200, got 404",
        "broken GET /_matrix/broken as other_customer: expected 200, got 404",
    ]
