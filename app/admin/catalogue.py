"""Admin: the catalogue — events and their offers: create, edit, publish, unpublish, delete.

The rules live in app/services/catalogue_admin.py; a refused change shows the service's
message next to the field (or at the top of the page) and changes nothing. Deleting asks
for a confirmation first, and is refused once something was sold.
"""
from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, redirect, render_template, request, url_for
from wtforms import Form

from app.access import ADMIN, allow
from app.admin import bp
from app.admin.catalogue_forms import (
    ConfirmForm,
    EventForm,
    OfferForm,
    utc_to_paris_input,
)
from app.extensions import db
from app.flashes import flash
from app.messages import message_for
from app.services import catalogue_admin
from app.services.errors import DomainError, NotFound

PAGE_SIZE = 50


def _now() -> datetime:
    return datetime.now(UTC)


def _event(event_id: int):
    try:
        return catalogue_admin.get_event(db.session, event_id)
    except NotFound:
        abort(404)


def _offer(event_id: int, offer_id: int):
    try:
        return catalogue_admin.get_offer(db.session, event_id, offer_id)
    except NotFound:
        abort(404)


def show_error(form: Form, error: DomainError) -> None:
    """The service's message beside the field it names, or above the form."""
    db.session.rollback()
    message = message_for(error.code, **error.params)
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, message]
    else:
        form.form_errors.append(message)


# --------------------------------------------------------------------------- events
@bp.get("/events/")
@allow(ADMIN)
def events():
    page = request.args.get("page", 1, type=int) or 1
    pagination = db.paginate(catalogue_admin.events_query(), page=page, per_page=PAGE_SIZE, error_out=False)
    return render_template("admin/events.html", pagination=pagination, page=page, page_size=PAGE_SIZE)


@bp.route("/events/new", methods=["GET", "POST"])
@allow(ADMIN)
def event_new():
    form = EventForm()
    if form.validate_on_submit():
        try:
            event = catalogue_admin.create_event(db.session, form.to_input(), now=_now())
        except DomainError as error:
            show_error(form, error)
        else:
            flash(message_for("event_created", title=event.title), "success")
            return redirect(url_for("admin.event_detail", event_id=event.id))
    return render_template("admin/event_form.html", form=form, event=None)


@bp.get("/events/<int:event_id>")
@allow(ADMIN)
def event_detail(event_id: int):
    event = _event(event_id)
    return render_template("admin/event.html", event=event, confirm=ConfirmForm(),
                           sales=catalogue_admin.offer_sales(db.session, event.id))


@bp.route("/events/<int:event_id>/edit", methods=["GET", "POST"])
@allow(ADMIN)
def event_edit(event_id: int):
    event = _event(event_id)
    form = EventForm(obj=event if request.method == "GET" else None)
    if request.method == "GET":
        form.starts_at.data = utc_to_paris_input(event.starts_at)
    if form.validate_on_submit():
        try:
            catalogue_admin.update_event(db.session, event.id, form.to_input(), now=_now())
        except DomainError as error:
            show_error(form, error)
        else:
            flash(message_for("event_saved"), "success")
            return redirect(url_for("admin.event_detail", event_id=event.id))
    return render_template("admin/event_form.html", form=form, event=event)


