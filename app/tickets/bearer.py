"""Scanner-app calls (an `Authorization` header on /tickets/api/…) are authenticated by that header
alone, so their cookies are dropped before Flask sees the request: no server-side session is
loaded or saved, no Flask-Login loader runs, and no cookie is set in the answer. Browser calls of
the same API (a staff session with the CSRF header, no Authorization header) keep their cookies.
"""
from __future__ import annotations


class CookielessBearerCalls:
    """WSGI middleware; the session is opened before any view or hook runs, so it acts earlier."""

    def __init__(self, wsgi_app, path_prefix: str):
        self.wsgi_app = wsgi_app
        self.path_prefix = path_prefix

    def __call__(self, environ, start_response):
        if "HTTP_AUTHORIZATION" in environ and environ.get("PATH_INFO", "").startswith(self.path_prefix):
            environ.pop("HTTP_COOKIE", None)
        return self.wsgi_app(environ, start_response)
