"""HTTP views of the offers blueprint."""
from app.offers import bp  # noqa: F401
