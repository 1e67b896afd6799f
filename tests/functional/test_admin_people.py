"""Admin people directory and invitations through HTTP: create (with a code shown once and emailed),
edit, delete, search, invitation states, revoke, re-issue, and every bad input."""
from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from html import unescape

import pyotp
import pytest
import sqlalchemy as sa

from app.extensions import db
from app.messages import MESSAGES
from app.models import AuditEvent, Invitation, Person, User
from app.services.codes import INVITATION_CODE_RE, hash_code
from tests.factories import InvitationFactory, PersonFactory, UserFactory, code_pepper

pytestmark = pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False)  # 2FA is not the point here (see the last test)

CODE_IN_PAGE = re.compile(r'<code[^>]*id="invitation-code"[^>]*>(GCH-[A-Z0-9]{6}-[A-Z0-9]{5})</code>')


def html(response) -> str:
    return unescape(response.get_data(as_text=True))


def counts() -> tuple[int, int, int]:
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(m)) for m in (User, Person, Invitation))


@pytest.fixture
def admin(auth):
    user = UserFactory(role="admin", email="admin@example.test")
    assert auth.login(user).status_code == 302
    return user


def person_form(**changes):
    data = {"first_name": "Léa", "last_name": "Martin", "phone1": "06 12 34 56 78", "phone2": "",
            "email": "lea.martin@example.test", "intended_role": "staff"}
    data.update(changes)
    return data


# --------------------------------------------------------------------------- create
def test_create_a_person_without_a_code(client, admin):
    response = client.post("/admin/people/new", data=person_form())
    person = db.session.scalar(sa.select(Person))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/people/{person.id}"
    assert (person.first_name, person.phone1, person.email) == ("Léa", "+33612345678", "lea.martin@example.test")
    assert person.invitations == []
    page = html(client.get(response.headers["Location"]))
    assert "Léa Martin was added to the directory." in page and "+33 6 12 34 56 78" in page
    assert 'id="invitation-code"' not in page


def test_create_with_a_code_shows_it_once_and_emails_it(client, admin, outbox):
    response = client.post("/admin/people/new", data=person_form(generate_code="y"), follow_redirects=True)
    page = html(response)
    code = CODE_IN_PAGE.search(page).group(1)
    assert INVITATION_CODE_RE.fullmatch(code)
    assert 'data-copy-target="invitation-code"' in page
    assert "It was also emailed to lea.martin@example.test" in page
    invitation = db.session.scalar(sa.select(Invitation))
    assert invitation.code_hash == hash_code(code, pepper=code_pepper())
    assert invitation.created_by_id == admin.id
    assert invitation.expires_at - invitation.created_at == timedelta(days=7)
    # shown once: the same page again no longer has it
    again = html(client.get(f"/admin/people/{invitation.person_id}"))
    assert code not in again and "Pending" in again
    # emailed, multipart, with the code and the activation address
    assert len(outbox) == 1
    message = outbox[0]
    assert message.recipients == ["lea.martin@example.test"]
    assert code in message.body and code in message.html
    assert "/invitations/activate" in message.body
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.type == "invitation_created"))
    assert event.actor_id == admin.id and code not in str(event.details)
    # no table anywhere holds the plaintext code, in any spelling
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            dump = repr(connection.execute(table.select()).all()).upper()
            assert code not in dump and code.replace("-", "") not in dump, table.name


def test_the_invitation_email_through_a_real_smtp_server(client, admin, smtp_server):
    client.post("/admin/people/new", data=person_form(generate_code="y"))
    (message,) = smtp_server.messages
    assert message["To"] == "lea.martin@example.test"
    assert message.is_multipart()
    text = message.get_body(preferencelist=("plain",)).get_content()
    html_part = message.get_body(preferencelist=("html",)).get_content()
    code = INVITATION_CODE_RE.search(text).group(0)
    assert code in html_part
    assert db.session.scalar(sa.select(Invitation.code_hash)) == hash_code(code, pepper=code_pepper())


def test_without_an_email_the_admin_hands_the_code_over(client, admin, outbox):
    page = html(client.post("/admin/people/new", data=person_form(email="", generate_code="y"),
                            follow_redirects=True))
    assert CODE_IN_PAGE.search(page)
    assert "give it to Léa yourself" in page
    assert outbox == []


def closed_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False, MAIL_SERVER="127.0.0.1", MAIL_PORT=closed_port(),
                        MAIL_SUPPRESS_SEND=False)
