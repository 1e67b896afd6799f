"""The least a whole purchase can cost on this stack: the rush's journey, written as lean as we
know how, so `bench/rush.py --minimal` shows what any version of the shop could reach here.

The same URLs, forms and redirects as the app, so the rush's own buyers (bench/browser.py) drive
it unchanged: sign in; event page; "buy now" (added to the cart, → checkout review); pay with
the card on the review (placed and paid, → order page): 5 requests a purchase, like the app.
`rush.py --journey buy-now` places the order from the review (→ order page), then pays there: 7;
`--journey cart` clicks "add to cart" instead of "buy now" (→ cart page), then goes to the review: 8.

It keeps every piece of work the spec asks of a purchase (SPEC §5, §6, §8):
- a server-side session in Redis per buyer, its CSRF token checked on every POST;
- the signed-in user checked on every request (not disabled; verified to check out);
- placing: the seats reserved by a conditional UPDATE (never read-then-write), the per-account
  limit of tickets per event over all the account's orders, the order `pending` with a human
  code (drawn again on a collision, as the app does), a 15-minute hold and an idempotency key
  (the review's checkout key when paid there: the same review sent twice places one order),
  its lines, the cart emptied;
- paying: the card validated (`validate_card`) and charged through the mock provider with the
  order's idempotency key; the order `paid`; the payment (brand, last 4, transaction id); one
  ticket per seat line unit with its own 32-byte purchase key and SHA-256(user key ‖ purchase
  key); the `order_paid` audit event; the confirmation email queued (the real `flask emails
  work` sends it, with the PDF tickets);
- another buyer's order answers 404; pages are HTML with the security headers.

And no more: psycopg on one autocommit connection per thread (no pool, no ORM), one statement
per step (two to pay: the amount and the idempotency key must be read before the charge), a
few lines of Jinja per page with no layout, no flash messages, no cache, no rate limits, no
anonymous cart, no session registry (the app also lists and revokes a user's sessions).
Settings come from the bench server's environment (DATABASE_URL, REDIS_URL; MINIMAL_SESSION_PREFIX).

`MINIMAL_STACK=fixed` (`bench/rush.py --fixed-stack`) runs the same routes, statements
and templates on the per-request plumbing the developers' guide fixes for Guichet, used as
leanly as it allows: the session in Redis through Flask-Session, the CSRF token through
Flask-WTF's CSRFProtect, the signed-in user through Flask-Login (loaded from the session, no
query) and each statement through a Flask-SQLAlchemy session (pooled connections, one
transaction per request, committed after writes; no ORM objects). The difference between the two
is what the fixed stack costs a purchase whatever the shop's own code does.
"""
from __future__ import annotations

import hmac
import json
import os
import secrets
from datetime import UTC, datetime, timedelta

import bcrypt
import psycopg
import sqlalchemy as sa
from flask import Flask, abort, g, redirect, request, session

from app.backends import shared_redis_client
from app.messages import message_for
from app.services.codes import new_order_code
from app.services.orders import CODE_ATTEMPTS, new_idempotency_key
from app.services.payments import CardDetails, MockProvider, validate_card
from app.services.signing import KEY_BYTES
from bench.common import thread_connection
from config import Config

COOKIE = "guichet_session"
SESSION_PREFIX = os.environ.get("MINIMAL_SESSION_PREFIX", "guichet:minimal:session:")
SESSION_SECONDS = 12 * 3600
HOLD = timedelta(minutes=15)
MAX_TICKETS_PER_EVENT = 10
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
}

STACK = os.environ.get("MINIMAL_STACK", "bare")
if STACK not in ("bare", "fixed"):
    raise SystemExit(f"MINIMAL_STACK must be bare or fixed, not {STACK!r}")
FIXED = STACK == "fixed"

app = Flask(__name__)
_redis = shared_redis_client(os.environ["REDIS_URL"], max_connections=64, timeout=10)  # the app's pool that waits
provider = MockProvider()

