"""The invitations blueprint."""
from flask import Blueprint

bp = Blueprint("invitations", __name__)

from app.invitations import routes  # noqa: F401
