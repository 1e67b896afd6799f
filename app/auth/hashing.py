"""bcrypt through Flask-Bcrypt, shaped as the `PasswordHasher` the account services take."""
from __future__ import annotations

from functools import lru_cache

from flask import current_app

from app.extensions import bcrypt
from app.services.passwords import BCRYPT_MAX_BYTES


@lru_cache(maxsize=4)
def _dummy_hash(rounds: int) -> str:
    return bcrypt.generate_password_hash("guichet-dummy-password", rounds).decode()


class FlaskBcryptHasher:
    def hash(self, password: str) -> str:
        if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:  # refused by the policy before this
            raise ValueError("password longer than bcrypt's 72 bytes")
        return bcrypt.generate_password_hash(password).decode()

    def check(self, password_hash: str, password: str) -> bool:
        if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
            bcrypt.check_password_hash(password_hash, "x")  # same cost as a real check
            return False
        return bcrypt.check_password_hash(password_hash, password)

    def check_dummy(self, password: str) -> bool:
        """Spend the time of a real check when there is no account (same timing either way)."""
        self.check(_dummy_hash(int(current_app.config["BCRYPT_LOG_ROUNDS"])), password)
        return False


hasher = FlaskBcryptHasher()