def _set_event_published(event_id: int, published: bool):
    _event(event_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            event = catalogue_admin.set_event_published(db.session, event_id, published)
        except DomainError as error:
            db.session.rollback()
            flash(message_for(error.code, **error.params), "danger")
        else:
            flash(message_for("event_published" if published else "event_unpublished", title=event.title),
                  "success")
    return redirect(url_for("admin.event_detail", event_id=event_id))


@bp.post("/events/<int:event_id>/publish")
@allow(ADMIN)
def event_publish(event_id: int):
    return _set_event_published(event_id, True)


@bp.post("/events/<int:event_id>/unpublish")
@allow(ADMIN)
def event_unpublish(event_id: int):
    return _set_event_published(event_id, False)


@bp.route("/events/<int:event_id>/delete", methods=["GET", "POST"])
@allow(ADMIN)
def event_delete(event_id: int):
    event = _event(event_id)
    has_sales = catalogue_admin.event_has_sales(db.session, event.id)
    form = ConfirmForm()
    if form.validate_on_submit():
        title = event.title
        try:
            catalogue_admin.delete_event(db.session, event.id)
        except DomainError as error:
            db.session.rollback()
            flash(message_for(error.code, **error.params), "danger")
            return redirect(url_for("admin.event_detail", event_id=event.id))
        flash(message_for("event_deleted", title=title), "success")
        return redirect(url_for("admin.events"))
    return render_template("admin/event_delete.html", event=event, form=form, has_sales=has_sales)


# --------------------------------------------------------------------------- offers
@bp.route("/events/<int:event_id>/offers/new", methods=["GET", "POST"])
@allow(ADMIN)
def offer_new(event_id: int):
    event = _event(event_id)
    form = OfferForm()
    if form.validate_on_submit():
        try:
            offer = catalogue_admin.create_offer(db.session, event.id, form.to_input())
        except DomainError as error:
            show_error(form, error)
        else:
            flash(message_for("offer_created", name=offer.name), "success")
            return redirect(url_for("admin.event_detail", event_id=event.id))
    return render_template("admin/offer_form.html", form=form, event=event, offer=None)


@bp.route("/events/<int:event_id>/offers/<int:offer_id>/edit", methods=["GET", "POST"])
@allow(ADMIN)
def offer_edit(event_id: int, offer_id: int):
    offer = _offer(event_id, offer_id)
    form = OfferForm()
    if request.method == "GET":
        form.kind.data, form.name.data, form.persons.data = offer.kind, offer.name, offer.persons
        form.price.data = catalogue_admin.cents_to_decimal(offer.price_cents)
    if form.validate_on_submit():
        try:
            catalogue_admin.update_offer(db.session, event_id, offer.id, form.to_input())
        except DomainError as error:
            show_error(form, error)
        else:
            flash(message_for("offer_saved"), "success")
            return redirect(url_for("admin.event_detail", event_id=event_id))
    return render_template("admin/offer_form.html", form=form, event=offer.event,
                           offer=offer)


def _set_offer_published(event_id: int, offer_id: int, published: bool):
    offer = _offer(event_id, offer_id)
    if ConfirmForm().validate_on_submit():
        catalogue_admin.set_offer_published(db.session, event_id, offer.id, published)
        flash(message_for("offer_published" if published else "offer_unpublished", name=offer.name), "success")
    return redirect(url_for("admin.event_detail", event_id=event_id))


@bp.post("/events/<int:event_id>/offers/<int:offer_id>/publish")
@allow(ADMIN)
def offer_publish(event_id: int, offer_id: int):
    return _set_offer_published(event_id, offer_id, True)


@bp.post("/events/<int:event_id>/offers/<int:offer_id>/unpublish")
@allow(ADMIN)
def offer_unpublish(event_id: int, offer_id: int):
    return _set_offer_published(event_id, offer_id, False)


@bp.route("/events/<int:event_id>/offers/<int:offer_id>/delete", methods=["GET", "POST"])
@allow(ADMIN)
def offer_delete(event_id: int, offer_id: int):
    offer = _offer(event_id, offer_id)
    has_sales = catalogue_admin.offer_has_sales(db.session, offer.id)
    form = ConfirmForm()
    if form.validate_on_submit():
        name = offer.name
        try:
            catalogue_admin.delete_offer(db.session, event_id, offer.id)
        except DomainError as error:
            db.session.rollback()
            flash(message_for(error.code, **error.params), "danger")
        else:
            flash(message_for("offer_deleted", name=name), "success")
        return redirect(url_for("admin.event_detail", event_id=event_id))
    return render_template("admin/offer_delete.html", offer=offer, event=offer.event, form=form, has_sales=has_sales)
