"""Item 3 of issue 15: a Flower without authentication cannot be driven by any web page.

Without authentication every request that changes something (the pages'
``/control/*`` buttons as well as the API) is refused unless opened on
purpose, and requests naming a host Flower does not answer to (DNS
rebinding) get a 400 before anything else happens.
"""
import http.client
import json
import socket
import types

import pytest

GROW = '/control/worker/pool/grow/somebody@somewhere'
FORGED_XSRF = {'Cookie': '_xsrf=made-up', 'X-Xsrftoken': 'made-up',
               'Content-Type': 'application/x-www-form-urlencoded'}


def send(flower, method, path, headers=None, body=None):
    """``(status, headers, body text)`` of one raw HTTP request (any Host header)."""
    connection = http.client.HTTPConnection('127.0.0.1', flower.options.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode('utf-8', 'replace')
    finally:
        connection.close()


@pytest.mark.parametrize('path', [
    GROW,
    '/control/worker/shutdown/somebody@somewhere',
    '/control/task/revoke/0b9a7b0e-0000-4000-8000-000000000000?terminate=true',
    '/control/task/rate-limit/tasks.add',
    '/control/worker/queue/add-consumer/somebody@somewhere',
    '/control/task/retry/0b9a7b0e-0000-4000-8000-000000000000',
    '/control/tasks/revoke',
    '/control/tasks/retry',
])
def test_item03_no_auth_control_twins_refuse_a_forged_xsrf_post(
        broker_url, flower_factory, monkeypatch, path):
    monkeypatch.delenv('FLOWER_UNAUTHENTICATED_API', raising=False)
    flower = flower_factory(broker_url, enable_events=False)
    status, _, body = send(flower, 'POST', path, FORGED_XSRF, body='')
    assert status == 403, body
    assert json.loads(body)['error'].startswith('Control commands are refused: no authentication')
    assert flower.get('/workers')[0] == 200  # reading needs no authentication


def test_item03_no_auth_control_opens_with_the_option_or_the_variable(
        broker_url, flower_factory, monkeypatch):
    monkeypatch.delenv('FLOWER_UNAUTHENTICATED_API', raising=False)
    opened = flower_factory(broker_url, enable_events=False, unauthenticated_api=True)
    status, _, body = send(opened, 'POST', GROW, FORGED_XSRF, body='')
    assert status == 404 and 'Unknown worker' in body  # past the access checks
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    by_variable = flower_factory(broker_url, enable_events=False)
    assert send(by_variable, 'POST', GROW, FORGED_XSRF, body='')[0] == 404


@pytest.mark.parametrize('path', ['/workers', '/api/workers', '/static/css/flower.css',
                                  '/no-such-page', GROW])
def test_item03_rebinding_host_names_get_400(broker_url, flower_factory, path):
    flower = flower_factory(broker_url, enable_events=False, unauthenticated_api=True)
    port = flower.options.port
    method = 'POST' if path == GROW else 'GET'
    status, _, body = send(flower, method, path, dict(FORGED_XSRF, Host=f'evil.example:{port}'),
                           body='' if method == 'POST' else None)
    assert status == 400, body
    assert '--allowed_hosts' in body
    if path.startswith('/api/'):
        assert json.loads(body)['error'].startswith('Flower does not answer to the host name')


def test_item03_rebinding_loopback_names_and_addresses_are_answered(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False)
    port = flower.options.port
    for host in (f'localhost:{port}', f'127.0.0.1:{port}', 'LOCALHOST', f'[::1]:{port}'):
        assert send(flower, 'GET', '/workers', {'Host': host})[0] == 200, host
    assert send(flower, 'GET', '/workers', {'Host': f'rebound.example:{port}'})[0] == 400
    assert send(flower, 'GET', '/healthcheck', {'Host': 'probe.example'})[:1] == (200,)


def test_item03_rebinding_allowed_hosts_lists_the_public_names(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False,
                            allowed_hosts=['flower.example.com', '.ops.example.org'])
    for host, status in (('flower.example.com', 200), ('FLOWER.example.com.:443', 200),
                         ('a.ops.example.org', 200), ('ops.example.org', 200),
                         ('evil-ops.example.org', 400), ('example.com', 400),
                         ('localhost', 200), ('10.1.2.3', 200)):
        assert send(flower, 'GET', '/workers', {'Host': host})[0] == status, host
    anything = flower_factory(broker_url, enable_events=False, allowed_hosts=['*'])
    assert send(anything, 'GET', '/workers', {'Host': 'whatever.example'})[0] == 200


def test_item03_rebinding_default_names_follow_the_bound_address():
    from flower.app import allowed_host_names, host_allowed

    def names(**options):
        return allowed_host_names(types.SimpleNamespace(
            **dict({'allowed_hosts': [], 'address': '', 'unix_socket': ''}, **options)))

    assert names(address='127.0.0.1') == {'127.0.0.1'}
    assert names(address='flower.internal') == {'flower.internal'}
    every_interface = names(address='')
    assert socket.gethostname().lower() in every_interface
    assert names(address='0.0.0.0') == every_interface
    assert not host_allowed('evil.example', names(address='127.0.0.1'))
    assert host_allowed('localhost:5555', names(address='127.0.0.1'))
    assert not host_allowed('evil.example', every_interface)
    assert host_allowed(f'{socket.gethostname()}:5555', every_interface)
    assert host_allowed('192.168.1.20:5555', every_interface)
    assert names(allowed_hosts=['*']) is None
    assert names(allowed_hosts=['Flower.Example.com:8443']) == {'flower.example.com'}
