"""Every answer the tests get from flower's API is checked against the API's OpenAPI document.

:func:`check_api_answer` is called where the test clients receive answers
(:class:`tests.support.api_cluster.Api`, :meth:`tests.support.flower.FlowerServer.fetch`,
:func:`tests.support.command.get_json`), so each API test also checks the
document (``flower/api/openapi.json``) without saying so: an answer whose
status is not documented for its operation, or whose JSON does not match the
documented schema, fails the test that received it.
"""
import functools
import json
import re
import urllib.parse

import jsonschema
import referencing
import referencing.jsonschema

from flower.api.openapi import api_description

DOCUMENT_URI = 'urn:flower:openapi'
JSON = 'application/json'


class ApiDescription:
    """The document's operations, found by method and path, and their answer schemas."""

    def __init__(self, document):
        self.document = document
        resource = referencing.Resource(document, referencing.jsonschema.DRAFT202012)
        self.registry = referencing.Registry().with_resource(DOCUMENT_URI, resource)
        # Fixed paths first: /api/task/types is not the task 'types' of /api/task/info/{taskid}.
        templates = sorted(document['paths'], key=lambda path: '{' in path)
        self.patterns = [(template, re.compile(re.sub(r'\\\{[^}]+\\\}', '.+', re.escape(template))))
                         for template in templates]

    def template_of(self, path):
        """The document's path that ``path`` (the prefix removed) is an instance of, or None."""
        if path != '/' and path.endswith('/'):
            path = path[:-1]
        for template, pattern in self.patterns:
            if pattern.fullmatch(path):
                return template
        return None

    def schema_errors(self, instance, pointer):
        """The messages of ``instance``'s errors against the schema at ``pointer``."""
        validator = jsonschema.Draft202012Validator({'$ref': f'{DOCUMENT_URI}#{pointer}'},
                                                    registry=self.registry)
        return [f"at {error.json_path}: {error.message}"
                for error in sorted(validator.iter_errors(instance), key=lambda e: e.json_path)]

    def check(self, method, path, status, content_type, body):
        """Raise an ``AssertionError`` naming what in the answer the document does not allow."""
        media_type = (content_type or '').split(';')[0].strip().lower()
        where = f"{method} {path} answered {status}"
        template = self.template_of(path)
        operation = self.document['paths'].get(template, {}).get(method.lower())
        if operation is None:
            # No endpoint for this URL or method: the answer must still be a JSON error.
            assert status >= 400, f"{where}, but the OpenAPI document has no such operation"
            assert media_type == JSON, f"{where} with {content_type!r}, not a JSON error"
            self._assert_valid(where, body, '/components/schemas/Error')
            return
        responses = operation['responses']
        assert str(status) in responses, (
            f"{where}, a status the OpenAPI document does not list for {method} {template} "
            f"(it lists {', '.join(responses)}); body: {body[:300]!r}")
        pointer = _pointer('paths', template, method.lower(), 'responses', str(status))
        response = responses[str(status)]
        if '$ref' in response:
            pointer = response['$ref'].removeprefix('#')
            response = self._at(pointer)
        content = response.get('content', {})
        assert media_type in content, (
            f"{where} with {content_type!r}; the OpenAPI document says {', '.join(content)}")
        if media_type == JSON:
            self._assert_valid(where, body, pointer + _pointer('content', JSON, 'schema'))

    def _assert_valid(self, where, body, pointer):
        try:
            instance = json.loads(body)
        except ValueError as exc:
            raise AssertionError(f"{where} with a body that is not JSON ({exc}): {body[:300]!r}") \
                from None
        errors = self.schema_errors(instance, pointer)
        assert not errors, (f"{where} with JSON the OpenAPI document does not allow (schema "
                            f"#{pointer}):\n  " + '\n  '.join(errors[:10]))

    def _at(self, pointer):
        item = self.document
        for part in pointer.strip('/').split('/'):
            item = item[part.replace('~1', '/').replace('~0', '~')]
        return item


def _pointer(*parts):
    return ''.join('/' + part.replace('~', '~0').replace('/', '~1') for part in parts)


@functools.cache
def api_document():
    """The API's description, as flower serves it without a URL prefix."""
    return ApiDescription(api_description())


def check_api_answer(method, url, status, content_type, body, url_prefix=''):
    """Check an answer from flower if ``url`` is an API URL (below ``url_prefix``); others pass.

    ``body`` is the answer's text; only JSON answers are read.
    """
    path = urllib.parse.urlsplit(url).path
    prefix = '/' + url_prefix.strip('/') if url_prefix and url_prefix.strip('/') else ''
    if not path.startswith(prefix + '/api'):
        return
    path = path[len(prefix):]
    if path == '/api' or path.startswith('/api/'):
        api_document().check(method.upper(), path, status, content_type, body)
