"""Who may use each endpoint: one declared rule per view, and anything undeclared is refused.

    @bp.get("/orders/")
    @allow(CUSTOMER, ADMIN)
    def list_orders(): ...

`ANYONE` opens a view to everybody, `SIGNED_IN` to any logged-in user; otherwise the
rule lists the roles (customer, staff, admin). A view without a rule answers 403 for
everybody, and the access-matrix test fails until a rule is declared.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import abort, current_app, jsonify, redirect, request, url_for
from flask_login import current_user

from app.flashes import flash
from app.messages import message_for

ANYONE = "anyone"
SIGNED_IN = "signed_in"
CUSTOMER = "customer"
STAFF = "staff"
ADMIN = "admin"
KNOWN_RULES = {ANYONE, SIGNED_IN, CUSTOMER, STAFF, ADMIN}

# Endpoints of Flask itself or of extensions, open to everybody.
PUBLIC_BUILTIN_ENDPOINTS = {"static"}


def allow(*roles: str) -> Callable:
    unknown = set(roles) - KNOWN_RULES
    if not roles or unknown:
        raise ValueError(f"unknown access rule(s): {sorted(unknown) or 'none given'}")

    def decorate(view: Callable) -> Callable:
        view.access_rule = frozenset(roles)
        return view

    return decorate


def rule_for(endpoint: str) -> frozenset[str] | None:
    if endpoint in PUBLIC_BUILTIN_ENDPOINTS:
        return frozenset({ANYONE})
    view = current_app.view_functions.get(endpoint)
    return getattr(view, "access_rule", None)


def wants_json() -> bool:
    if request.is_json or request.path.startswith(("/tickets/api/", "/healthz")):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def enforce_access():
    """before_request hook: default deny, redirect anonymous visitors to the login page."""
    endpoint = request.endpoint
    if endpoint is None:  # no route matched: let the 404/405 handlers answer
        return None
    rule = rule_for(endpoint)
    if rule is None:
        current_app.logger.error("endpoint %s has no access rule; refused", endpoint)
        abort(403)
    if ANYONE in rule:
        return None
    if not current_user.is_authenticated:
        if wants_json():
            return jsonify(error="login_required", message=message_for("login_required_json")), 401
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if SIGNED_IN in rule or current_user.role in rule:
        return staff_two_factor_gate(rule)
    abort(403)


def staff_two_factor_gate(rule: frozenset[str]):
    """REQUIRE_2FA_FOR_STAFF: a staff/admin account without 2FA is sent to enrolment before
    any page reserved to staff or admins (a rule without CUSTOMER, SIGNED_IN or ANYONE)."""
    if not current_app.config.get("REQUIRE_2FA_FOR_STAFF") or rule & {CUSTOMER, SIGNED_IN, ANYONE}:
        return None
    if not current_user.is_staff or current_user.has_2fa:
        return None
    if wants_json():
        return jsonify(error="2fa_required", message=message_for("2fa_required_for_staff")), 403
    flash(message_for("2fa_required_for_staff"), "warning")
    return redirect(url_for("account.two_factor_setup"))
