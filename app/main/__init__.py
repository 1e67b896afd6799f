"""Home page and health check."""
from flask import Blueprint

bp = Blueprint("main", __name__)

from app.main import routes  # noqa: F401
