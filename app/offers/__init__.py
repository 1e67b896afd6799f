"""The offers blueprint."""
from flask import Blueprint

bp = Blueprint("offers", __name__)

from app.offers import routes  # noqa: E402,F401
