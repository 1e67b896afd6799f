"""Ticket services: who may see a ticket, user key rotation, scanner tokens, the app's signing key."""
from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, ScannerToken, Ticket, User
from app.services.errors import DomainError, NotFound
from app.services.scanner_tokens import (
    TOUCH_EVERY,
    create_scanner_token,
    hash_token,
    revoke_scanner_token,
    scanner_tokens_of,
    staff_id_for_token,
    token_cache_key,
    token_cache_keys,
)
from app.services.signing import (
    double_key_digest,
    generate_private_key_pem,
    load_private_key,
    private_key_seed_b64,
    public_key_pem,
)
from app.services.tickets import (
    rotate_user_key,
    ticket_for_viewer,
    tickets_of_order,
    tickets_of_user,
    tickets_to_reissue,
)
from app.tickets.keys import SigningKeyMissing, ticket_keys
from tests.checkers import sql_statements
from tests.factories import OfferFactory, UserFactory, make_paid_order

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_SECRETS = {"REQUIRED_SECRETS": ("SECRET_KEY", "TICKET_SIGNING_KEY"),
                      "SECRET_KEY": "a-real-secret-for-this-test-only"}


def tickets_of(order):
    return db.session.scalars(sa.select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id)).all()


@pytest.fixture
def customer(app):
    return UserFactory(first_name="Ana", last_name="Lopez")


@pytest.fixture
def future_offer(app):
    return OfferFactory(event__starts_at=NOW + timedelta(days=5))


# --------------------------------------------------------------------------- issuing and reading
def test_one_ticket_per_unit_with_its_own_purchase_key(customer, future_offer):
    duo = OfferFactory(kind="duo", name="Duo", persons=2, event=future_offer.event)
    order = make_paid_order(customer, (future_offer, 2), (duo, 1), now=NOW)
    tickets = tickets_of(order)
    assert [t.persons for t in tickets] == [1, 1, 2]
    assert [t.number for t in tickets] == [f"{order.code}-01", f"{order.code}-02", f"{order.code}-03"]
    assert len({t.purchase_key for t in tickets}) == 3
    for ticket in tickets:
        assert ticket.key_digest == double_key_digest(customer.user_key, ticket.purchase_key)
        assert customer.user_key not in (ticket.purchase_key, ticket.key_digest)
        assert ticket.holder_name == "Ana Lopez"


def test_ticket_for_viewer_owner_admin_and_others(customer, future_offer):
    ticket = tickets_of(make_paid_order(customer, (future_offer, 1), now=NOW))[0]
    assert ticket_for_viewer(db.session, ticket.id, user_id=customer.id, is_admin=False) == ticket
    stranger = UserFactory()
    with pytest.raises(NotFound):
        ticket_for_viewer(db.session, ticket.id, user_id=stranger.id, is_admin=False)
    assert ticket_for_viewer(db.session, ticket.id, user_id=stranger.id, is_admin=True) == ticket
    with pytest.raises(NotFound):
        ticket_for_viewer(db.session, 123456, user_id=customer.id, is_admin=True)
    ticket.voided_at = NOW
    db.session.commit()
    with pytest.raises(NotFound):
        ticket_for_viewer(db.session, ticket.id, user_id=customer.id, is_admin=False)


def test_tickets_of_user_soonest_event_first_and_tickets_of_order_skip_void(customer, future_offer):
    later = OfferFactory(event__starts_at=NOW + timedelta(days=50))
    first_order = make_paid_order(customer, (later, 1), now=NOW)
    second_order = make_paid_order(customer, (future_offer, 2), now=NOW)
    make_paid_order(UserFactory(), (future_offer, 1), now=NOW)
    listed = tickets_of_user(db.session, customer.id)
    assert [t.order_id for t in listed] == [second_order.id, second_order.id, first_order.id]
    void = tickets_of(second_order)[0]
    void.voided_at = NOW
    db.session.commit()
    assert [t.id for t in tickets_of_order(db.session, second_order.id)] == [tickets_of(second_order)[1].id]


