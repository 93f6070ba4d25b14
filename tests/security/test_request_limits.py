"""Hostile request bodies and parameters are 400s, never 500s (item 10 of issue 15)."""
import json
import sys

import pytest
import requests

from tests.support.processes import celery_client

DEEP = 100_000
HUGE_NUMBERS = [str(sys.maxsize + 1), str(10**30), str(10**9 + 1)]


def add(x, y):
    return x + y


@pytest.fixture
def flower(broker_url, flower_factory, monkeypatch, tmp_path, request):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    capp = celery_client(broker_url)
    capp.task(name='security.add')(add)
    persistent = getattr(request, 'param', False)
    server = flower_factory(broker_url, capp=capp, inspect_timeout=300, enable_events=False,
                            persistent=persistent, db=str(tmp_path / 'history'))
    yield server
    capp.close()


def post(flower, path, body):
    return requests.post(flower.base_url + path, data=body, timeout=30,
                         headers={'Content-Type': 'application/json'})


@pytest.mark.parametrize('path', ['/api/task/apply/security.add', '/api/task/async-apply/security.add',
                                  '/api/task/send-task/security.add'])
@pytest.mark.parametrize('body', [
    '[' * DEEP + ']' * DEEP,
    '{"args": ' + '[' * DEEP + ']' * DEEP + '}',
    '{"kwargs": {"x": ' + '{"a": ' * DEEP + '1' + '}' * DEEP + '}}',
], ids=['top-level', 'in-args', 'in-kwargs'])
def test_item10_json_nested_100000_deep_is_a_400(flower, path, body):
    response = post(flower, path, body)
    assert response.status_code == 400, response.text[:300]
    assert response.json() == {'error': 'Malformed JSON body: nested too deeply'}


@pytest.mark.parametrize('flower', [False, True], ids=['memory', 'persistent'], indirect=True)
@pytest.mark.parametrize('number', HUGE_NUMBERS)
@pytest.mark.parametrize('path', ['/api/tasks?limit={}', '/api/tasks?offset={}',
                                  '/api/tasks?offset={}&limit=10',
                                  '/api/tasks?offset={}&search=x',
                                  '/tasks/datatable?start={}', '/tasks/datatable?start={}&search[value]=x'])
def test_item10_counts_beyond_the_maximum_are_a_400(flower, path, number):
    status, body = flower.get(path.format(number))
    assert status == 400, body[:300]
    message = json.loads(body)['error']
    assert '1000000000' in message, message
    assert flower.get(path.format(10**9))[0] == 200
