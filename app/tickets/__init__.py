"""The tickets blueprint."""
from flask import Blueprint

bp = Blueprint("tickets", __name__)

from app.tickets import routes  # noqa: F401