# --------------------------------------------------------------------------- rotation
def test_rotation_reissues_only_usable_future_tickets(customer, future_offer):
    past_offer = OfferFactory(event__starts_at=NOW - timedelta(hours=1))
    order = make_paid_order(customer, (future_offer, 3), now=NOW - timedelta(days=1))
    past = tickets_of(make_paid_order(customer, (past_offer, 1), now=NOW - timedelta(days=2)))[0]
    usable, used, void = tickets_of(order)
    used.checked_in_at = NOW
    void.voided_at = NOW
    other_ticket = tickets_of(make_paid_order(UserFactory(), (future_offer, 1), now=NOW))[0]
    db.session.commit()
    before = {t.id: (t.purchase_key, t.key_digest) for t in (usable, used, void, past, other_ticket)}
    old_user_key = customer.user_key
    assert [t.id for t in tickets_to_reissue(db.session, customer.id, now=NOW)] == [usable.id]

    admin = UserFactory(role="admin")
    rotation = rotate_user_key(db.session, customer, actor_id=admin.id, now=NOW, ip_address="192.0.2.7")

    assert rotation.reissued_ticket_ids == [usable.id]
    db.session.expire_all()
    assert customer.user_key != old_user_key and len(customer.user_key) == 32
    fresh = db.session.get(Ticket, usable.id)
    assert fresh.purchase_key != before[usable.id][0]
    assert fresh.key_digest == double_key_digest(customer.user_key, fresh.purchase_key)
    assert fresh.issued_at == NOW and fresh.number == usable.number
    for ticket in (used, void, past, other_ticket):
        row = db.session.get(Ticket, ticket.id)
        assert (row.purchase_key, row.key_digest) == before[ticket.id]
    audit = db.session.scalars(sa.select(AuditEvent)).one()
    assert (audit.type, audit.actor_id, audit.subject_user_id, audit.ip_address) == (
        "user_key_rotated", admin.id, customer.id, "192.0.2.7")
    assert audit.details == {"tickets_reissued": 1}
    assert old_user_key.hex() not in str(audit.details) and customer.user_key.hex() not in str(audit.details)


def test_rotation_without_tickets_still_changes_the_key(customer):
    old = customer.user_key
    assert rotate_user_key(db.session, customer, actor_id=None, now=NOW).reissued_ticket_ids == []
    assert db.session.get(type(customer), customer.id).user_key != old


# --------------------------------------------------------------------------- scanner tokens
@pytest.fixture
def staff(app):
    return UserFactory(role="staff")


def new_token(user, **overrides):
    options = {"name": "Gate 1", "now": NOW, "valid_days": 30, "max_tokens": 3} | overrides
    return create_scanner_token(db.session, user, **options)


def test_token_is_stored_hashed_and_resolves_to_its_staff_member(staff):
    row, text = new_token(staff, name="  Gate   2 phone ")
    assert text.startswith("gchs_") and len(text) == 48
    assert row.token_hash == hash_token(text) and row.hint == text[:10] and row.name == "Gate 2 phone"
    assert row.expires_at == NOW + timedelta(days=30)
    assert staff_id_for_token(db.session, text, now=NOW + timedelta(days=1)) == staff.id
    assert db.session.get(ScannerToken, row.id).last_used_at == NOW + timedelta(days=1)
    audit = db.session.scalars(sa.select(AuditEvent)).one()
    assert audit.type == "scanner_token_created" and text not in str(audit.details)


def test_token_refusals(staff):
    row, text = new_token(staff)
    assert staff_id_for_token(db.session, text, now=NOW + timedelta(days=30)) is None  # expired
    for bogus in (None, "", "gchs_short", text + "x", text.upper(), "gchs_" + "A" * 43):
        assert staff_id_for_token(db.session, bogus, now=NOW) is None
    revoke_scanner_token(db.session, row.id, user_id=staff.id, now=NOW)
    assert staff_id_for_token(db.session, text, now=NOW) is None
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id))
                             .where(AuditEvent.type == "scanner_token_revoked")) == 1


