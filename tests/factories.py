"""factory_boy factories for the models, writing through `db.session`."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache

import factory
from factory.alchemy import SQLAlchemyModelFactory

from app.extensions import bcrypt, db
from app.models import Event, Offer, Role, User
from app.services.signing import make_user_key

DEFAULT_PASSWORD = "Correct-Horse-Battery-42"


@lru_cache(maxsize=8)
def password_hash(password: str) -> str:
    return bcrypt.generate_password_hash(password).decode()


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"


class UserFactory(BaseFactory):
    class Meta:
        model = User

    class Params:
        password = DEFAULT_PASSWORD

    username = factory.Sequence(lambda n: f"user{n}")
    username_key = factory.LazyAttribute(lambda o: o.username.lower())
    email = factory.Sequence(lambda n: f"user{n}@example.test")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password_hash = factory.LazyAttribute(lambda o: password_hash(o.password))
    user_key = factory.LazyFunction(make_user_key)
    role = Role.CUSTOMER.value
    email_verified_at = factory.LazyFunction(lambda: datetime.now(timezone.utc))


class EventFactory(BaseFactory):
    class Meta:
        model = Event

    title = factory.Sequence(lambda n: f"Athletics — Session {n}")
    slug = factory.Sequence(lambda n: f"athletics-session-{n}")
    sport = "Athletics"
    venue = "Stade de France"
    starts_at = factory.LazyFunction(lambda: datetime.now(timezone.utc) + timedelta(days=30))
    capacity = 100
    seats_taken = 0
    description = "A test session."
    published = True


class OfferFactory(BaseFactory):
    class Meta:
        model = Offer

    event = factory.SubFactory(EventFactory)
    kind = "solo"
    name = "Solo"
    persons = 1
    price_cents = 5000
    published = True
