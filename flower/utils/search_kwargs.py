"""How a ``kwargs:key=value`` search term reads a task's keyword arguments.

Events carry kwargs as their repr, possibly shortened by the worker: a repr
that reads as a literal is matched as a dict; one cut short is scanned as
text (:func:`kwarg_in_text`), in time linear in its length.
"""
import ast
import functools
import re
from typing import Any

_QUOTES = '\'"'
_BLANKS = re.compile(r'\s*')


def kwargs_mapping(kwargs: Any) -> dict | None:
    """The task's kwargs as a dict, or ``None`` if they are not a readable literal.

    Events carry kwargs as their repr, possibly shortened by the worker. Many
    tasks carry the same short kwargs, so their readings are remembered: reading
    one costs tens of microseconds, more than the rest of matching a task.
    """
    if isinstance(kwargs, dict):
        return kwargs
    if len(kwargs) <= MAX_REMEMBERED_KWARGS:
        return _remembered_kwargs_mapping(kwargs)
    return _read_kwargs(kwargs)


def _read_kwargs(kwargs):
    try:
        value = ast.literal_eval(kwargs)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


#: The longest kwargs text whose reading is remembered, and how many are.
MAX_REMEMBERED_KWARGS = 512
_remembered_kwargs_mapping = functools.lru_cache(maxsize=4096)(_read_kwargs)


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


def kwarg_in_text(text: str, key: str, wanted: str | None) -> bool:
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
