"""The account blueprint."""
from flask import Blueprint

bp = Blueprint("account", __name__)

from app.account import routes  # noqa: E402,F401
from app.account import two_factor  # noqa: E402,F401
