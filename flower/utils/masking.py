"""Hide secrets in what workers report before any page or API answer shows it.

Celery workers censor their configuration only partly: the broker connection
in ``stats`` carries its transport options as they are, a setting whose name
does not look secret is sent whole even when it holds a connection string,
and a dict under a secret-looking name is recursed into rather than hidden.
Flower masks again, by name and by the passwords written inside connection
strings, in every answer that carries ``stats`` or ``conf``
(:func:`mask_worker_info`).

All of it runs in time linear in the text: workers' values are untrusted and
may be megabytes long.
"""
import re
from typing import Any

MASK = '********'
#: What replaces the password of a URL (``redis://user:****@host``).
URL_PASSWORD_MASK = '****'

#: Setting names whose values are secret, masked whole (nested dicts and lists too).
SECRET_NAME = re.compile(r'API|TOKEN|KEY|SECRET|PASS|PWD|AUTH|CREDENTIAL|PRIVATE|DSN|SIGNATURE|'
                         r'DATABASE|BEAT_DBURI', re.IGNORECASE)

#: ``password=...`` in libpq-style key/value connection strings (``host=db password=x``),
#: URL query strings and ODBC strings; the value is found by :func:`_value_end`.
_DSN_PASSWORD = re.compile(r'(?:password|passwd|pwd)\s*=\s*', re.IGNORECASE)
_WHITESPACE = re.compile(r'\s')

#: Beyond this depth a worker's value is masked whole rather than walked.
MAX_DEPTH = 100

#: ``stats`` entries keyed by task names, not setting names (``total``: tasks run).
_STATS_KEYED_BY_TASK = ('total',)


def _mask_url_passwords(text: str) -> str:
    """Mask the password of every ``scheme://user:password@host`` in ``text``.

    A password may hold ``/``, ``#`` or ``@`` unescaped: the user information of
    a URL runs to the last ``@`` before the next blank or the next ``://``. When
    that over-reaches (an ``@`` in a path), more is masked, never less.
    """
    pieces = []
    done = 0
    separator = text.find('://')
    while separator != -1:
        start = separator + 3
        following = text.find('://', start)
        stop = len(text) if following == -1 else following
        blank = _WHITESPACE.search(text, start, stop)
        if blank is not None:
            stop = blank.start()
        at = text.rfind('@', start, stop)
        colon = text.find(':', start, at) if at != -1 else -1
        if colon != -1:
            pieces.append(text[done:colon + 1])
            pieces.append(URL_PASSWORD_MASK)
            done = at
        separator = following
    pieces.append(text[done:])
    return ''.join(pieces)


def _value_end(text: str, start: int) -> int:
    """Where the value of a ``password=`` starting at ``start`` ends.

    A quoted value ends at its closing quote (an unclosed one at the end of the
    text); any other at the next blank, so a ``;`` or ``&`` inside a password
    never leaves part of it shown.
    """
    if start < len(text) and text[start] in '\'"':
        closing = text.find(text[start], start + 1)
        return len(text) if closing == -1 else closing + 1
    blank = _WHITESPACE.search(text, start)
    return len(text) if blank is None else blank.start()


def _mask_dsn_passwords(text: str) -> str:
    pieces = []
    done = 0
    for match in _DSN_PASSWORD.finditer(text):
        if match.start() < done:
            continue  # inside a value already masked
        end = _value_end(text, match.end())
        if end == match.end():
            continue  # an empty password
        pieces.append(text[done:match.end()])
        pieces.append(MASK)
        done = end
    pieces.append(text[done:])
    return ''.join(pieces)


def mask_text(text: str) -> str:
    """``text`` with the password of every URL and every ``password=`` value in it replaced."""
    return _mask_dsn_passwords(_mask_url_passwords(text))


def _is_empty(value: Any) -> bool:
    return value is None or value == '' or value == MASK or (
        isinstance(value, (dict, list, tuple)) and not value)


def mask_secrets(value: Any, name: str = '', depth: int = 0) -> Any:
    """A copy of ``value`` (nested dicts and lists too) with secrets masked.

    A value whose setting ``name`` looks secret is masked whole, a dict or a
    list included; passwords in connection strings are masked wherever they
    appear. Values nested deeper than :data:`MAX_DEPTH` are masked whole.
    """
    if name and SECRET_NAME.search(name) and not _is_empty(value):
        return MASK
    if depth > MAX_DEPTH:
        return MASK
    if isinstance(value, dict):
        return {key: mask_secrets(item, str(key), depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(item, name, depth + 1) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def _mask_stats(stats: Any) -> Any:
    if not isinstance(stats, dict):
        return mask_secrets(stats)
    return {key: value if key in _STATS_KEYED_BY_TASK else mask_secrets(value, str(key), 1)
            for key, value in stats.items()}


def mask_worker_info(info: dict[str, Any]) -> dict[str, Any]:
    """A copy of one worker's inspect replies with its ``stats`` and ``conf`` masked.

    Every answer that shows ``stats`` or ``conf`` (the API, the worker page)
    goes through here. ``stats['total']`` counts tasks by name: task names are
    not setting names, so a task called ``fetch_api_key`` keeps its count.
    """
    masked = dict(info)
    if 'stats' in masked:
        masked['stats'] = _mask_stats(masked['stats'])
    if 'conf' in masked:
        masked['conf'] = mask_secrets(masked['conf'])
    return masked