if FIXED:
    from flask_login import LoginManager, UserMixin, current_user, login_user
    from flask_session import Session
    from flask_sqlalchemy import SQLAlchemy
    from flask_wtf.csrf import CSRFProtect, generate_csrf

    app.config.update(
        SECRET_KEY=os.environ["SECRET_KEY"], SESSION_TYPE="redis", SESSION_REDIS=_redis,
        SESSION_KEY_PREFIX=SESSION_PREFIX, SESSION_PERMANENT=True, SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=SESSION_SECONDS), SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", WTF_CSRF_TIME_LIMIT=None,
        SQLALCHEMY_DATABASE_URI=os.environ["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": Config.DATABASE_POOL_SIZE,  # the app's pool (config.py)
                                   "max_overflow": Config.DATABASE_MAX_OVERFLOW})
    Session(app)
    CSRFProtect(app)
    db = SQLAlchemy(app)
    login_manager = LoginManager(app)
    login_manager.session_protection = None

    class Buyer(UserMixin):
        def __init__(self, user_id: int):
            self.id = user_id

    @login_manager.user_loader
    def load_buyer(user_id: str):
        return Buyer(int(user_id))


def sql(statement: str, params: dict | tuple = ()):
    if FIXED:
        return db.session.connection().exec_driver_sql(statement, params)
    return thread_connection().execute(statement, params, prepare=True)


def commit() -> None:
    """The bare shop's connection commits every statement itself (autocommit)."""
    if FIXED:
        db.session.commit()


def rollback() -> None:
    if FIXED:
        db.session.rollback()


# --------------------------------------------------------------------------- session and CSRF
def new_session(data: dict) -> str:
    sid = secrets.token_urlsafe(32)
    _redis.set(SESSION_PREFIX + sid, json.dumps(data), ex=SESSION_SECONDS)
    g.new_sid = sid
    return sid


@app.before_request
def load_session():
    g.new_sid = None
    if FIXED:
        return
    sid = request.cookies.get(COOKIE)
    raw = _redis.get(SESSION_PREFIX + sid) if sid and request.path != "/healthz" else None
    g.sid, g.session = (sid, json.loads(raw)) if raw else (None, {})
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        if not g.session.get("csrf") or not hmac.compare_digest(sent, g.session["csrf"]):
            abort(400)


@app.after_request
def finish(response):
    response.headers.update(SECURITY_HEADERS)
    if g.get("new_sid"):
        response.set_cookie(COOKIE, g.new_sid, max_age=SESSION_SECONDS, httponly=True, samesite="Lax")
    return response


def signed_in() -> int:
    uid = (current_user.id if current_user.is_authenticated else None) if FIXED else g.session.get("uid")
    if uid is None:
        abort(redirect("/auth/login", 303))
    return uid


def csrf() -> str:
    if FIXED:
        return generate_csrf()
    if "csrf" not in g.session:
        g.session = {"csrf": secrets.token_urlsafe(32)}
        new_session(g.session)
    return g.session["csrf"]


def page(template, status: int = 200, **context):
    return template.render(csrf=csrf(), **context), status


template = app.jinja_env.from_string  # compiled once, at import


# --------------------------------------------------------------------------- sign in (setup, not timed)
LOGIN = template("""<!doctype html><title>Sign in</title>{% if error %}<p>{{ error }}</p>{% endif %}
<form action="/auth/login" method="post"><input type="hidden" name="csrf_token" value="{{ csrf }}">
<input name="email" value="{{ email }}"><input type="password" name="password"><button>Sign in</button></form>""")


@app.get("/healthz")
def healthz():
    return {"status": "ok", "shop": "minimal"}


@app.get("/auth/login")
def login_page():
    return page(LOGIN, email="")


@app.post("/auth/login")
def login():
    email = request.form.get("email", "").strip().lower()
    row = sql("SELECT id, password_hash FROM users WHERE email = %s AND disabled_at IS NULL", (email,)).fetchone()
    if row is None or not bcrypt.checkpw(request.form.get("password", "").encode(), row[1].encode()):
        return page(LOGIN, 400, email=email, error=message_for("login_failed"))
    if FIXED:
        session.clear()
        app.session_interface.regenerate(session)  # a new session id at sign-in
        login_user(Buyer(row[0]))
        return redirect("/", 303)
    _redis.delete(SESSION_PREFIX + g.sid)
    g.session = {"uid": row[0], "csrf": secrets.token_urlsafe(32)}  # a new session id at sign-in
    new_session(g.session)
    return redirect("/", 303)


