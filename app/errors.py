"""Friendly error pages (JSON for JSON clients); never a traceback or SQL."""
from __future__ import annotations

from flask import Flask, current_app, jsonify, make_response, render_template
from werkzeug.exceptions import HTTPException, InternalServerError

from app.access import wants_json
from app.extensions import db
from app.messages import ERROR_PAGES


def render_error(status: int):
    title, text = ERROR_PAGES.get(status, ERROR_PAGES[500])
    if wants_json():
        return make_response(jsonify(error=title, message=text, status=status), status)
    return make_response(render_template("errors/error.html", status=status, title=title, text=text), status)


def handle_http_exception(error: HTTPException):
    response = render_error(error.code or 500)
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def handle_unexpected(error: Exception):
    """The 500 handler: roll back so the failed transaction cannot leak into the next request."""
    db.session.rollback()
    if isinstance(error, HTTPException) and not isinstance(error, InternalServerError):
        return handle_http_exception(error)
    current_app.logger.exception("unhandled error")
    return render_error(500)


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