def test_an_unreachable_mail_server_does_not_lose_the_code(client, admin):
    page = html(client.post("/admin/people/new", data=person_form(generate_code="y"), follow_redirects=True))
    assert "We could not email the code" in page
    assert CODE_IN_PAGE.search(page)
    assert db.session.scalar(sa.select(sa.func.count(Invitation.id))) == 1


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=False, INVITATION_DAYS=3)
def test_the_validity_is_configurable(client, admin):
    client.post("/admin/people/new", data=person_form(generate_code="y"))
    invitation = db.session.scalar(sa.select(Invitation))
    assert invitation.expires_at - invitation.created_at == timedelta(days=3)


BAD_INPUT = [
    ({"phone1": "12"}, "Enter a valid phone number"),
    ({"phone1": ""}, "Enter a phone number."),
    ({"phone2": "call me"}, "Enter a valid phone number"),
    ({"first_name": ""}, "Enter the first name."),
    ({"last_name": "x" * 81}, "At most 80 characters."),
    ({"email": "not an email"}, "Enter a valid email address"),
    ({"intended_role": "customer"}, "Choose staff or admin."),
]


@pytest.mark.parametrize("changes, message", BAD_INPUT)
def test_bad_input_is_shown_next_to_the_field_and_nothing_is_created(client, admin, changes, message):
    before = counts()
    response = client.post("/admin/people/new", data=person_form(generate_code="y", **changes))
    page = html(response)
    assert response.status_code == 200
    assert message in page and "is-invalid" in page
    assert counts() == before
    assert 'value="Martin"' in page or "last_name" in changes  # typed values kept


def test_two_people_cannot_share_an_email(client, admin):
    PersonFactory(email="lea.martin@example.test")
    before = counts()
    page = html(client.post("/admin/people/new", data=person_form()))
    assert MESSAGES["person_email_taken"] in page and counts() == before


# --------------------------------------------------------------------------- edit, delete, search
def test_edit_a_person(client, admin):
    person = PersonFactory(first_name="Sam")
    form = html(client.get(f"/admin/people/{person.id}/edit"))
    assert 'value="Sam"' in form
    response = client.post(f"/admin/people/{person.id}/edit",
                           data=person_form(first_name="Samuel", phone2="+44 20 7946 0958", intended_role="admin"))
    assert response.status_code == 302
    db.session.refresh(person)
    assert (person.first_name, person.phone2, person.intended_role) == ("Samuel", "+442079460958", "admin")
    bad = html(client.post(f"/admin/people/{person.id}/edit", data=person_form(phone1="0000")))
    assert "Enter a valid phone number" in bad
    db.session.refresh(person)
    assert person.first_name == "Samuel"


def test_delete_asks_first_and_keeps_the_account(client, admin):
    user = UserFactory(role="staff")
    person = PersonFactory(user=user)
    InvitationFactory(person=person, used_at=datetime.now(UTC))
    confirm = html(client.get(f"/admin/people/{person.id}/delete"))
    assert "is <strong>not</strong> deleted" in confirm or "not</strong> deleted" in confirm
    assert db.session.get(Person, person.id) is not None
    response = client.post(f"/admin/people/{person.id}/delete")
    assert response.headers["Location"] == "/admin/people/"
    db.session.expire_all()
    assert db.session.get(Person, person.id) is None
    assert db.session.scalar(sa.select(sa.func.count(Invitation.id))) == 0
    assert db.session.get(User, user.id) is not None


def test_search_people(client, admin):
    PersonFactory(first_name="Zoé", last_name="Durand", email="zoe@example.test", phone1="+33698765432")
    PersonFactory(first_name="Hugo", last_name="Petit", intended_role="admin")
    assert "Zoé Durand" in html(client.get("/admin/people/?q=durand"))
    by_phone = html(client.get("/admin/people/?q=98765"))
    assert "Zoé Durand" in by_phone and "Hugo Petit" not in by_phone
    admins = html(client.get("/admin/people/?role=admin"))
    assert "Hugo Petit" in admins and "Zoé Durand" not in admins
    assert "No one matches" in html(client.get("/admin/people/?q=nobody"))


def test_unknown_person_is_404(client, admin):
    assert client.get("/admin/people/999999").status_code == 404
    assert client.post("/admin/people/999999/invite").status_code == 404


