"""Server-rendered pages: authentication, and errors shown as pages, never as tracebacks."""
import base64
import html

import pytest


def basic(credentials):
    return {'Authorization': 'Basic ' + base64.b64encode(credentials.encode()).decode()}


@pytest.fixture
def flower(broker_url, flower_factory):
    return flower_factory(broker_url, enable_events=False)


BAD_CREDENTIALS = [
    {},
    basic('alice:wrong'),
    basic('mallory:secret'),
    basic('alice:secretx'),
    {'Authorization': 'Basic not-base64!'},
    {'Authorization': 'Bearer abc'},
]
BAD_CREDENTIAL_IDS = ['none', 'wrong-password', 'unknown-user', 'longer-password', 'malformed',
                      'other-scheme']


@pytest.mark.parametrize('path', ['/', '/workers?json=1', '/metrics', '/api/workers'])
@pytest.mark.parametrize('headers', BAD_CREDENTIALS, ids=BAD_CREDENTIAL_IDS)
def test_basic_auth_refuses_pages_metrics_and_api_with_a_challenge(
        broker_url, flower_factory, headers, path):
    flower = flower_factory(broker_url, enable_events=False, basic_auth=['alice:secret'])
    status, response_headers, body = flower.fetch(path, headers=headers)
    assert status == 401
    assert response_headers['WWW-Authenticate'] == 'Basic realm="flower"'
    assert 'Authentication required' in body
    assert 'Traceback' not in body


def test_basic_auth_lets_a_user_into_metrics_and_api(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False, basic_auth=['alice:secret'])
    status, headers, body = flower.fetch('/metrics', headers=basic('alice:secret'))
    assert status == 200 and 'flower_worker_online' in body
    status, _, body = flower.fetch('/api/workers', headers=basic('alice:secret'))
    assert status == 200 and body == '{}'


def test_healthcheck_is_open_and_metrics_only_when_asked(broker_url, flower_factory):
    closed = flower_factory(broker_url, enable_events=False, basic_auth=['alice:secret'])
    assert closed.get('/healthcheck') == (200, 'OK')
    assert closed.get('/metrics')[0] == 401
    opened = flower_factory(broker_url, enable_events=False, basic_auth=['alice:secret'],
                            unauthenticated_metrics=True)
    assert opened.get('/metrics')[0] == 200
    assert opened.get('/')[0] == 401
    assert opened.get('/healthcheck') == (200, 'OK')


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
