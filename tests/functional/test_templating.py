"""The layout's links: built once, then remembered per script root; links with values built each time."""
from __future__ import annotations

import re

import pytest
from werkzeug.routing import MapAdapter

from tests.factories import OfferFactory, UserFactory, make_paid_order


@pytest.fixture
def built_urls(monkeypatch):
    """Endpoints built through Werkzeug's URL map, in order."""
    built = []
    original = MapAdapter.build

    def counting_build(adapter, endpoint, values=None, *args, **kwargs):
        built.append(endpoint)
        return original(adapter, endpoint, values, *args, **kwargs)

    monkeypatch.setattr(MapAdapter, "build", counting_build)
    return built


def test_the_layouts_links_are_built_once(client, auth, built_urls):
    auth.login(UserFactory())
    client.get("/cart/")
    first = list(built_urls)
    built_urls.clear()
    page = client.get("/cart/").get_data(as_text=True)
    assert "static" in first and "account.index" in first
    # The stylesheets, scripts and navbar links come remembered; nothing is built again.
    assert "static" not in built_urls and "account.index" not in built_urls and "cart.view_cart" not in built_urls
    assert 'href="/static/vendor/bootstrap/bootstrap.min.css"' in page
    assert 'href="/account/"' in page


def test_remembered_links_follow_the_script_root(client, auth):
    auth.login(UserFactory())
    client.get("/cart/")
    mounted = client.get("/cart/", base_url="http://localhost/shop").get_data(as_text=True)
    assert 'href="/shop/static/vendor/bootstrap/bootstrap.min.css"' in mounted
    assert 'href="/shop/account/"' in mounted
    assert not re.search(r'href="/(static|account)/', mounted)
    again = client.get("/cart/").get_data(as_text=True)
    assert 'href="/static/vendor/bootstrap/bootstrap.min.css"' in again and "/shop/" not in again


def test_links_with_values_are_built_for_each_object(client, auth, built_urls):
    user = UserFactory()
    first, second = (make_paid_order(user, (OfferFactory(), 1)) for _ in range(2))
    auth.login(user)
    client.get("/orders/")
    built_urls.clear()
    page = client.get("/orders/").get_data(as_text=True)
    assert built_urls.count("orders.show_order") >= 2
    assert f'href="/orders/{first.code}"' in page and f'href="/orders/{second.code}"' in page


# --------------------------------------------------------------------------- the navigation bar
@pytest.fixture
def navbar_renders(app):
    """How many times `_navbar.html` itself was rendered."""
    from flask import template_rendered

    rendered = []

    def on_render(_sender, template, context, **_extra):
        if template.name == "_navbar.html":
            rendered.append(context["request"].endpoint)

    template_rendered.connect(on_render, app)
    yield rendered
    template_rendered.disconnect(on_render, app)


def navbar(page: str) -> str:
    return re.search(r'<nav class="navbar.*?</nav>', page, re.DOTALL).group(0)


def test_the_navigation_bar_is_rendered_once_per_kind_of_page_and_visitor(client, auth, navbar_renders):
    auth.login(UserFactory())
    first = client.get("/cart/").get_data(as_text=True)
    second = client.get("/cart/").get_data(as_text=True)
    assert navbar_renders == ["cart.view_cart"]  # the second page's bar was the kept one
    assert navbar(first) == navbar(second)
    client.get("/orders/")  # another page: its own active link
    assert navbar_renders == ["cart.view_cart", "orders.list_orders"]


def test_the_navigation_bar_shows_the_visitors_own_links_count_and_active_page(client, auth):
    anonymous = navbar(client.get("/events/").get_data(as_text=True))
    assert "Log in" in anonymous and "Log out" not in anonymous and "My orders" not in anonymous
    assert 'class="nav-link active" aria-current="page"\n     href="/events/"' in anonymous
    offer = OfferFactory()
    client.post("/cart/add", data={"offer_id": offer.id, "quantity": 2})
    assert "Cart (2)" in navbar(client.get("/events/").get_data(as_text=True))  # the count is part of the kind
    for role, staff_link, admin_link in (("customer", False, False), ("staff", True, False), ("admin", True, True)):
        user = UserFactory(role=role)
        auth.login(user)
        bar = navbar(client.get("/account/").get_data(as_text=True))
        assert "Log out" in bar and "Log in" not in bar and "My orders" in bar
        assert ("Check-in" in bar, "Admin" in bar) == (staff_link, admin_link), role
        assert 'aria-current="page"\n     href="/account/"' in bar
        auth.logout()


def test_each_visitor_gets_their_own_log_out_token_in_the_kept_bar(app, make_app):
    """The bar is kept without its CSRF token: each session's own is filled in, and logs it out.
    On another instance of the app, whose requests get app contexts of their own (a token is
    kept in the app context's `g` for its request)."""
    from app.extensions import db
    from tests.factories import DEFAULT_PASSWORD
    from tests.functional.test_auth_login import csrf_token_from, post_login

    other = make_app(WTF_CSRF_ENABLED=True)
    users = [UserFactory(), UserFactory()]
    db.session.commit()
    clients = [other.test_client(), other.test_client()]
    tokens = []
    for client, user in zip(clients, users, strict=True):
        token = csrf_token_from(client.get("/auth/login").get_data(as_text=True))
        assert post_login(client, user.email, DEFAULT_PASSWORD, csrf_token=token).status_code == 302
        bar = navbar(client.get("/account/").get_data(as_text=True))
        tokens.append(re.search(r'name="csrf_token" value="([^"]+)"', bar).group(1))
    assert tokens[0] != tokens[1] and "__NAVBAR_CSRF_TOKEN__" not in "".join(tokens)
    for client, token in zip(clients, tokens, strict=True):
        assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
        assert client.get("/account/").status_code == 302  # logged out: sent to the login page
