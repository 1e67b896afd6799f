"""HTTP views of the admin blueprint."""
from app.admin import bp  # noqa: F401
