"""The admin blueprint."""
from flask import Blueprint

bp = Blueprint("admin", __name__)

from app.admin import routes  # noqa: E402,F401
from app.admin import people, users  # noqa: E402,F401
from app.admin import two_factor  # noqa: E402,F401
from app.admin import user_keys  # noqa: E402,F401
from app.admin import audit, catalogue, dashboard, exports, orders  # noqa: E402,F401
