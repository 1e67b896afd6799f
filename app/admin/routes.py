"""The admin landing page (/admin/): counts and links to every admin area that exists."""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from app.access import ADMIN, allow
from app.admin import bp
from app.admin.dashboard import render_dashboard
from app.extensions import db
from app.models import Event, Order, OrderStatus
from app.services import invitations, people, users_admin

# (endpoint, label, what it is for): shown only when the endpoint is installed.
AREAS = [
    ("admin.people_list", "People", "The staff directory; invite staff and administrators."),
    ("admin.invitations_list", "Invitations", "Codes that are pending, used, expired or revoked."),
    ("admin.users", "Users", "Search accounts, change roles, disable, revoke sessions."),
    ("admin.events", "Events and offers", "The catalogue."),
    ("admin.orders", "Orders", "Search, view and cancel orders."),
    ("admin.audit_log", "Audit log", "Security and money events."),
    ("tickets.scan", "Check-in", "The gate scan page."),
]


@bp.get("/")
@allow(ADMIN)
def dashboard():
    now = datetime.now(UTC)
    counts = {
        "users": users_admin.count_by_role(db.session),
        "people": people.count_people(db.session),
        "invitations": invitations.count_by_state(db.session, now=now),
        "events": db.session.scalar(sa.select(sa.func.count(Event.id))),
        "paid_orders": db.session.scalar(
            sa.select(sa.func.count(Order.id)).where(Order.status == OrderStatus.PAID.value)),
    }
    # Sales charts and tables (issue 8) above the accounts counts and the areas.
    return render_dashboard(counts=counts, areas=AREAS)