def test_tokens_only_for_active_staff_and_within_the_limit(staff, customer):
    with pytest.raises(DomainError) as error:
        new_token(customer)
    assert error.value.code == "scanner_token_staff_only"
    with pytest.raises(DomainError) as error:
        new_token(staff, name="   ")
    assert (error.value.code, error.value.field) == ("scanner_token_name_required", "name")
    for _ in range(3):
        new_token(staff)
    with pytest.raises(DomainError) as error:
        new_token(staff)
    assert error.value.code == "scanner_token_limit" and error.value.params == {"limit": 3}
    assert len(scanner_tokens_of(db.session, staff.id)) == 3


def test_revoking_someone_elses_token_is_not_found(staff):
    row, _ = new_token(staff)
    with pytest.raises(NotFound):
        revoke_scanner_token(db.session, row.id, user_id=UserFactory(role="staff").id, now=NOW)


class CountingCache(dict):
    """A dict with the CacheLike methods; counts the reads."""

    def __init__(self):
        super().__init__()
        self.reads = 0

    def get(self, key):
        self.reads += 1
        return super().get(key)

    def set(self, key, value, timeout=None):
        self[key] = value


def statements_during(action) -> list[str]:
    with sql_statements(db.engine) as seen:
        action()
    return [statement.split()[0].upper() for statement in seen if statement != "COMMIT"]


def test_a_cached_token_needs_no_query_and_is_touched_every_ten_minutes(staff):
    row, text = new_token(staff)
    token_cache, staff_id = CountingCache(), staff.id

    def resolve(when):
        return staff_id_for_token(db.session, text, now=when, cache=token_cache)

    assert statements_during(lambda: resolve(NOW)) == ["SELECT", "UPDATE"]  # lookup, last_used_at
    assert token_cache[token_cache_key(row.token_hash)]["user_id"] == staff_id
    assert statements_during(lambda: resolve(NOW + TOUCH_EVERY - timedelta(seconds=1))) == []
    assert statements_during(lambda: resolve(NOW + TOUCH_EVERY)) == ["UPDATE"]
    assert token_cache[token_cache_key(row.token_hash)]["last_used_at"] == NOW + TOUCH_EVERY
    assert db.session.get(ScannerToken, row.id).last_used_at == NOW + TOUCH_EVERY
    assert resolve(NOW + timedelta(minutes=11)) == staff_id


def test_refused_tokens_are_not_cached(staff):
    row, text = new_token(staff)
    revoke_scanner_token(db.session, row.id, user_id=staff.id, now=NOW)
    token_cache = CountingCache()
    for _ in range(2):
        assert staff_id_for_token(db.session, text, now=NOW, cache=token_cache) is None
    assert token_cache == {} and token_cache.reads == 2
    assert staff_id_for_token(db.session, "gchs_short", now=NOW, cache=token_cache) is None
    assert token_cache.reads == 2  # a malformed token never reaches the cache


def test_writes_that_stop_a_token_delete_its_cached_state(staff):
    """The session listener: revoke (service), role and disabled changes, deleting the owner."""
    from app.extensions import cache

    rows = [new_token(staff, name=f"Gate {n}") for n in range(3)]
    other = UserFactory(role="staff")
    _, other_text = new_token(other)

    def cache_all():
        for _, text in rows + [(None, other_text)]:
            assert staff_id_for_token(db.session, text, now=NOW, cache=cache) is not None

    def cached(text):
        return cache.get(token_cache_key(hash_token(text))) is not None

    cache_all()
    revoke_scanner_token(db.session, rows[0][0].id, user_id=staff.id, now=NOW)
    assert [cached(text) for _, text in rows] == [False, True, True] and cached(other_text)

    staff.first_name = "Renamed"  # does not stop a token
    db.session.commit()
    assert cached(rows[1][1])
    staff.role = "admin"  # still staff, but a role change: forgotten and read again
    db.session.commit()
    assert not cached(rows[1][1]) and not cached(rows[2][1]) and cached(other_text)

    for _, text in rows[1:]:
        staff_id_for_token(db.session, text, now=NOW, cache=cache)
    staff.role = "staff"
    db.session.flush()
    db.session.rollback()  # a change rolled back forgets nothing, not even at the next commit
    staff.first_name = "Again"
    db.session.commit()
    assert cached(rows[1][1]) and cached(rows[2][1])

    db.session.delete(db.session.get(User, other.id))
    db.session.commit()
    assert not cached(other_text)
    assert staff_id_for_token(db.session, other_text, now=NOW, cache=cache) is None


