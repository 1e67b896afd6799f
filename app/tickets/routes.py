"""HTTP views of the tickets blueprint."""
from app.tickets import bp  # noqa: F401
