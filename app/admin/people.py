"""Admin: the people directory (staff to invite) and their invitation codes.

A new code is shown to the admin exactly once: it is kept in the server-side session
just long enough for the next page, which removes it while displaying it.
"""
from __future__ import annotations

import smtplib
from datetime import UTC, datetime

from flask import (
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from app.access import ADMIN, allow
from app.admin import bp
from app.admin.forms import PHONE_HELP, ConfirmForm, PersonForm
from app.extensions import db
from app.flashes import flash
from app.invitations.routes import code_pepper
from app.mailer import send_mail
from app.messages import message_for
from app.models import Person
from app.services import invitations, people
from app.services.errors import DomainError, NotFound
from app.services.phones import format_phone

SHOWN_CODE_KEY = "invitation_code_to_show"
STATE_LABELS = {"pending": "Pending", "used": "Used", "expired": "Expired", "revoked": "Revoked"}


def _now() -> datetime:
    return datetime.now(UTC)


def _page() -> int:
    return request.args.get("page", 1, type=int) or 1


def _invite_settings() -> people.InvitationSettings:
    return people.InvitationSettings(pepper=code_pepper(), valid_days=current_app.config["INVITATION_DAYS"])


def _load_person(person_id: int) -> Person:
    try:
        return people.get_person(db.session, person_id)
    except NotFound:
        abort(404)


def _person_data(form: PersonForm) -> people.PersonData:
    return people.PersonData(first_name=form.first_name.data, last_name=form.last_name.data,
                             phone1=form.phone1.data, phone2=form.phone2.data, email=form.email.data,
                             intended_role=form.intended_role.data)


def _attach_error(form, error: DomainError) -> None:
    field = getattr(form, error.field, None) if error.field else None
    (field.errors if field is not None else form.form_errors).append(message_for(error.code))


def _hand_over(person: Person, issued: invitations.IssuedInvitation) -> None:
    """Keep the new code for one display, and email it when the person has an email."""
    session[SHOWN_CODE_KEY] = {"person_id": person.id, "code": issued.code,
                               "emailed": False, "expires_at": issued.invitation.expires_at.isoformat()}
    if not person.email:
        return
    try:
        send_mail(person.email, "your invitation to the Guichet team", "invitation", person=person,
                  code=issued.code, expires_at=issued.invitation.expires_at,
                  activate_url=current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for("invitations.activate"))
    except (OSError, smtplib.SMTPException):
        current_app.logger.exception("could not email an invitation code")
        flash(message_for("invitation_email_failed"), "warning")
    else:
        session[SHOWN_CODE_KEY] = {**session[SHOWN_CODE_KEY], "emailed": True}


# --------------------------------------------------------------------------- people
@bp.get("/people/")
@allow(ADMIN)
def people_list():
    query = request.args.get("q", "")[:100]
    role = request.args.get("role") or None
    rows, total = people.search_people(db.session, query=query, role=role, page=_page())
    return render_template("admin/people.html", people=rows, total=total, query=query, role=role,
                           page=_page(), page_size=people.PAGE_SIZE, format_phone=format_phone, now=_now())


@bp.route("/people/new", methods=["GET", "POST"])
@allow(ADMIN)
def new_person():
    form = PersonForm()
    if form.validate_on_submit():
        invite = _invite_settings() if form.generate_code.data else None
        try:
            person, issued = people.create_person(db.session, _person_data(form), actor_id=current_user.id,
                                                  now=_now(), invite=invite, ip_address=request.remote_addr)
        except DomainError as error:
            _attach_error(form, error)
        else:
            flash(message_for("person_added", name=person.full_name), "success")
            if issued is not None:
                _hand_over(person, issued)
            return redirect(url_for("admin.person_detail", person_id=person.id))
    return render_template("admin/person_form.html", form=form, person=None, phone_help=PHONE_HELP)


@bp.get("/people/<int:person_id>")
@allow(ADMIN)
def person_detail(person_id: int):
    person = _load_person(person_id)
    shown = session.get(SHOWN_CODE_KEY)
    if isinstance(shown, dict) and shown.get("person_id") == person.id:
        session.pop(SHOWN_CODE_KEY, None)  # shown once: a reload no longer has it
        shown = {**shown, "expires_at": datetime.fromisoformat(shown["expires_at"])}
    else:
        shown = None
    return render_template("admin/person.html", person=person, shown=shown, now=_now(),
                           format_phone=format_phone, confirm_form=ConfirmForm())


@bp.route("/people/<int:person_id>/edit", methods=["GET", "POST"])
@allow(ADMIN)
def edit_person(person_id: int):
    person = _load_person(person_id)
    form = PersonForm(obj=person)
    if form.validate_on_submit():
        try:
            people.update_person(db.session, person.id, _person_data(form))
        except DomainError as error:
            db.session.rollback()
            _attach_error(form, error)
        else:
            flash(message_for("person_saved", name=person.full_name), "success")
            return redirect(url_for("admin.person_detail", person_id=person.id))
    return render_template("admin/person_form.html", form=form, person=person, phone_help=PHONE_HELP)


@bp.route("/people/<int:person_id>/delete", methods=["GET", "POST"])
@allow(ADMIN)
def delete_person(person_id: int):
    person = _load_person(person_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        name = person.full_name
        people.delete_person(db.session, person.id)
        flash(message_for("person_removed", name=name), "success")
        return redirect(url_for("admin.people_list"))
    return render_template("admin/person_delete.html", person=person, form=form)


@bp.post("/people/<int:person_id>/invite")
@allow(ADMIN)
def invite_person(person_id: int):
    person = _load_person(person_id)
    if ConfirmForm().validate_on_submit():
        try:
            issued = invitations.issue_invitation(
                db.session, person.id, actor_id=current_user.id, now=_now(), pepper=code_pepper(),
                valid_days=current_app.config["INVITATION_DAYS"], ip_address=request.remote_addr)
        except DomainError as error:
            flash(message_for(error.code), "danger")
        else:
            _hand_over(person, issued)
    return redirect(url_for("admin.person_detail", person_id=person.id))


# --------------------------------------------------------------------------- invitations
@bp.get("/invitations/")
@allow(ADMIN)
def invitations_list():
    state = request.args.get("state") or None
    query = request.args.get("q", "")[:100]
    now = _now()
    rows, total = invitations.list_invitations(db.session, now=now, state=state, query=query, page=_page())
    return render_template("admin/invitations.html", invitations=rows, total=total, state=state, query=query,
                           page=_page(), page_size=invitations.PAGE_SIZE, now=now, states=STATE_LABELS,
                           counts=invitations.count_by_state(db.session, now=now), confirm_form=ConfirmForm())


@bp.post("/invitations/<int:invitation_id>/revoke")
@allow(ADMIN)
def revoke_invitation(invitation_id: int):
    invitation = _load_invitation(invitation_id)
    if ConfirmForm().validate_on_submit():
        try:
            invitations.revoke_invitation(db.session, invitation.id, actor_id=current_user.id, now=_now(),
                                          ip_address=request.remote_addr)
        except DomainError as error:
            flash(message_for(error.code), "danger")
        else:
            flash(message_for("invitation_revoked_done", name=invitation.person.full_name), "success")
    return redirect(_back(invitation))


@bp.post("/invitations/<int:invitation_id>/reissue")
@allow(ADMIN)
def reissue_invitation(invitation_id: int):
    invitation = _load_invitation(invitation_id)
    if ConfirmForm().validate_on_submit():
        try:
            issued = invitations.reissue_invitation(
                db.session, invitation.id, actor_id=current_user.id, now=_now(), pepper=code_pepper(),
                valid_days=current_app.config["INVITATION_DAYS"], ip_address=request.remote_addr)
        except DomainError as error:
            flash(message_for(error.code), "danger")
        else:
            _hand_over(invitation.person, issued)
            return redirect(url_for("admin.person_detail", person_id=invitation.person_id))
    return redirect(_back(invitation))


def _load_invitation(invitation_id: int):
    try:
        return invitations.get_invitation(db.session, invitation_id)
    except NotFound:
        abort(404)


def _back(invitation) -> str:
    if request.form.get("back") == "list":
        return url_for("admin.invitations_list")
    return url_for("admin.person_detail", person_id=invitation.person_id)
