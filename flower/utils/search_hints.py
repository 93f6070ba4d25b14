"""Warnings about a task search that parses but is probably not what was meant.

:func:`flower.utils.search.parse_query` accepts these searches (the API answers
them as it always did); the tasks page shows the warnings under its search box.
"""
import re

from celery import states

from flower.utils.search import PREFIXED_FIELDS, search_tokens

_FIELD_LIKE = re.compile(r'[A-Za-z_]+')


def search_warnings(raw: str | None) -> list[str]:
    """What ``parse_query`` reads without complaint but probably not as meant, one
    sentence each: a prefix without a value (``result:``, ignored), a state no task
    can have, a keyword-less ``kwargs:=x``, and a word that looks like a field but
    is none (``name:add``, searched as text; not a URL). A search that cannot be
    parsed at all is a ``QuerySyntaxError`` instead."""
    warnings = []
    for token in search_tokens(raw or '')[0]:
        prefix, colon, rest = token.partition(':')
        value = rest.replace('"', '')
        if colon and prefix in PREFIXED_FIELDS:
            if not value:
                warnings.append(f"'{token}' has no value after the colon: ignored")
            elif prefix == 'state':
                warnings += [f"'{state}' is not a task state: no task matches it"
                             for state in value.split(',')
                             if state and state.upper() not in states.ALL_STATES]
            elif prefix == 'kwargs' and value.startswith('='):
                warnings.append(f"'{token}' names no keyword before '='")
        elif colon and _FIELD_LIKE.fullmatch(prefix) and not rest.startswith('/'):
            warnings.append(f"'{prefix}:' is not a search field (args, kwargs, result, state): "
                            f"'{token}' is searched as text")
    return warnings
