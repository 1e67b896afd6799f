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