# --------------------------------------------------------------------------- invitations
def test_the_invitations_list_shows_every_state_and_filters(client, admin):
    now = datetime.now(UTC)
    names = {}
    for state, kwargs in {"pending": {}, "used": {"used_at": now}, "revoked": {"revoked_at": now},
                          "expired": {"created_at": now - timedelta(days=9)}}.items():
        invitation = InvitationFactory(person=PersonFactory(last_name=f"State{state.title()}"), **kwargs)
        names[state] = invitation.person.full_name
    page = html(client.get("/admin/invitations/"))
    for state, name in names.items():
        assert name in page and f'data-state="{state}"' in page
    for state, name in names.items():
        filtered = html(client.get(f"/admin/invitations/?state={state}"))
        assert name in filtered
        assert all(other not in filtered for s, other in names.items() if s != state)


def test_revoke_a_pending_code(client, admin):
    invitation = InvitationFactory(person=PersonFactory(email=None))
    response = client.post(f"/admin/invitations/{invitation.id}/revoke", data={"back": "list"})
    assert response.headers["Location"] == "/admin/invitations/"
    db.session.refresh(invitation)
    assert invitation.revoked_at is not None
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.type == "invitation_revoked"))
    assert event.actor_id == admin.id
    again = html(client.post(f"/admin/invitations/{invitation.id}/revoke", follow_redirects=True))
    assert MESSAGES["invitation_not_pending"] in again
    # the code no longer opens an account
    anonymous = client.application.test_client()
    refused = html(anonymous.post("/invitations/activate", data={
        "code": invitation.code, "email": "x@example.test", "password": "Gate-Keeper-Lantern-93",
        "confirm": "Gate-Keeper-Lantern-93"}))
    assert MESSAGES["invitation_revoked"] in refused


def test_reissue_revokes_the_old_code_and_shows_the_new_one_once(client, admin, outbox):
    invitation = InvitationFactory(person=PersonFactory(email="max@example.test"))
    response = client.post(f"/admin/invitations/{invitation.id}/reissue", follow_redirects=True)
    new_code = CODE_IN_PAGE.search(html(response)).group(1)
    assert new_code != invitation.code
    db.session.refresh(invitation)
    assert invitation.revoked_at is not None
    newest = db.session.scalar(sa.select(Invitation).order_by(Invitation.id.desc()))
    assert newest.code_hash == hash_code(new_code, pepper=code_pepper()) and newest.state(datetime.now(UTC)) == "pending"
    assert [m.recipients for m in outbox] == [["max@example.test"]]


def test_generate_a_code_for_an_existing_person(client, admin):
    person = PersonFactory(email=None)
    page = html(client.post(f"/admin/people/{person.id}/invite", follow_redirects=True))
    assert CODE_IN_PAGE.search(page)


def test_no_code_for_someone_who_already_has_an_account(client, admin):
    person = PersonFactory(user=UserFactory(role="staff"))
    page = html(client.post(f"/admin/people/{person.id}/invite", follow_redirects=True))
    assert MESSAGES["person_already_active"] in page
    assert db.session.scalar(sa.select(sa.func.count(Invitation.id))) == 0


def test_dashboard_counts_and_links(client, admin):
    PersonFactory()
    InvitationFactory()
    page = html(client.get("/admin/"))
    assert 'href="/admin/people/"' in page and 'href="/admin/invitations/"' in page and 'href="/admin/users/"' in page
    nav = re.search(r'<nav aria-label="Administration".*?</nav>', html(client.get("/admin/people/")), re.DOTALL).group(0)
    assert 'href="/admin/users/"' in nav and 'aria-current="page">People' in nav  # the admin tabs, in macros too
    assert re.search(r'data-count="people">\s*2<', page)
    assert re.search(r'data-count="pending-invitations">\s*1<', page)


# --------------------------------------------------------------------------- who may
@pytest.mark.parametrize("role", ["customer", "staff"])
def test_only_admins_manage_people(client, auth, role):
    auth.login(UserFactory(role=role))
    assert client.get("/admin/people/").status_code == 403
    before = counts()
    assert client.post("/admin/people/new", data=person_form(generate_code="y")).status_code == 403
    assert counts() == before


@pytest.mark.app_config(REQUIRE_2FA_FOR_STAFF=True)
def test_with_the_2fa_requirement_an_admin_enrols_first(client, auth):
    plain = UserFactory(role="admin")
    auth.login(plain)
    gate = client.get("/admin/people/new")
    assert gate.status_code == 302 and gate.headers["Location"].startswith("/account/2fa")
    auth.logout()
    secret = pyotp.random_base32()
    enrolled = UserFactory(role="admin", totp_secret=secret, totp_enabled_at=datetime.now(UTC))
    assert auth.login(enrolled).headers["Location"] == "/auth/2fa"
    assert client.post("/auth/2fa", data={"code": pyotp.TOTP(secret).now()}).status_code == 302
    assert client.get("/admin/people/new").status_code == 200
