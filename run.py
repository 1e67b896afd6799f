"""WSGI entry point (`gunicorn run:app`) and the `flask` CLI's app."""
from app import create_app

app = create_app()