HOME = template("<!doctype html><title>Guichet</title><p>Signed in.</p>")


@app.get("/")
def home():
    signed_in()
    return page(HOME)


# --------------------------------------------------------------------------- event, cart, checkout
EVENT_SQL = """
    SELECT e.title, e.venue, e.starts_at, e.capacity - e.seats_taken, o.id, o.name, o.persons, o.price_cents
    FROM events e JOIN offers o ON o.event_id = e.id AND o.published
    WHERE e.slug = %s AND e.published ORDER BY o.id"""
EVENT = template("""<!doctype html><title>{{ rows[0][0] }}</title><h1>{{ rows[0][0] }}</h1>
<p>{{ rows[0][1] }}, {{ rows[0][2].isoformat() }} · {{ rows[0][3] }} seats left</p>
{% for r in rows %}<form action="/cart/add" method="post"><input type="hidden" name="csrf_token" value="{{ csrf }}">
<input type="hidden" name="offer_id" value="{{ r[4] }}">{{ r[5] }} ({{ r[6] }}) €{{ '%.2f' % (r[7] / 100) }}
<input name="quantity" value="1"><button>Add to cart</button>
<button name="buy_now" value="1">Buy now</button></form>{% endfor %}""")


@app.get("/events/<slug>")
def event_page(slug):
    rows = sql(EVENT_SQL, (slug,)).fetchall()
    if not rows:
        abort(404)
    return page(EVENT, rows=rows)


ADD_SQL = """
    INSERT INTO cart_items (user_id, offer_id, quantity, added_at)
    SELECT u.id, o.id, %(quantity)s, %(now)s FROM users u, offers o JOIN events e ON e.id = o.event_id
    WHERE u.id = %(uid)s AND u.disabled_at IS NULL AND o.id = %(offer_id)s AND o.published AND e.published
    ON CONFLICT (user_id, offer_id) DO UPDATE SET quantity = least(cart_items.quantity + excluded.quantity, 10)
    RETURNING id"""


@app.post("/cart/add")
def add_to_cart():
    uid = signed_in()
    try:
        offer_id, quantity = int(request.form["offer_id"]), int(request.form.get("quantity", "1"))
    except (KeyError, ValueError):
        abort(400)
    if not 1 <= quantity <= 10:
        abort(400)
    if sql(ADD_SQL, {"uid": uid, "offer_id": offer_id, "quantity": quantity, "now": datetime.now(UTC)}).fetchone() is None:
        abort(404)
    commit()
    return redirect("/cart/checkout" if "buy_now" in request.form else "/cart/", 303)


CART_SQL = """
    SELECT e.title, o.name, c.quantity, o.price_cents, e.capacity - e.seats_taken, u.email_verified_at IS NOT NULL
    FROM users u LEFT JOIN cart_items c ON c.user_id = u.id LEFT JOIN offers o ON o.id = c.offer_id
         LEFT JOIN events e ON e.id = o.event_id
    WHERE u.id = %s AND u.disabled_at IS NULL ORDER BY c.id"""
CART = template("""<!doctype html><title>{{ title }}</title><h1>{{ title }}</h1><ul>{% for r in rows if r[0] %}
<li>{{ r[0] }}, {{ r[1] }} × {{ r[2] }}: €{{ '%.2f' % (r[2] * r[3] / 100) }} ({{ r[4] }} seats left)</li>{% endfor %}</ul>
{% for e in errors %}<p>{{ e }}</p>{% endfor %}
{% if review %}<form action="/cart/checkout" method="post"><input type="hidden" name="csrf_token" value="{{ csrf }}">
<input type="hidden" name="checkout_key" value="{{ key }}"><input name="number" value="">
<input name="exp_month" value="{{ form.exp_month }}"><input name="exp_year" value="{{ form.exp_year }}">
<input name="cvv" value=""><input name="holder" value="{{ form.holder }}"><button>Pay</button></form>
<form action="/orders/" method="post"><input type="hidden" name="csrf_token" value="{{ csrf }}">
<button>Place order, pay later</button></form>{% else %}<a href="/cart/checkout">Checkout</a>{% endif %}""")


def cart_rows(uid: int) -> list:
    rows = sql(CART_SQL, (uid,)).fetchall()
    if not rows:  # the account was disabled
        abort(403)
    return rows