def test_token_cache_keys_of_users(staff):
    rows = [new_token(staff, name=f"Gate {n}")[0] for n in range(2)]
    assert token_cache_keys(db.session, user_ids=[staff.id]) == {token_cache_key(r.token_hash) for r in rows}
    assert token_cache_keys(db.session, token_hashes=["ab"]) == {token_cache_key("ab")}
    assert token_cache_keys(db.session) == set()


# --------------------------------------------------------------------------- signing key
def test_configured_seed_is_used_and_cached_on_the_app(make_app):
    pem = generate_private_key_pem()
    seed = private_key_seed_b64(load_private_key(pem))
    app = make_app(TICKET_SIGNING_KEY=seed)
    with app.app_context():
        keys = ticket_keys()
        assert keys.public_pem == public_key_pem(load_private_key(pem))
        assert ticket_keys() is keys
    other = make_app(TICKET_SIGNING_KEY=pem.decode())
    with other.app_context():
        assert ticket_keys().public_pem == keys.public_pem


def test_development_creates_the_key_file_once(make_app, tmp_path):
    path = tmp_path / "instance" / "ticket-signing-key.pem"
    first = make_app(TICKET_SIGNING_KEY=None, TICKET_SIGNING_KEY_FILE=str(path))
    with first.app_context():
        pem = ticket_keys().public_pem
    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    second = make_app(TICKET_SIGNING_KEY=None, TICKET_SIGNING_KEY_FILE=str(path))
    with second.app_context():
        assert ticket_keys().public_pem == pem


def test_production_without_a_signing_key_never_makes_one(make_app, tmp_path):
    from app import ConfigurationError

    key_file = tmp_path / "k.pem"
    with pytest.raises(ConfigurationError, match="TICKET_SIGNING_KEY"):
        make_app(TICKET_SIGNING_KEY=None, ENV_NAME="production", TICKET_SIGNING_KEY_FILE=str(key_file),
                 **PRODUCTION_SECRETS)
    lenient = make_app(TICKET_SIGNING_KEY=None, ENV_NAME="production", TICKET_SIGNING_KEY_FILE=str(key_file))
    with lenient.app_context(), pytest.raises(SigningKeyMissing, match="TICKET_SIGNING_KEY is not set"):
        ticket_keys()
    assert not key_file.exists()


# --------------------------------------------------------------------------- layering
@pytest.mark.parametrize("module", ["tickets", "checkin", "scanner_tokens"])
def test_services_do_not_import_flask(module):
    tree = ast.parse((ROOT / "app" / "services" / f"{module}.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {name for name in imported if name.split(".")[0] in ("flask", "flask_login", "flask_wtf")}


def test_production_checks_the_key_at_start(make_app):
    from app import ConfigurationError

    with pytest.raises(ConfigurationError, match="TICKET_SIGNING_KEY is not a usable Ed25519 private key"):
        make_app(ENV_NAME="production", TICKET_SIGNING_KEY="MC4CAQAwBQYDK2VwBCIEIExample", **PRODUCTION_SECRETS)
    seed = private_key_seed_b64(load_private_key(generate_private_key_pem()))
    app = make_app(ENV_NAME="production", TICKET_SIGNING_KEY=seed, **PRODUCTION_SECRETS)
    assert ticket_keys(app).private_key is not None  # loaded at start, kept on the app


def test_the_env_example_placeholder_falls_back_to_the_key_file_in_development(make_app, tmp_path):
    app = make_app(TICKET_SIGNING_KEY="change-me", TICKET_SIGNING_KEY_FILE=str(tmp_path / "dev.pem"))
    with app.app_context():
        ticket_keys()
    assert (tmp_path / "dev.pem").exists()
