"""Items 11, 15 and 18 of issue 15: request bodies, the access log and URL prefixes."""
import http.client
import json
import logging

import pytest
import redis

from tests.support.oauth_provider import Client
from tests.support.waiting import wait_for

MB = 1024 * 1024


def post(flower, path, body, headers=None, chunked=False):
    connection = http.client.HTTPConnection('127.0.0.1', flower.options.port, timeout=60)
    try:
        connection.request('POST', path, body=body, encode_chunked=chunked,
                           headers=dict({'Content-Type': 'application/json'}, **(headers or {})))
        response = connection.getresponse()
        return response.status, response.read().decode('utf-8', 'replace')
    finally:
        connection.close()


def queued(broker_url):
    client = redis.Redis.from_url(broker_url)
    try:
        return client.llen('celery')
    finally:
        client.close()


def test_item11_body_limit_default_refuses_11_mb_with_413(broker_url, flower_factory, monkeypatch):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    flower = flower_factory(broker_url, enable_events=False)
    body = json.dumps({'args': ['x' * (11 * MB)]})
    status, text = post(flower, '/api/task/async-apply/tasks.add', body)
    assert status == 413
    assert json.loads(text)['error'] == (
        f"The request body ({len(body)} bytes) is larger than the {10 * MB} bytes Flower "
        "accepts (--max_body_size)")
    assert queued(broker_url) == 0
    assert flower.get('/healthcheck') == (200, 'OK')


@pytest.mark.parametrize('chunked', [False, True], ids=['content-length', 'chunked'])
def test_item11_body_limit_option_sets_the_limit(broker_url, flower_factory, monkeypatch, chunked):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    flower = flower_factory(broker_url, enable_events=False, max_body_size=1000)
    small = json.dumps({'args': ['x' * 900]})
    large = json.dumps({'args': ['x' * 1100]})
    body_of = (lambda text: iter([text.encode()])) if chunked else (lambda text: text)
    assert post(flower, '/api/task/async-apply/no.such.task', body_of(small),
                chunked=chunked)[0] == 404  # within the limit: on to the handler
    status, text = post(flower, '/api/task/async-apply/no.such.task', body_of(large),
                        chunked=chunked)
    assert status == 413 and '--max_body_size' in json.loads(text)['error']


def test_item11_body_limit_page_control_twin_answers_json(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False, max_body_size=1000,
                            unauthenticated_api=True)
    status, text = post(flower, '/control/worker/pool/grow/w@h', 'n=' + '1' * 2000,
                        headers={'Content-Type': 'application/x-www-form-urlencoded'})
    assert status == 413 and '--max_body_size' in json.loads(text)['error']


def test_item15_access_log_redacts_code_and_state(oauth_flower, caplog):
    caplog.set_level(logging.INFO, logger='tornado.access')
    Client().get(f"{oauth_flower.base_url}/login?code=SECRET-CODE-1&state=SECRET-STATE-2"
                 "&next=%2Fworkers")

    def access_lines():
        return [record.getMessage() for record in caplog.records
                if record.name == 'tornado.access']

    # The line is written once the answer is sent, on Flower's thread.
    wait_for(lambda: any('/login?' in line for line in access_lines()),
             what='the access log line of the login')
    lines = access_lines()
    for line in lines:
        assert 'SECRET-CODE-1' not in line and 'SECRET-STATE-2' not in line, line
    login_line = next(line for line in lines if '/login?' in line)
    assert 'code=[redacted]' in login_line and 'state=[redacted]' in login_line
    assert 'next=%2Fworkers' in login_line


@pytest.mark.parametrize('prefix, other', [('fl.wer', 'flXwer'), ('a+b', 'aab'),
                                           ('ops(1)', 'ops1')])
def test_item18_url_prefix_is_matched_literally(broker_url, flower_factory, prefix, other):
    flower = flower_factory(broker_url, enable_events=False, url_prefix=prefix)
    assert flower.get(f'/{prefix}/workers')[0] == 200
    assert flower.get(f'/{other}/workers')[0] == 404
    assert flower.get(f'/{prefix}')[0] == 200  # redirected to the prefix with a slash
