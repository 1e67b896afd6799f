"""HTTP views of the invitations blueprint: "Activate my access" (/invitations/activate)."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, render_template, request, url_for

from app.access import ANYONE, allow
from app.auth.hashing import hasher
from app.auth.login_flow import complete_login
from app.extensions import db, limiter
from app.flashes import flash
from app.invitations import bp
from app.invitations.forms import ActivationForm
from app.messages import message_for
from app.models import Role
from app.services.errors import DomainError
from app.services.invitations import activate_invitation


def code_pepper() -> str | bytes:
    """The key for hashing invitation codes: CODE_PEPPER, else SECRET_KEY."""
    return current_app.config.get("CODE_PEPPER") or current_app.config["SECRET_KEY"]


def staff_landing(role: str) -> str:
    """Where a newly activated account starts: the admin area, or the gate check-in page."""
    if role == Role.ADMIN.value:
        return url_for("admin.dashboard")
    if "tickets.scan" in current_app.view_functions:
        return url_for("tickets.scan")
    return url_for("account.index")


@bp.route("/activate", methods=["GET", "POST"])
@allow(ANYONE)
@limiter.limit("5/minute", methods=["POST"])
def activate():
    form = ActivationForm()
    if request.method == "GET" and request.args.get("email"):
        form.email.data = request.args["email"][:254]
    if form.validate_on_submit():
        try:
            result = activate_invitation(
                db.session, code=form.code.data, email=form.email.data, password=form.password.data,
                now=datetime.now(UTC), pepper=code_pepper(),
                hash_password=hasher.hash, check_password=hasher.check, ip_address=request.remote_addr,
            )
        except DomainError as error:
            _show_error(form, error)
        else:
            user = result.user
            done = "invitation_account_created" if result.created_account else "invitation_account_now_linked"
            flash(message_for(done, first_name=user.first_name, role=user.role), "success")
            return complete_login(user, remember=False, next_url=staff_landing(user.role), method="invitation")
    return render_template("invitations/activate.html", form=form)


def _show_error(form: ActivationForm, error: DomainError) -> None:
    codes = error.params.get("problems") or [error.code]
    field = getattr(form, error.field, None) if error.field else None
    messages = [message_for(code) for code in codes]
    if field is not None:
        field.errors = list(field.errors) + messages
    else:
        form.form_errors.extend(messages)
