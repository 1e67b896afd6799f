"""The orders blueprint: place an order, pay it, see it, cancel it."""
from flask import Blueprint

bp = Blueprint("orders", __name__)


@bp.record_once
def _wire_payment_provider(state) -> None:
    from app.payments_provider import init_payment_provider

    init_payment_provider(state.app)


from app.orders import routes  # noqa: F401
