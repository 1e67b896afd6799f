"""The admin blueprint."""
from flask import Blueprint

bp = Blueprint("admin", __name__)

# Each module registers its views on `bp`.
from app.admin import (  # noqa: F401
    audit,
    catalogue,
    dashboard,
    exports,
    orders,
    people,
    routes,
    two_factor,
    user_keys,
    users,
)
