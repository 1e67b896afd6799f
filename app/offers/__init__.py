"""The offers blueprint: the catalogue of events and their offers (cached, see offers/cache.py)."""
from flask import Blueprint

bp = Blueprint("offers", __name__)


@bp.record_once
def _hook_cache_invalidation(state) -> None:
    from app.offers.cache import install_seats_bump, register_invalidation_hooks

    register_invalidation_hooks()
    install_seats_bump(state.app)


from app.offers import routes  # noqa: F401
