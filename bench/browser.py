"""A small browser for load tests: one aiohttp session and its own cookies per virtual user.

It reads forms the way a browser does (hidden inputs such as `csrf_token`, selects with their
selected option), posts them, follows redirects, and times each step as a client-side round
trip on loopback (server time + a little client time; no network in between).
"""
from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode, urljoin

import aiohttp


@dataclass
class Form:
    action: str
    method: str
    fields: dict = field(default_factory=dict)
    buttons: dict = field(default_factory=dict)  # named submit buttons: name → value

    def filled(self, button: str | None = None, **values) -> dict:
        """The fields to send; `button`: the named submit button clicked (its name and value go too)."""
        data = dict(self.fields)
        if button is not None:
            if button not in self.buttons:
                raise LookupError(f"no button named {button!r} in the form to {self.action}")
            data[button] = self.buttons[button]
        data.update({k: str(v) for k, v in values.items()})
        return data


# The tags a form reader needs, and their attributes. The app's templates quote every attribute
# value and escape `>` inside them, so a tag ends at the first `>`. A regular expression reads a
# page about 20 times faster than html.parser, whose cost was half of the rush client's CPU on
# the same two cores as the server (py-spy on bench/rush.py).
_TAG = re.compile(r"<(/?)(form|input|button|select|option)\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


def _attributes(text: str) -> dict[str, str | None]:
    """Attribute names (lower case) and their unescaped values; None for a bare `checked`."""
    found: dict[str, str | None] = {}
    for match in _ATTRIBUTE.finditer(text):
        name = match.group(1).lower()
        if name not in found:  # the first occurrence wins, as in a browser
            value = next((v for v in match.group(2, 3, 4) if v is not None), None)
            found[name] = None if value is None else html.unescape(value)
    return found


def parse_forms(page: str) -> list[Form]:
    """Every <form> with its action, method and the values a browser would submit by default:
    named inputs (checkboxes and radios only when checked), each select's selected option (its
    first one when none is); named submit buttons apart, sent only with the one clicked."""
    forms: list[Form] = []
    select: str | None = None
    first_option = True
    for closing, tag, raw in _TAG.findall(page):
        tag = tag.lower()
        if closing:
            if tag == "select":
                select = None
            continue
        a = _attributes(raw)
        if tag == "form":
            forms.append(Form(a.get("action") or "", (a.get("method") or "get").lower()))
        elif not forms:
            continue
        elif tag in ("input", "button") and a.get("name"):
            kind = (a.get("type") or ("submit" if tag == "button" else "text")).lower()
            if kind == "submit":
                forms[-1].buttons[a["name"]] = a.get("value") or ""
            elif kind not in ("checkbox", "radio") or "checked" in a:
                forms[-1].fields[a["name"]] = a.get("value") or ""
        elif tag == "select" and a.get("name"):
            select, first_option = a["name"], True
        elif tag == "option" and select:
            value = a.get("value") or ""
            if first_option:
                first_option = False
                forms[-1].fields.setdefault(select, value)
            if "selected" in a:
                forms[-1].fields[select] = value
    return forms


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token(html: str) -> str | None:
    match = _CSRF.search(html)
    return (match.group(1) or match.group(2)) if match else None


@dataclass
class Page:
    status: int
    url: str
    text: str
    seconds: float
    history: tuple = ()

    def forms(self) -> list[Form]:
        return parse_forms(self.text)

    def form(self, action_contains: str, **matching) -> Form:
        for form in self.forms():
            if action_contains in form.action and all(form.fields.get(k) == str(v) for k, v in matching.items()):
                return form
        raise LookupError(f"no form with action containing {action_contains!r} {matching or ''} on {self.url}")

    @property
    def path(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


# Redirects a browser follows, and those after which it asks with GET.
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_THEN_GET = frozenset({301, 302, 303})
_MAX_REDIRECTS = 10
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Cookies:
    """One browser's cookies on the one host it talks to (127.0.0.1; a cookie is not tied to a
    port, so every instance behind nginx gets it too): name → value, as Set-Cookie gave them.

    aiohttp's own jar (`SimpleCookie` parsing and filtering per request) and its form encoder were
    a third of the rush client's samples (py-spy on bench/rush.py, 2026-11-24; its CPU fell by a
    quarter without them), on the same two cores as the server. The app sets host-only cookies on path / (session, flash messages, remember
    me), so a name is enough to tell them apart; a cookie whose Max-Age is 0 or less, or whose
    Expires is past, is deleted, as werkzeug's `delete_cookie` asks.
    """

    def __init__(self):
        self.values: dict[str, str] = {}

    def header(self) -> dict[str, str]:
        if not self.values:
            return {}
        return {"Cookie": "; ".join(f"{name}={value}" for name, value in self.values.items())}

    def store(self, set_cookie_headers) -> None:
        for line in set_cookie_headers:
            pair, _, attributes = line.partition(";")
            name, _, value = pair.partition("=")
            name = name.strip()
            if name:
                if _expired(attributes):
                    self.values.pop(name, None)
                else:
                    self.values[name] = value.strip()


def _expired(attributes: str) -> bool:
    for attribute in attributes.split(";"):
        key, _, value = attribute.partition("=")
        key = key.strip().lower()
        if key == "max-age":
            return value.strip().lstrip("-").isdigit() and int(value) <= 0
        if key == "expires":
            try:
                return parsedate_to_datetime(value.strip()).timestamp() <= time.time()
            except (TypeError, ValueError):
                return False
    return False


class Browser:
    """One virtual user. `connector` may be shared (a pool, like nginx's upstream keep-alive).

    It keeps its own cookies (`Cookies`), follows redirects itself (storing each hop's cookies
    first, as a browser does) and sends forms urlencoded."""

    def __init__(self, base: str, connector: aiohttp.BaseConnector | None = None, timeout: float = 60.0):
        if not base.startswith("http://127.0.0.1:"):
            raise ValueError("load goes to 127.0.0.1 only")
        self.base = base.rstrip("/")
        self.status_counts: dict[int, int] = {}
        self.cookies = Cookies()
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(), connector=connector, connector_owner=connector is None,
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base}{path}"

    def _count(self, status: int) -> None:
        self.status_counts[status] = self.status_counts.get(status, 0) + 1

    async def _request(self, method: str, path: str, data: dict | None = None, params=None) -> Page:
        t0 = time.perf_counter()
        url = self._url(path)
        body = None if data is None else urlencode(data).encode()
        hops: list[int] = []
        for _ in range(_MAX_REDIRECTS + 1):
            headers = self.cookies.header() | (_FORM if body is not None else {})
            async with self.session.request(method, url, data=body, params=params, headers=headers,
                                            allow_redirects=False) as resp:
                self.cookies.store(resp.headers.getall("Set-Cookie", ()))
                self._count(resp.status)
                location = resp.headers.get("Location")
                if resp.status not in _REDIRECTS or not location:
                    text = await resp.text()
                    return Page(resp.status, str(resp.url), text, time.perf_counter() - t0, tuple(hops))
                await resp.read()
                hops.append(resp.status)
                url = urljoin(str(resp.url), location)
                if resp.status in _THEN_GET:
                    method, body, params = "GET", None, None
        raise RuntimeError(f"more than {_MAX_REDIRECTS} redirects from {path}")

    async def get(self, path: str, **kwargs) -> Page:
        return await self._request("GET", path, **kwargs)

    async def post(self, path: str, data: dict | None = None) -> Page:
        return await self._request("POST", path, data=data if data is not None else {})

    async def submit(self, form: Form, button: str | None = None, **values) -> Page:
        if form.method != "post":
            return await self.get(form.action, params=form.filled(button, **values))
        return await self.post(form.action, form.filled(button, **values))

    async def post_json(self, path: str, payload: dict, headers: dict | None = None) -> tuple[int, dict | None, float]:
        t0 = time.perf_counter()
        async with self.session.post(self._url(path), json=payload,
                                     headers=self.cookies.header() | (headers or {})) as resp:
            self.cookies.store(resp.headers.getall("Set-Cookie", ()))
            self._count(resp.status)
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = None
            return resp.status, body, time.perf_counter() - t0

    def cookie(self, name: str) -> str | None:
        return self.cookies.values.get(name)

    async def close(self) -> None:
        await self.session.close()


def server_errors(browsers) -> int:
    return sum(n for b in browsers for status, n in b.status_counts.items() if status >= 500)


class LoginFailed(RuntimeError):
    pass


async def log_in(browser: Browser, email: str, password: str, totp_secret: str | None = None) -> Page:
    """The real login: GET the form (CSRF token), POST it, and answer the 2FA step when asked."""
    page = await browser.get("/auth/login")
    page = await browser.submit(page.form("/auth/login"), email=email, password=password)
    if "/auth/2fa" in page.url:
        if not totp_secret:
            raise LoginFailed(f"{email}: the server asks for a second factor")
        import asyncio

        import pyotp

        totp = pyotp.TOTP(totp_secret)
        page = await browser.submit(page.form("/auth/2fa"), code=totp.now())
        if "/auth/2fa" in page.url:  # this step's code was used moments ago (replay guard): next step
            await asyncio.sleep(30.5 - time.time() % 30)
            page = await browser.submit(page.form("/auth/2fa"), code=totp.now())
    if page.status != 200 or "/auth/" in page.url:
        raise LoginFailed(f"{email}: login ended on {page.url} ({page.status})")
    return page
