"""Items 14 and 16 of issue 15: what browsers are told to enforce, and what a visitor sees.

16: a Content-Security-Policy that every page lives with (checked in
Chromium), HSTS under TLS, the same headers on static files, the ``_xsrf``
cookie ``SameSite=Lax`` (and ``Secure`` under TLS), logout only by POST.
14: before login, pages say nothing about the broker.
"""
import http.client
import ssl
import subprocess
import urllib.parse

import pytest

from tests.support.browser import assert_no_browser_problems
from tests.support.flower import FlowerServer
from tests.support.oauth_provider import Client
from tests.support.waiting import wait_for

CSP = "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'"

# Collects what the policy blocked, on every page the browser loads.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(event.violatedDirective + ' ' + event.blockedURI + ' '
                              + event.sourceFile + ':' + event.lineNumber);
});
"""


def test_item16_csp_and_frame_headers_on_pages_json_and_static_files(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False)
    for path in ('/workers', '/tasks/datatable', '/no-such-page', '/static/css/flower.css',
                 '/static/js/flower.js', '/static/no-such-file.js'):
        _, headers, _ = flower.fetch(path)
        assert headers['Content-Security-Policy'] == CSP, path
        assert headers['X-Content-Type-Options'] == 'nosniff', path
        assert headers['X-Frame-Options'] == 'DENY', path
        assert 'Strict-Transport-Security' not in headers, path


@pytest.fixture
def tls_flower(tmp_path, broker_url):
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
                    '-keyout', str(key), '-out', str(cert)], check=True, capture_output=True)
    server = FlowerServer(broker_url, enable_events=False,
                          app_settings={'ssl_options': {'certfile': str(cert),
                                                        'keyfile': str(key)}})
    server.tls_context = ssl.create_default_context(cafile=str(cert))
    with server:
        yield server


def https_get(flower, path):
    connection = http.client.HTTPSConnection('127.0.0.1', flower.options.port, timeout=10,
                                             context=flower.tls_context)
    try:
        connection.request('GET', path)
        response = connection.getresponse()
        response.read()
        return response.status, response.headers
    finally:
        connection.close()


def test_item16_hsts_and_secure_xsrf_cookie_under_tls(tls_flower):
    for path in ('/workers', '/static/css/flower.css'):
        _, headers = https_get(tls_flower, path)
        assert headers['Strict-Transport-Security'].startswith('max-age='), path
        assert headers['X-Content-Type-Options'] == 'nosniff', path
    status, headers = https_get(tls_flower, '/logout')  # a page with a form
    assert status == 200
    xsrf = [cookie for cookie in headers.get_all('Set-Cookie') if cookie.startswith('_xsrf=')]
    assert xsrf and 'Secure' in xsrf[0] and 'SameSite=Lax' in xsrf[0]


def test_item16_xsrf_cookie_is_samesite_lax_over_plain_http(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False)
    _, headers, _ = flower.fetch('/logout')
    xsrf = [cookie for cookie in headers.get_all('Set-Cookie') if cookie.startswith('_xsrf=')]
    assert xsrf and 'SameSite=Lax' in xsrf[0] and 'Secure' not in xsrf[0]


def test_item16_logout_only_by_post_with_the_xsrf_token(oauth_flower):
    client = Client()
    assert client.get(oauth_flower.base_url + '/workers')[0] == 200  # logged in
    status, _, _, body = client.get(oauth_flower.base_url + '/logout')
    assert status == 200 and 'Log out of Flower' in body
    assert client.get(oauth_flower.base_url + '/workers', follow=False)[0] == 200  # still in
    assert client.post(oauth_flower.base_url + '/logout', b'')[0] == 403  # no XSRF token
    assert client.get(oauth_flower.base_url + '/workers', follow=False)[0] == 200
    status, _, _, body = client.post_form(oauth_flower.base_url + '/logout')
    assert status == 200 and 'Logged out' in body
    assert client.get(oauth_flower.base_url + '/workers', follow=False)[0] == 302


@pytest.fixture
def cluster_flower(broker_url, worker_factory, celery_client, flower_factory):
    """A Flower watching a real worker that ran a task."""
    worker = worker_factory(broker_url)
    flower = flower_factory(broker_url)
    wait_for(lambda: flower.call(lambda: worker.hostname in flower.app.events.state.workers),
             what='Flower to hear from the worker')
    result = celery_client(broker_url).send_task('tasks.add', args=(2, 3))
    wait_for(lambda: flower.call(lambda: result.id in flower.app.events.state.tasks),
             what='Flower to see the task')
    flower.worker, flower.task_id = worker, result.id
    return flower


def test_item16_csp_every_page_works_in_chromium_without_violations(page, cluster_flower):
    flower = cluster_flower
    page.add_init_script(RECORD_VIOLATIONS)
    worker = urllib.parse.quote(flower.worker.hostname)
    paths = ['/', '/workers', f'/worker/{worker}', '/tasks', f'/task/{flower.task_id}',
             f'/workflow/{flower.task_id}', '/broker', '/monitor', '/logout', '/no-such-page']
    for path in paths:
        response = page.goto(flower.base_url + path)
        assert response.headers['content-security-policy'] == CSP, path
        page.wait_for_load_state('networkidle')
        if path.startswith('/worker/'):
            for tab in page.locator('[role=tab]').all():
                tab.click()
        if path == '/tasks':
            page.locator('#tasks-table tbody tr').first.wait_for()
        if path.startswith('/workflow/'):
            page.locator('#workflow-graph .wf-node').first.wait_for()
        assert page.evaluate('window.__cspViolations') == [], path
    assert_no_browser_problems(page, allow_failed=[flower.base_url + '/no-such-page'])


def test_item16_logout_button_in_chromium_ends_the_session(page, oauth_flower):
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(oauth_flower.base_url + '/workers')
    assert page.url == oauth_flower.base_url + '/workers'
    page.locator('nav form.logout button').click()
    page.wait_for_url(oauth_flower.base_url + '/logout')
    assert 'Logged out' in page.locator('h1').inner_text()
    assert page.evaluate('window.__cspViolations') == []
    assert not [cookie for cookie in page.context.cookies() if cookie['name'] == 'user']


@pytest.mark.parametrize('auth', ['basic', 'oauth'])
def test_item14_error_pages_before_login_say_nothing_about_the_broker(
        flower_factory, auth, monkeypatch):
    unreachable = 'redis://127.0.0.1:1/0'
    options = ({'basic_auth': ['alice:secret']} if auth == 'basic' else
               {'auth': r'.*@example\.com', 'oauth2_key': 'id', 'oauth2_secret': 'secret',
                'oauth2_redirect_uri': 'http://127.0.0.1/login'})
    flower = flower_factory(unreachable, **options)
    wait_for(lambda: flower.call(lambda: flower.app.events.broker_error),
             what='Flower to fail to reach the broker')
    # The 401 challenge, or (OAuth) the page of a refused login.
    pages = ['/workers', '/no-such-page'] if auth == 'basic' else ['/login?error=denied']
    for path in pages:
        status, body = flower.get(path)
        assert status in (401, 403), path
        for word in ('broker-status', 'Broker unreachable', 'Broker connected',
                     '127.0.0.1:1', 'Connection refused', 'Error 111'):
            assert word not in body, (path, word)
    if auth == 'basic':
        status, body = flower.get('/workers', headers={
            'Authorization': 'Basic YWxpY2U6c2VjcmV0'})  # alice:secret
        assert status == 200 and 'Broker unreachable' in body
