"""All models, imported here so Alembic and `db.create_all()` see every table."""
from app.models.audit import AuditEvent
from app.models.email_job import EmailJob, EmailJobStatus
from app.models.event import PERSONS_BY_KIND, Event, Offer, OfferKind
from app.models.order import CartItem, Order, OrderLine, OrderStatus, Payment
from app.models.person import Invitation, Person
from app.models.ticket import CheckIn, ScannerToken, Ticket
from app.models.user import PasswordReset, RecoveryCode, Role, User, UserSession

__all__ = [
    "PERSONS_BY_KIND",
    "AuditEvent",
    "CartItem",
    "CheckIn",
    "EmailJob",
    "EmailJobStatus",
    "Event",
    "Invitation",
    "Offer",
    "OfferKind",
    "Order",
    "OrderLine",
    "OrderStatus",
    "PasswordReset",
    "Payment",
    "Person",
    "RecoveryCode",
    "Role",
    "ScannerToken",
    "Ticket",
    "User",
    "UserSession",
]
