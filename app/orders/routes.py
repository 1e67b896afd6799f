"""HTTP views of the orders blueprint."""
from app.orders import bp  # noqa: F401
