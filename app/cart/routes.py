"""HTTP views of the cart blueprint."""
from app.cart import bp  # noqa: F401
