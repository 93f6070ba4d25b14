"""``/api/openapi.json``: the document is valid OpenAPI 3.1, describes every API route
and no other, and is served below the URL prefix under the API's access rules.

That the answers match the document is checked by every API test: the test
clients check each answer they receive (see :mod:`tests.support.openapi`).
"""
import json
import re

import pytest
from openapi_spec_validator import validate

import flower
from flower.api.openapi import DOCUMENT_PATH, api_description
from flower.tasks import SORT_FIELDS, TASK_FIELDS
from flower.urls import routes
from tests.support.flower import make_options
from tests.support.openapi import api_document


def schema(name):
    return api_description()['components']['schemas'][name]


@pytest.mark.parametrize('url_prefix', ['', '/flower'])
def test_the_document_is_valid_openapi_3_1(url_prefix):
    document = api_description(url_prefix)

    validate(document)
    assert document['openapi'].startswith('3.1.')
    assert document['servers'] == [{'url': url_prefix or '/',
                                    'description': "This flower; the URL carries its --url_prefix."}]


def test_every_api_route_has_a_path_in_the_document_and_every_path_a_route():
    def as_template(pattern):
        path = pattern.removesuffix('/?').replace('\\.', '.')
        return re.sub(r'\([^)]*\)', '{}', path)

    routed = {as_template(route[0]) for route in routes(make_options())
              if isinstance(route, tuple) and route[0].startswith('/api/')}
    documented = {re.sub(r'\{[^}]+\}', '{}', path) for path in api_description()['paths']}

    assert routed == documented


def test_the_task_fields_and_sort_fields_are_the_ones_flower_gives_and_takes():
    documented = set(schema('TaskFields')['properties'])
    sortable = {value.removeprefix('-') for value in schema('SortBy')['enum']}

    assert set(TASK_FIELDS) <= documented
    assert set(schema('ListedTask')['required']) <= set(TASK_FIELDS)
    assert set(schema('TaskInfo')['required']) - {'task-id'} <= set(TASK_FIELDS)
    assert sortable <= SORT_FIELDS


def test_an_answer_the_document_does_not_allow_fails_with_what_is_wrong():
    document = api_document()

    wrong = re.escape("at $['task-types'][0]: 1 is not of type 'string'")
    with pytest.raises(AssertionError, match=f"(?s)GET /api/task/types answered 200 .*{wrong}"):
        document.check('GET', '/api/task/types', 200, 'application/json', '{"task-types": [1]}')
    with pytest.raises(AssertionError, match="a status the OpenAPI document does not list"):
        document.check('GET', '/api/task/types', 404, 'application/json', '{"error": "x"}')
    with pytest.raises(AssertionError, match="not a JSON error"):
        document.check('DELETE', '/api/tasks', 405, 'text/html', '<html>')
    document.check('GET', '/api/task/info/some-id/', 404, 'application/json', '{"error": "no"}')


def test_the_document_is_served_below_the_url_prefix_under_the_api_rules(
        broker_url, flower_factory, monkeypatch):
    server = flower_factory(broker_url, enable_events=False, url_prefix='flower')
    monkeypatch.delenv('FLOWER_UNAUTHENTICATED_API')

    status, _ = server.get('/flower/api/openapi.json')
    assert status == 401
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    status, headers, body = server.fetch('/flower/api/openapi.json')
    assert status == 200
    assert headers['Content-Type'] == 'application/json; charset=UTF-8'
    served = json.loads(body)
    assert served['servers'][0]['url'] == '/flower'
    assert served['info']['version'] == flower.__version__
    with open(DOCUMENT_PATH, encoding='utf-8') as written:
        assert served['paths'] == json.load(written)['paths']
