"""Admin: accounts — search, role, 2FA status, sessions; change role, disable/enable, revoke sessions.

Every change goes through a confirmation page (GET shows what will happen, POST does it).
After a change the user's cached record and sessions are invalidated, so it takes effect
on that user's very next request.
"""
from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user

from app.access import ADMIN, allow
from app.admin import bp
from app.admin.forms import USER_ROLE_CHOICES, ConfirmForm, ConfirmRoleForm, RoleForm
from app.auth.cache import invalidate_user_cache
from app.extensions import db
from app.flashes import flash
from app.messages import message_for
from app.models import User
from app.services import users_admin
from app.services.errors import DomainError, NotFound

ROLE_LABELS = dict(USER_ROLE_CHOICES)


def _load_user(user_id: int) -> User:
    try:
        return users_admin.get_user(db.session, user_id)
    except NotFound:
        abort(404)


def _apply(action, user: User, success: str):
    """Run a users_admin action, forget the cached user, flash the outcome, back to the user page."""
    try:
        change = action()
    except DomainError as error:
        db.session.rollback()
        flash(message_for(error.code), "danger")
    else:
        invalidate_user_cache(change.user.id)  # belt and braces: the ORM writes already did
        flash(success, "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.get("/users/")
@allow(ADMIN)
def users():
    query = request.args.get("q", "")[:100]
    role = request.args.get("role") or None
    status = request.args.get("status") or None
    page = request.args.get("page", 1, type=int) or 1
    rows, total = users_admin.search_users(db.session, query=query, role=role, status=status, page=page)
    return render_template("admin/users.html", users=rows, total=total, query=query, role=role, status=status,
                           page=page, page_size=users_admin.PAGE_SIZE, role_labels=ROLE_LABELS)


@bp.get("/users/<int:user_id>")
@allow(ADMIN)
def user_detail(user_id: int):
    user = _load_user(user_id)
    form = RoleForm(formdata=None, role=user.role)
    return render_template("admin/user.html", user=user, sessions=users_admin.user_sessions(db.session, user.id),
                           role_form=form, role_labels=ROLE_LABELS)


@bp.route("/users/<int:user_id>/role", methods=["GET", "POST"])
@allow(ADMIN)
def change_role(user_id: int):
    user = _load_user(user_id)
    form = ConfirmRoleForm()
    if request.method == "GET":
        form.role.data = request.args.get("role") or user.role
    if form.validate_on_submit():
        new_role = form.role.data
        return _apply(lambda: users_admin.change_role(
            db.session, user.id, new_role, actor_id=current_user.id, now=_now(), ip_address=request.remote_addr),
            user, message_for("user_role_changed", email=user.email, role=ROLE_LABELS[new_role].lower()))
    if form.role.data not in ROLE_LABELS:
        form.role.data = user.role
    return render_template("admin/user_confirm.html", user=user, form=form, action="role",
                           new_role=form.role.data, role_labels=ROLE_LABELS,
                           is_last_admin=_is_last_admin(user))


@bp.route("/users/<int:user_id>/disable", methods=["GET", "POST"])
@allow(ADMIN)
def disable_user(user_id: int):
    user = _load_user(user_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        return _apply(lambda: users_admin.disable_user(
            db.session, user.id, actor_id=current_user.id, now=_now(), ip_address=request.remote_addr),
            user, message_for("user_disabled", email=user.email))
    return render_template("admin/user_confirm.html", user=user, form=form, action="disable",
                           is_last_admin=_is_last_admin(user))


@bp.route("/users/<int:user_id>/enable", methods=["GET", "POST"])
@allow(ADMIN)
def enable_user(user_id: int):
    user = _load_user(user_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        return _apply(lambda: users_admin.enable_user(
            db.session, user.id, actor_id=current_user.id, now=_now(), ip_address=request.remote_addr),
            user, message_for("user_enabled", email=user.email))
    return render_template("admin/user_confirm.html", user=user, form=form, action="enable")


@bp.route("/users/<int:user_id>/sessions/revoke", methods=["GET", "POST"])
@allow(ADMIN)
def revoke_user_sessions(user_id: int):
    user = _load_user(user_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        return _apply(lambda: users_admin.revoke_user_sessions(
            db.session, user.id, actor_id=current_user.id, now=_now(), ip_address=request.remote_addr),
            user, message_for("user_sessions_revoked", email=user.email))
    active = [s for s in users_admin.user_sessions(db.session, user.id) if s.is_active]
    return render_template("admin/user_confirm.html", user=user, form=form, action="sessions", active=active)


def _now() -> datetime:
    return datetime.now(UTC)


def _is_last_admin(user: User) -> bool:
    return user.is_admin and not user.is_disabled and users_admin.active_admin_count(db.session) <= 1
