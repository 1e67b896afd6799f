"""The tickets blueprint."""
from flask import Blueprint

bp = Blueprint("tickets", __name__)


@bp.record_once
def _check_signing_key(state) -> None:
    from app.tickets.keys import check_signing_key

    check_signing_key(state.app)


@bp.record_once
def _forget_cached_scanner_tokens_on_writes(_state) -> None:
    from app.tickets.token_cache import install

    install()


@bp.record_once
def _drop_cookies_of_scanner_app_calls(state) -> None:
    from app.tickets.bearer import CookielessBearerCalls

    state.app.wsgi_app = CookielessBearerCalls(state.app.wsgi_app, f"{state.url_prefix or ''}/api/")


from app.tickets import routes  # noqa: F401
