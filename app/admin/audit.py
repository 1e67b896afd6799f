"""Admin: the audit log — security and money events, filtered by type, user and date, paginated."""
from __future__ import annotations

from flask import render_template, request
from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from app.access import ADMIN, allow
from app.admin import bp
from app.extensions import db
from app.services.audit import AUDIT_TYPES
from app.services.audit_log import AuditFilters, audit_query

PAGE_SIZE = 50


def type_label(audit_type: str) -> str:
    return audit_type.replace("2fa", "2FA").replace("_", " ").capitalize()


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False  # GET filters change nothing

    type = SelectField("Type", choices=[SelectChoice("", "All types")] + [SelectChoice(t, type_label(t)) for t in AUDIT_TYPES],
                       validators=[Optional()])
    user = StringField("User (email, username or #id)", validators=[Optional(), Length(max=100)])
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])

    def validate_date_to(self, field) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date must be on or after the start date.")


@bp.get("/audit/")
@allow(ADMIN)
def audit_log():
    form = AuditFilterForm(formdata=request.args)
    filters = AuditFilters()
    if request.args and form.validate():
        filters = AuditFilters(type=form.type.data or None, user=form.user.data or None,
                               date_from=form.date_from.data, date_to=form.date_to.data)
    page = request.args.get("page", 1, type=int) or 1
    pagination = db.paginate(audit_query(filters), page=page, per_page=PAGE_SIZE, error_out=False)
    args = {key: value for key, value in request.args.items() if key != "page" and value}
    return render_template("admin/audit.html", form=form, pagination=pagination, page=page, page_size=PAGE_SIZE,
                           args=args, type_label=type_label)
