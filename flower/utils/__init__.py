"""Small helpers shared across Flower (and importable from configuration files)."""
from __future__ import annotations

import os
import platform
import re
import secrets
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # configuration files import this module: Celery is not imported for them
    from celery import Celery

_TRUE_WORDS = frozenset(('y', 'yes', 't', 'true', 'on', '1'))
_FALSE_WORDS = frozenset(('n', 'no', 'f', 'false', 'off', '0'))
_SURROGATE = re.compile('[\ud800-\udfff]')
_find_surrogate = _SURROGATE.search
#: Values :func:`encodable` returns as they are, by type.
_AS_IS = frozenset({int, float, bool, type(None)})


def describe_error(exc: BaseException) -> str:
    """``'ConnectionRefusedError: [Errno 111] Connection refused'``: how logs and answers
    name an exception whose type says as much as its message."""
    return f"{type(exc).__name__}: {exc}"


def gen_cookie_secret() -> str:
    """Return a fresh random secret, used when no ``cookie_secret`` is configured."""
    return secrets.token_urlsafe(32)


def abs_path(path: str) -> str:
    """Expand ``~`` and make ``path`` absolute relative to the current directory."""
    return os.path.abspath(os.path.expanduser(path))


def strtobool(value: str | bool) -> bool:
    """Turn a yes/no word into a bool; anything else is a ``ValueError``."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"invalid truth value {value!r}")


def bugreport(app: Celery | None = None) -> str:
    """Versions and settings to paste into a bug report: flower's, tornado's,
    humanize's, celery's and kombu's versions, and with ``app`` the broker's
    transport and Celery's own report (passwords masked)."""
    import celery
    import humanize
    import kombu
    import tornado

    from flower import __version__

    lines = [
        f"flower   -> flower:{__version__} tornado:{tornado.version} "
        f"humanize:{humanize.__version__}",
        f"software -> celery:{celery.__version__} kombu:{kombu.__version__} "
        f"py:{platform.python_version()} ({sys.platform})",
    ]
    if app is not None:
        with app.connection_for_write() as connection:  # only read from the URL: no I/O
            lines.append(f"broker   -> transport:{connection.transport_cls}")
        lines.append(app.bugreport())
    return '\n'.join(lines)


def encodable(value: Any) -> Any:
    """``value`` with all its text encodable as UTF-8, in lists, tuples and dicts too.

    Workers can send text that is not: a file name Python decoded from bytes
    that were not UTF-8 holds lone surrogates. Pages and the stored history
    keep those characters as backslash escapes (``\\udcff``) rather than
    failing on them.
    """
    if isinstance(value, str):
        if _SURROGATE.search(value) is None:
            return value
        return value.encode('utf-8', 'backslashreplace').decode('utf-8')
    # Numbers and clean text are kept without a call each: pages pass thousands of them.
    if isinstance(value, dict):
        return {(key if type(key) in _AS_IS or type(key) is str and _find_surrogate(key) is None
                 else encodable(key)):
                (item if type(item) in _AS_IS or type(item) is str and _find_surrogate(item) is None
                 else encodable(item))
                for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(
            item if type(item) in _AS_IS or type(item) is str and _find_surrogate(item) is None
            else encodable(item) for item in value)
    return value


class Throttle:
    """Says yes at most once every ``seconds``: for warnings that must not flood the log."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = None

    def ready(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.seconds:
            return False
        self._last = now
        return True
