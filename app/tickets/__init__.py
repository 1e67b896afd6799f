"""The tickets blueprint."""
from flask import Blueprint

bp = Blueprint("tickets", __name__)


@bp.record_once
def _check_signing_key(state) -> None:
    from app.tickets.keys import check_signing_key

    check_signing_key(state.app)


from app.tickets import routes  # noqa: F401