@app.get("/cart/")
def cart():
    return page(CART, rows=cart_rows(signed_in()), title="Your cart", review=False, errors=())


@app.get("/cart/checkout")
def checkout():
    rows = cart_rows(signed_in())
    if not rows[0][5]:
        abort(403)  # verified customers only
    if rows[0][0] is None:
        return redirect("/cart/", 303)
    return review_page(rows)


def review_page(rows: list, status: int = 200, errors=(), form=None, key: str | None = None):
    return page(CART, status, rows=rows, title="Review your order", review=True, errors=errors, form=form or {},
                key=key or new_idempotency_key())


# --------------------------------------------------------------------------- placing the order
# All or nothing, in one statement: every event of the cart must have room and stay within the
# account's limit, or no order is created. A seat taken on one event while another event of
# the same cart ran out in between is given back at once (release_seats).
PLACE_SQL = """
    WITH buyer AS (
        SELECT id FROM users WHERE id = %(uid)s AND disabled_at IS NULL AND email_verified_at IS NOT NULL),
    cart AS (
        SELECT c.offer_id, c.quantity, o.persons, o.price_cents, o.event_id
        FROM cart_items c JOIN offers o ON o.id = c.offer_id AND o.published
             JOIN events e ON e.id = o.event_id AND e.published AND e.starts_at > %(now)s
        WHERE c.user_id = (SELECT id FROM buyer)),
    need AS (
        SELECT event_id, sum(quantity * persons) AS seats, sum(quantity) AS tickets FROM cart GROUP BY event_id),
    held AS (  -- every event's, from the buyer's own orders (app/services/orders.py, _TICKETS_HELD)
        SELECT l.event_id, sum(l.quantity) AS tickets FROM order_lines l JOIN orders o ON o.id = l.order_id
        WHERE o.user_id = (SELECT id FROM buyer) AND o.status IN ('pending', 'paid') GROUP BY l.event_id),
    taken AS (
        UPDATE events e SET seats_taken = e.seats_taken + need.seats FROM need
        WHERE e.id = need.event_id AND e.seats_taken + need.seats <= e.capacity
          AND need.tickets + coalesce((SELECT tickets FROM held WHERE held.event_id = need.event_id), 0) <= %(limit)s
        RETURNING e.id, need.seats),
    placed AS (
        INSERT INTO orders (code, user_id, status, total_cents, currency, created_at, expires_at, idempotency_key)
        SELECT %(code)s, (SELECT id FROM buyer), 'pending', (SELECT sum(quantity * price_cents) FROM cart), 'EUR',
               %(now)s, %(expires)s, %(key)s
        WHERE (SELECT count(*) FROM taken) = (SELECT count(*) FROM need) AND EXISTS (SELECT 1 FROM need)
        RETURNING id),
    lines AS (
        INSERT INTO order_lines (order_id, offer_id, event_id, quantity, persons, unit_price_cents)
        SELECT placed.id, cart.offer_id, cart.event_id, cart.quantity, cart.persons, cart.price_cents
        FROM placed, cart),
    emptied AS (
        DELETE FROM cart_items WHERE user_id = (SELECT id FROM buyer)
          AND offer_id IN (SELECT offer_id FROM cart) AND EXISTS (SELECT 1 FROM placed))
    SELECT (SELECT id FROM placed), (SELECT coalesce(json_agg(json_build_array(id, seats)), '[]') FROM taken)"""
RELEASE_SQL = "UPDATE events SET seats_taken = seats_taken - %s WHERE id = %s"


KEYED_ORDER_SQL = "SELECT code FROM orders WHERE user_id = %s AND idempotency_key = %s"


