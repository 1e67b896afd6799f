"""The admin landing page (/admin/): counts and links to every admin area that exists."""
from __future__ import annotations

from app.access import ADMIN, allow
from app.admin import bp
from app.admin.dashboard import render_dashboard

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
    # Sales charts and tables (issue 8), the accounts counts (all cached) and the areas.
    return render_dashboard(areas=AREAS)
