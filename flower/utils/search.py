"""The task search syntax shared by ``/api/tasks`` and the tasks page.

``foo`` matches tasks with ``foo`` in their args, kwargs or result;
``args:foo`` and ``result:foo`` look in one of those only; ``kwargs:foo=bar``
wants a keyword argument ``foo`` equal to ``bar`` (``kwargs:foo`` only wants
the keyword); ``state:FAILURE`` keeps tasks in that state (several ``state:``
terms, or ``state:A,B``, mean any of them). A term with spaces is quoted:
``args:"hello world"``. Every term must match; text comparisons ignore case.
"""
import ast
import re

# A token is a run of non-blank characters and quoted strings (quotes may
# contain blanks); an unbalanced quote runs to the end of the input.
_TOKEN = re.compile(r'(?:[^\s"]|"[^"]*"|"[^"]*$)+')
_PREFIXED = ('args', 'kwargs', 'result', 'state')


def _unquote(text):
    return text.replace('"', '')


def parse_search_terms(raw):
    """Parse a search string into ``{'any', 'args', 'kwargs', 'result', 'state'}``.

    ``any``, ``args`` and ``result`` are lists of texts, ``kwargs`` maps
    keyword names to the wanted value (``None``: any value), ``state`` is a
    list of upper-case state names.
    """
    terms = {'any': [], 'args': [], 'kwargs': {}, 'result': [], 'state': []}
    for token in _TOKEN.findall(raw or ''):
        prefix, colon, rest = token.partition(':')
        if not colon or prefix not in _PREFIXED:
            text = _unquote(token)
            if text:
                terms['any'].append(text)
            continue
        value = _unquote(rest)
        if not value:
            continue
        if prefix == 'kwargs':
            key, equals, wanted = value.partition('=')
            terms['kwargs'][key] = wanted if equals else None
        elif prefix == 'state':
            terms['state'].extend(state.upper() for state in value.split(',') if state)
        else:
            terms[prefix].append(value)
    return terms


def _text(value):
    return '' if value is None else str(value)


def _contains(haystack, needle):
    return needle.lower() in haystack.lower()


def _kwargs_mapping(kwargs):
    """The task's kwargs as a dict, or ``None`` if they are not a readable literal.

    Events carry kwargs as their repr, possibly shortened by the worker.
    """
    if isinstance(kwargs, dict):
        return kwargs
    try:
        value = ast.literal_eval(_text(kwargs))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _kwarg_matches(kwargs, key, wanted):
    mapping = _kwargs_mapping(kwargs)
    if mapping is None:
        # Shortened repr: look for the ``'key': value`` pair in the text.
        value_pattern = r'[^,}]*' if wanted is None else r'''['"]?''' + re.escape(wanted) + r'''['"]?'''
        pattern = r'''['"]''' + re.escape(key) + r'''['"]\s*:\s*''' + value_pattern + r'\s*[,}]'
        return re.search(pattern, _text(kwargs), re.IGNORECASE) is not None
    if key not in mapping:
        return False
    return wanted is None or str(mapping[key]).lower() == wanted.lower()


def satisfies_search_terms(task, terms):
    """True if ``task`` matches every term of :func:`parse_search_terms`'s result."""
    if terms['state'] and task.state not in terms['state']:
        return False
    args, kwargs, result = _text(task.args), _text(task.kwargs), _text(task.result)
    for text in terms['any']:
        if not (_contains(args, text) or _contains(kwargs, text) or _contains(result, text)):
            return False
    if not all(_contains(args, text) for text in terms['args']):
        return False
    if not all(_contains(result, text) for text in terms['result']):
        return False
    return all(_kwarg_matches(task.kwargs, key, wanted) for key, wanted in terms['kwargs'].items())