def place(uid: int, now: datetime, key: str) -> str | None:
    """The order's code, or None when the cart could not be placed (sold out, over the limit, empty).
    `key` is the order's first payment key: a second placement with it finds the first's order."""
    for attempt in range(1, CODE_ATTEMPTS + 1):
        code = new_order_code()
        try:
            order_id, taken = sql(PLACE_SQL, {"uid": uid, "now": now, "expires": now + HOLD, "code": code,
                                              "key": key, "limit": MAX_TICKETS_PER_EVENT}).fetchone()
            break
        except (psycopg.errors.UniqueViolation, sa.exc.IntegrityError) as error:
            # A code drawn twice (the statement took nothing: draw again), or the key's order placed.
            if not isinstance(getattr(error, "orig", error), psycopg.errors.UniqueViolation):
                raise
            rollback()
            placed = sql(KEYED_ORDER_SQL, (uid, key)).fetchone()
            if placed is not None:
                return placed[0]
            if attempt == CODE_ATTEMPTS:
                raise
    if order_id is None:
        for event_id, seats in taken:  # part of a cart with several events: nothing is kept
            sql(RELEASE_SQL, (seats, event_id))
        commit()
        placed = sql(KEYED_ORDER_SQL, (uid, key)).fetchone()  # the cart emptied by a first submit
        return None if placed is None else placed[0]
    commit()
    return code


@app.post("/orders/")
def place_order():
    code = place(signed_in(), datetime.now(UTC), new_idempotency_key())
    if code is None:
        return redirect("/cart/checkout", 303)  # sold out or over the limit: the review says so
    return redirect(f"/orders/{code}", 303)


@app.post("/cart/checkout")
def place_and_pay():
    """The review's card form: the card checked, the order placed (idempotent by the review's
    key), then paid as the order page pays it."""
    uid, now, form = signed_in(), datetime.now(UTC), request.form
    key = form.get("checkout_key", "")
    if not (len(key) == 32 and key.replace("-", "").replace("_", "").isalnum()):
        abort(400)
    fields = card_fields(form)
    errors = validate_card(*fields, today=now.date())
    if errors:
        kept = {"exp_month": fields[1], "exp_year": fields[2], "holder": fields[4]}
        return review_page(cart_rows(uid), 422, [message_for(e) for e in errors.values()], kept, key)
    code = place(uid, now, key)
    if code is None:
        return redirect("/cart/checkout", 303)  # sold out or over the limit: the review says so
    return charge(code, uid, now, fields)


# --------------------------------------------------------------------------- the order and paying
ORDER_SQL = """
    SELECT o.status, o.total_cents, o.expires_at,
           (SELECT json_agg(json_build_array(e.title, f.name, l.quantity, l.unit_price_cents) ORDER BY l.id)
            FROM order_lines l JOIN offers f ON f.id = l.offer_id JOIN events e ON e.id = l.event_id
            WHERE l.order_id = o.id),
           (SELECT json_agg(t.number ORDER BY t.id) FROM tickets t WHERE t.order_id = o.id AND t.voided_at IS NULL)
    FROM orders o JOIN users u ON u.id = o.user_id AND u.disabled_at IS NULL
    WHERE o.code = %s AND o.user_id = %s"""
ORDER = template("""<!doctype html><title>Order {{ code }}</title><h1>Order {{ code }}: {{ order[0] }}</h1>
<ul>{% for l in order[3] %}<li>{{ l[0] }}, {{ l[1] }} × {{ l[2] }}</li>{% endfor %}</ul>
<p>Total €{{ '%.2f' % (order[1] / 100) }}</p>{% for e in errors %}<p>{{ e }}</p>{% endfor %}
{% if order[0] == 'pending' %}<form action="/orders/{{ code }}/pay" method="post">
<input type="hidden" name="csrf_token" value="{{ csrf }}"><input name="number" value="">
<input name="exp_month" value="{{ form.exp_month }}"><input name="exp_year" value="{{ form.exp_year }}">
<input name="cvv" value=""><input name="holder" value="{{ form.holder }}"><button>Pay</button></form>
{% else %}<ul>{% for n in order[4] or [] %}<li>Ticket {{ n }}</li>{% endfor %}</ul>{% endif %}""")


def show(code: str, uid: int, status: int = 200, errors=(), form=None):
    order = sql(ORDER_SQL, (code, uid)).fetchone()
    if order is None:
        abort(404)  # someone else's order, or none
    return page(ORDER, status, code=code, order=order, errors=errors, form=form or {})


@app.get("/orders/<code>")
def order_page(code):
    return show(code, signed_in())


PAYABLE_SQL = """
    SELECT o.status, o.expires_at > %(now)s, o.total_cents, o.currency, o.idempotency_key,
           (SELECT sum(quantity) FROM order_lines WHERE order_id = o.id)
    FROM orders o WHERE o.code = %(code)s AND o.user_id = %(uid)s"""
