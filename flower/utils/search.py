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
from typing import Any

#: The longest search accepted, in characters, and the most terms it may have.
MAX_SEARCH_LENGTH = 1000
MAX_SEARCH_TERMS = 20
#: A term is matched against this many characters of each field at most.
MAX_FIELD_LENGTH = 65536

# A token is a run of non-blank characters and quoted strings (quotes may
# contain blanks); an unbalanced quote runs to the end of the input.
_TOKEN = re.compile(r'(?:[^\s"]|"[^"]*"|"[^"]*$)+')
_PREFIXED = ('args', 'kwargs', 'result', 'state')
_QUOTES = '\'"'
_BLANKS = re.compile(r'\s*')


class SearchTooLarge(ValueError):
    """The search is longer, or has more terms, than Flower accepts."""


def _unquote(text):
    return text.replace('"', '')


def check_search_size(raw: str) -> None:
    """Refuse a search longer than :data:`MAX_SEARCH_LENGTH` or with more terms than
    :data:`MAX_SEARCH_TERMS`: every term costs a pass over every task."""
    if len(raw) > MAX_SEARCH_LENGTH:
        raise SearchTooLarge(f"the search is {len(raw)} characters long; at most "
                             f"{MAX_SEARCH_LENGTH} are accepted")
    count = sum(1 for _ in _TOKEN.finditer(raw))
    if count > MAX_SEARCH_TERMS:
        raise SearchTooLarge(f"the search has {count} terms; at most {MAX_SEARCH_TERMS} "
                             "are accepted")


def parse_search_terms(raw: str | None) -> dict[str, Any]:
    """Parse a search string into ``{'any', 'args', 'kwargs', 'result', 'state'}``.

    ``any``, ``args`` and ``result`` are lists of texts, ``kwargs`` maps
    keyword names to the wanted value (``None``: any value), ``state`` is a
    list of upper-case state names. A search too large is a
    :class:`SearchTooLarge` error.
    """
    check_search_size(raw or '')
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
    """The field as text, cut to :data:`MAX_FIELD_LENGTH` characters."""
    return '' if value is None else str(value)[:MAX_FIELD_LENGTH]


def _kwargs_mapping(kwargs):
    """The task's kwargs as a dict, or ``None`` if they are not a readable literal.

    Events carry kwargs as their repr, possibly shortened by the worker.
    """
    if isinstance(kwargs, dict):
        return kwargs
    try:
        value = ast.literal_eval(kwargs)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _skip_blanks(text, position):
    return _BLANKS.match(text, position).end()


def _value_follows(text, position, wanted):
    """``wanted`` (lower case), maybe quoted, then blanks and ``,`` or ``}`` at ``position``."""
    starts = [position]
    if position < len(text) and text[position] in _QUOTES:
        starts.append(position + 1)
    for start in starts:
        if not text.startswith(wanted, start):
            continue
        end = start + len(wanted)
        for after in (end, end + 1) if end < len(text) and text[end] in _QUOTES else (end,):
            after = _skip_blanks(text, after)
            if after < len(text) and text[after] in ',}':
                return True
    return False


def _kwarg_in_text(text, key, wanted):
    """Whether the shortened kwargs repr ``text`` (lower case) has ``'key': wanted``.

    Plain scanning, linear in the text: a regular expression with nested
    repetitions took seconds on a planted run of blanks.
    """
    any_terminator = max(text.rfind(','), text.rfind('}'))
    position = text.find(key)
    while position != -1:
        before, after = position - 1, position + len(key)
        if before >= 0 and text[before] in _QUOTES and after < len(text) and text[after] in _QUOTES:
            value_start = _skip_blanks(text, after + 1)
            if value_start < len(text) and text[value_start] == ':':
                value_start = _skip_blanks(text, value_start + 1)
                if wanted is None:
                    if any_terminator >= value_start:
                        return True
                elif _value_follows(text, value_start, wanted):
                    return True
        position = text.find(key, position + 1)
    return False


def _kwarg_matches(mapping, lowered_kwargs, key, wanted):
    if mapping is None:
        return _kwarg_in_text(lowered_kwargs, key.lower(), None if wanted is None else wanted.lower())
    if key not in mapping:
        return False
    return wanted is None or str(mapping[key]).lower() == wanted.lower()


def satisfies_search_terms(task: Any, terms: dict[str, Any]) -> bool:
    """True if ``task`` matches every term of :func:`parse_search_terms`'s result.

    Each field is cut to :data:`MAX_FIELD_LENGTH` characters and lower-cased
    once, whatever the number of terms.
    """
    if terms['state'] and task.state not in terms['state']:
        return False
    kwargs_text = _text(task.kwargs)
    args, kwargs, result = _text(task.args).lower(), kwargs_text.lower(), _text(task.result).lower()
    for text in terms['any']:
        needle = text.lower()
        if not (needle in args or needle in kwargs or needle in result):
            return False
    if not all(text.lower() in args for text in terms['args']):
        return False
    if not all(text.lower() in result for text in terms['result']):
        return False
    if not terms['kwargs']:
        return True
    mapping = _kwargs_mapping(task.kwargs if isinstance(task.kwargs, dict) else kwargs_text)
    return all(_kwarg_matches(mapping, kwargs, key, wanted)
               for key, wanted in terms['kwargs'].items())
