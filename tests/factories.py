"""factory_boy factories for the models, writing through `db.session`."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

import factory
from factory.alchemy import SQLAlchemyModelFactory

from app.extensions import bcrypt, db
from app.models import Event, Invitation, Offer, Person, Role, User
from app.services.codes import hash_code, new_invitation_code
from app.services.signing import make_user_key

DEFAULT_PASSWORD = "Correct-Horse-Battery-42"


@lru_cache(maxsize=8)
def password_hash(password: str) -> str:
    return bcrypt.generate_password_hash(password).decode()


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session
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
    email_verified_at = factory.LazyFunction(lambda: datetime.now(UTC))


class EventFactory(BaseFactory):
    class Meta:
        model = Event

    title = factory.Sequence(lambda n: f"Athletics — Session {n}")
    slug = factory.Sequence(lambda n: f"athletics-session-{n}")
    sport = "Athletics"
    venue = "Stade de France"
    starts_at = factory.LazyFunction(lambda: datetime.now(UTC) + timedelta(days=30))
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


# --------------------------------------------------------------------------- people and invitations (issue 5)
def code_pepper():
    from flask import current_app

    return current_app.config.get("CODE_PEPPER") or current_app.config["SECRET_KEY"]


class PersonFactory(BaseFactory):
    class Meta:
        model = Person

    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    phone1 = factory.Sequence(lambda n: f"+336{12000000 + n:08d}")
    phone2 = None
    email = factory.Sequence(lambda n: f"person{n}@example.test")
    intended_role = Role.STAFF.value


class InvitationFactory(BaseFactory):
    """`InvitationFactory(code="GCH-…")` or a random code; the plaintext stays on the instance
    as `invitation.code` for the test (the database only gets its hash)."""

    class Meta:
        model = Invitation

    person = factory.SubFactory(PersonFactory)
    code = factory.LazyFunction(new_invitation_code)
    code_hash = factory.LazyAttribute(lambda o: hash_code(o.code, pepper=code_pepper()))
    created_at = factory.LazyFunction(lambda: datetime.now(UTC))
    expires_at = factory.LazyAttribute(lambda o: o.created_at + timedelta(days=7))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        code = kwargs.pop("code")
        invitation = super()._create(model_class, *args, **kwargs)
        invitation.code = code  # plain attribute, not a column
        return invitation


# --------------------------------------------------------------------------- paid orders and tickets (issue 7)
def make_paid_order(user, *lines, now=None):
    """A paid order with its tickets issued, without going through the shop.

    `lines` are (offer, quantity) pairs; seats are taken on the events as a sale would.
    """
    import secrets
    from datetime import UTC

    from app.models import Order, OrderLine, OrderStatus
    from app.services.codes import new_order_code
    from app.services.tickets import issue_tickets

    now = now or datetime.now(UTC)
    order = Order(code=new_order_code(), user=user, status=OrderStatus.PAID.value,
                  total_cents=sum(offer.price_cents * quantity for offer, quantity in lines),
                  created_at=now, expires_at=now + timedelta(minutes=15), paid_at=now,
                  idempotency_key=secrets.token_hex(16))
    for offer, quantity in lines:
        order.lines.append(OrderLine(offer=offer, event=offer.event, quantity=quantity, persons=offer.persons,
                                     unit_price_cents=offer.price_cents))
        offer.event.seats_taken += quantity * offer.persons
    db.session.add(order)
    db.session.flush()
    issue_tickets(db.session, order, now=now)
    db.session.commit()
    return order