PAY_SQL = """
    WITH paid AS (
        UPDATE orders SET status = 'paid', paid_at = %(now)s
        WHERE code = %(code)s AND user_id = %(uid)s AND status = 'pending' AND expires_at > %(now)s
        RETURNING id, code, total_cents),
    buyer AS (
        SELECT id, user_key, first_name || ' ' || last_name AS name FROM users WHERE id = %(uid)s),
    payment AS (
        INSERT INTO payments (order_id, kind, amount_cents, succeeded, card_brand, card_last4, transaction_id, created_at)
        SELECT id, 'charge', total_cents, true, %(brand)s, %(last4)s, %(transaction_id)s, %(now)s FROM paid),
    units AS (
        SELECT l.id AS line_id, l.offer_id, l.event_id, l.persons,
               row_number() OVER (ORDER BY l.id, n) AS number_in_order
        FROM order_lines l JOIN paid ON l.order_id = paid.id, generate_series(1, l.quantity) AS n),
    issued AS (
        INSERT INTO tickets (number, order_id, order_line_id, user_id, event_id, offer_id, persons, holder_name,
                             purchase_key, key_digest, issued_at)
        SELECT paid.code || '-' || lpad(units.number_in_order::text, greatest(2, length(units.number_in_order::text)), '0'), paid.id, units.line_id, buyer.id,
               units.event_id, units.offer_id, units.persons, buyer.name, k.key, sha256(buyer.user_key || k.key),
               %(now)s
        FROM paid, buyer, units JOIN unnest(%(keys)s::bytea[]) WITH ORDINALITY AS k(key, i)
             ON k.i = units.number_in_order
        RETURNING id),
    audit AS (
        INSERT INTO audit_events (type, actor_id, subject_user_id, ip_address, details, created_at)
        SELECT 'order_paid', %(uid)s, %(uid)s, %(ip)s,
               json_build_object('order', paid.code, 'amount_cents', paid.total_cents,
                                 'tickets', (SELECT count(*) FROM units)), %(now)s
        FROM paid),
    mail AS (
        INSERT INTO email_jobs (kind, order_id, created_at, attempts, next_attempt_at, status)
        SELECT 'order_confirmation', id, %(now)s, 0, %(now)s, 'pending' FROM paid)
    SELECT (SELECT id FROM paid)"""


def card_fields(form) -> list[str]:
    return [form.get(name, "") for name in ("number", "exp_month", "exp_year", "cvv", "holder")]


@app.post("/orders/<code>/pay")
def pay(code):
    uid, now = signed_in(), datetime.now(UTC)
    fields = card_fields(request.form)
    errors = validate_card(*fields, today=now.date())
    if errors:
        if sql(PAYABLE_SQL, {"code": code, "uid": uid, "now": now}).fetchone() is None:
            abort(404)
        kept = {"exp_month": fields[1], "exp_year": fields[2], "holder": fields[4]}
        return show(code, uid, 422, [message_for(e) for e in errors.values()], kept)
    return charge(code, uid, now, fields)


def charge(code: str, uid: int, now: datetime, fields: list[str]):
    """Charge the card for the buyer's order and record it: the order page, or the order page
    again with why not."""
    state = sql(PAYABLE_SQL, {"code": code, "uid": uid, "now": now}).fetchone()
    if state is None:
        abort(404)
    status, in_time, amount, currency, key, tickets = state
    if status == "paid":
        return redirect(f"/orders/{code}", 303)  # a second submit: charged once
    if status != "pending" or not in_time:
        return show(code, uid, 409, [message_for("order_not_payable")])
    result = provider.charge(amount_cents=amount, currency=currency, card=CardDetails(*fields),
                             idempotency_key=key)
    if not result.ok:
        return show(code, uid, 402, [message_for(result.error_code or "payment_failed")])  # still pending
    sql(PAY_SQL, {"code": code, "uid": uid, "now": now, "brand": result.brand, "last4": result.last4,
                  "transaction_id": result.transaction_id, "ip": request.remote_addr,
                  "keys": [secrets.token_bytes(KEY_BYTES) for _ in range(tickets)]})
    commit()
    return redirect(f"/orders/{code}", 303)
