"""The account blueprint."""
from flask import Blueprint

bp = Blueprint("account", __name__)

from app.account import (
    routes,  # noqa: F401
    two_factor,  # noqa: F401
)
