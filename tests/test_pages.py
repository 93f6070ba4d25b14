"""Server-rendered pages: authentication, and errors shown as pages, never as tracebacks."""
import base64
import html

import pytest


def basic(credentials):
    return {'Authorization': 'Basic ' + base64.b64encode(credentials.encode()).decode()}


@pytest.fixture
def flower(broker_url, flower_factory):
    return flower_factory(broker_url, enable_events=False)


@pytest.mark.parametrize('headers', [
    {},
    basic('alice:wrong'),
    basic('mallory:secret'),
    {'Authorization': 'Basic not-base64!'},
    {'Authorization': 'Bearer abc'},
], ids=['none', 'wrong-password', 'unknown-user', 'malformed', 'other-scheme'])
def test_basic_auth_refuses_pages_with_a_challenge(broker_url, flower_factory, headers):
    flower = flower_factory(broker_url, enable_events=False, basic_auth=['alice:secret'])
    status, response_headers, body = flower.fetch('/', headers=headers)
    assert status == 401
    assert response_headers['WWW-Authenticate'] == 'Basic realm="flower"'
    assert 'Authentication required' in body
    assert 'Traceback' not in body


def test_basic_auth_lets_a_configured_user_in(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False,
                            basic_auth=['alice:secret', 'bob:p:ss'])
    for credentials in ('alice:secret', 'bob:p:ss'):
        status, _, body = flower.fetch('/', headers=basic(credentials))
        assert status == 200, credentials
        assert 'workers-table' in body


def test_a_malformed_query_argument_is_a_400_page_naming_it(flower):
    status, headers, body = flower.fetch('/workers?json=perhaps')
    assert status == 400
    assert headers['Content-Type'].startswith('text/html')
    assert "Invalid value for argument 'json': 'perhaps'" in html.unescape(body)
    assert 'Traceback' not in body


def test_an_unknown_page_is_a_404_page(flower):
    status, headers, body = flower.fetch('/no/such/page')
    assert status == 404
    assert headers['Content-Type'].startswith('text/html')
    assert 'Back to the dashboard' in body


def test_security_headers_are_sent_on_pages_and_errors(flower):
    for path in ('/', '/no/such/page'):
        _, headers, _ = flower.fetch(path)
        assert headers['X-Frame-Options'] == 'DENY'
        assert headers['X-Content-Type-Options'] == 'nosniff'
