"""HTTP views of the invitations blueprint."""
from app.invitations import bp  # noqa: F401
