"""The load tests' browser keeps its cookies and follows redirects as a browser does (bench/browser.py)."""
from __future__ import annotations

import asyncio
import concurrent.futures

from bench.browser import Browser, Cookies, log_in
from tests.factories import DEFAULT_PASSWORD, UserFactory


def test_cookies_are_set_replaced_and_deleted_by_name():
    cookies = Cookies()
    cookies.store(["guichet_session=abc; Expires=Wed, 01 Jan 2100 00:00:00 GMT; HttpOnly; Path=/",
                   'guichet_flash="x.y"; HttpOnly; Path=/; SameSite=Lax'])
    assert cookies.header() == {"Cookie": 'guichet_session=abc; guichet_flash="x.y"'}
    cookies.store(["guichet_session=def; Path=/"])
    cookies.store(["guichet_flash=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"])
    assert cookies.values == {"guichet_session": "def"}
    cookies.store(["guichet_session=; Max-Age=0; Path=/"])
    assert cookies.header() == {}


def test_a_browser_logs_in_follows_redirects_and_logs_out(app, live_server):
    from app.extensions import db

    user = UserFactory()
    db.session.commit()
    email = user.email  # read here: the journey runs in another thread, outside the app context

    async def journey():
        browser = Browser(live_server.url)
        try:
            home = await log_in(browser, email, DEFAULT_PASSWORD)  # GET the form, POST it, follow 302
            account = await browser.get("/account/")
            logged_out = await browser.submit(account.form("/auth/logout"))
            after = await browser.get("/account/")
            return home, account, logged_out, after, browser.status_counts
        finally:
            await browser.close()

    # In a thread of its own: the browser tests' Playwright may leave an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        home, account, logged_out, after, statuses = thread.submit(lambda: asyncio.run(journey())).result()
    assert home.history == (302,) and home.status == 200 and email in account.text
    assert logged_out.history == (302,) and "logged out" in logged_out.text.lower()
    assert after.history == (302,) and after.path.startswith("/auth/login")  # the session is gone
    assert statuses[302] == 3 and 500 not in statuses
