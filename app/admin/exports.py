"""Admin: CSV downloads of orders and check-ins, streamed while the database is read.

Filters come from the query string (the dashboard's filters: event, date range; and an order
status); cells are neutralised against spreadsheet formula injection in app/services/exports.py.
"""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, redirect, request, stream_with_context, url_for

from app.access import ADMIN, allow
from app.admin import bp
from app.admin.dashboard import filters_from_request
from app.extensions import db
from app.flashes import flash
from app.messages import message_for
from app.models import OrderStatus
from app.services import exports


def _csv_response(kind: str, header: list[str], rows, filters) -> Response:
    filename = exports.export_filename(kind, filters, datetime.now(UTC))
    response = Response(stream_with_context(exports.csv_chunks(header, rows)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _bad_filters():
    flash(message_for("export_filters_invalid"), "danger")
    return redirect(url_for("admin.dashboard", **request.args))


@bp.get("/exports/orders.csv")
@allow(ADMIN)
def export_orders():
    _form, filters, valid = filters_from_request()
    status = request.args.get("status") or None
    if not valid or (status and status not in {s.value for s in OrderStatus}):
        return _bad_filters()
    return _csv_response("orders", exports.ORDER_HEADER, exports.order_rows(db.session, filters, status=status),
                         filters)


@bp.get("/exports/check-ins.csv")
@allow(ADMIN)
def export_check_ins():
    _form, filters, valid = filters_from_request()
    if not valid:
        return _bad_filters()
    return _csv_response("check-ins", exports.CHECK_IN_HEADER, exports.check_in_rows(db.session, filters), filters)
