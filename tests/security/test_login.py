"""Item 1 of issue 15: after an OAuth login, ``next`` never sends the browser to another site."""
from urllib.parse import quote, urlsplit

import pytest

from flower.views.auth import is_safe_redirect
from tests.support.oauth_provider import Client

# Values of ``next`` as Flower receives them (after the query string is decoded).
HOSTILE_NEXT = {
    'tab': '/\t/evil.example',
    'cr': '/\r/evil.example',
    'lf': '/\n/evil.example',
    'crlf-header': '/\r\nSet-Cookie: x=1',
    'backslash': '/\\evil.example',
    'backslash-slash': '/\\/evil.example',
    'encoded-tab': '/%09/evil.example',
    'encoded-backslash': '/%5Cevil.example',
    'encoded-slash': '/%2F/evil.example',
    'encoded-crlf': '/%0D%0A/evil.example',
    'leading-space': ' //evil.example',
    'scheme': 'https://evil.example/',
    'protocol-relative': '//evil.example/',
    'unicode-space': '/\u3000/evil.example',
}


SITE_PATHS = ['/workers', '/task/a%2Fb', '/tasks?search=a%20b', '/worker/celery@host']


def test_item01_open_redirect_only_paths_of_the_site_are_kept():
    kept_hostile = {key: value for key, value in HOSTILE_NEXT.items() if is_safe_redirect(value)}
    assert kept_hostile == {}
    assert [path for path in SITE_PATHS if is_safe_redirect(path)] == SITE_PATHS


def test_item01_open_redirect_line_breaks_in_next_are_not_a_server_error(oauth_flower):
    client = Client()
    for key in ('cr', 'lf', 'crlf-header'):
        url = f"{oauth_flower.base_url}/login?next={quote(HOSTILE_NEXT[key], safe='')}"
        status, final_url, _, _ = client.get(url)
        assert (status, final_url) == (200, oauth_flower.base_url + '/'), key


@pytest.mark.parametrize('key', ['tab', 'cr', 'lf', 'backslash', 'backslash-slash',
                                 'encoded-tab', 'encoded-backslash', 'encoded-crlf'])
def test_item01_open_redirect_chromium_stays_on_the_site_after_login(page, oauth_flower, key):
    """The real browser follows the whole login and lands on Flower's dashboard."""
    left_the_site = []

    def outside(route):
        left_the_site.append(route.request.url)
        route.fulfill(status=200, body='outside')

    page.route(lambda url: urlsplit(url).hostname != '127.0.0.1', outside)
    page.goto(f"{oauth_flower.base_url}/login?next={quote(HOSTILE_NEXT[key], safe='')}")
    assert left_the_site == []
    assert page.url == oauth_flower.base_url + '/'
    assert page.locator('#workers-table').count() == 1


def test_item17_login_without_oauth_configured_is_a_404(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False)
    status, headers, body = flower.fetch('/login')
    assert status == 404
    assert 'OAuth login (--auth) is not configured' in body
    assert 'Location' not in headers
    basic = flower_factory(broker_url, enable_events=False, basic_auth=['alice:secret'])
    assert basic.fetch('/login')[0] == 404


def test_item17_the_provider_error_text_is_not_echoed(oauth_flower):
    text = 'Call+us+at+evil.example+to+unlock+your+account'
    status, _, _, body = Client().get(f"{oauth_flower.base_url}/login?error={text}")
    assert status == 403
    assert 'Login refused by Google' in body
    assert 'evil.example' not in body and 'unlock' not in body
