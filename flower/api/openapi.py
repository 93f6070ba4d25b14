"""``/api/openapi.json``: the API described for machines, as OpenAPI 3.1.

The document is written by hand in ``openapi.json`` beside this module (the
tests check it against the answers the API gives); serving it adds only what
differs between installations: the ``--url_prefix`` and flower's version.
"""
import functools
import json
import os
from typing import Any

import flower
from flower.api import BaseApiHandler

DOCUMENT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'openapi.json')


@functools.cache
def _document_text() -> str:
    with open(DOCUMENT_PATH, encoding='utf-8') as document:
        return document.read()


def api_description(url_prefix: str = '') -> dict[str, Any]:
    """The OpenAPI document of the API served below ``url_prefix`` (``'/flower'``, or ``''``)."""
    document = json.loads(_document_text())
    document['info']['version'] = flower.__version__
    document['servers'][0]['url'] = url_prefix or '/'
    return document


class OpenApiDocument(BaseApiHandler):
    """Served under the API's access rules like every ``/api/`` URL: it holds no
    data, but one rule for the whole of ``/api/`` leaves nothing to reason about."""

    async def get(self) -> None:
        self.write_json(api_description(self.application.url_prefix))
