"""Formatting helpers for templates and for ``format_task`` in configuration files."""
import datetime
import html
import numbers
from typing import Any
from urllib.parse import quote

import humanize as humanize_lib
import pytz

ELLIPSIS = '...'


def format_time(time: float, tz: datetime.tzinfo | str) -> str:
    """Format a POSIX timestamp in the time zone ``tz`` (a tzinfo or a zone name)."""
    if isinstance(tz, str):
        tz = pytz.timezone(tz)
    moment = datetime.datetime.fromtimestamp(time, tz)
    return moment.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3] + moment.strftime(' %Z')


def _shorten(text: str, length: int | None) -> str:
    if length is None or len(text) <= length:
        return text
    if length <= len(ELLIPSIS):
        return text[:length]
    return text[:length - len(ELLIPSIS)] + ELLIPSIS


def humanize(obj: Any, type: str | None = None, length: int | None = None) -> str:
    """Render ``obj`` for people: times, relative times, lists, or shortened text.

    ``type`` is ``'time'`` (optionally ``'time-<zone>'``) for a timestamp,
    ``'natural-time'`` for "3 minutes ago"; ``length`` caps the result's size.
    """
    if obj is None:
        return ''
    if type and type.startswith('natural-time'):
        moment = datetime.datetime.fromtimestamp(float(obj))
        return humanize_lib.naturaltime(moment)
    if type and type.startswith('time'):
        zone = type[len('time'):].lstrip('-') or 'UTC'
        return format_time(float(obj), zone)
    if isinstance(obj, (list, tuple)) and all(isinstance(item, (str, int, float)) for item in obj):
        text = ', '.join(str(item) for item in obj)
    else:
        text = str(obj)
    return _shorten(text, length)



def format_count(count: float | None) -> str:
    """A count with thousands separators: ``1234567`` → ``'1,234,567'``; ``None`` → ``''``."""
    if count is None:
        return ''
    return f'{int(count):,}'


def format_duration(seconds: float | None) -> str:
    """A duration for people: ``0.0123`` → ``'12.3 ms'``, ``42.5`` → ``'42.5 s'``,
    ``3725`` → ``'1 h 2 min 5 s'``; ``None`` → ``''``."""
    if seconds is None:
        return ''
    seconds = float(seconds)
    if seconds < 1:
        return f'{seconds * 1000:.3g} ms'
    if seconds < 60:
        return f'{seconds:.3g} s'
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, 'h'), (minutes, 'min'), (secs, 's')]
    return ' '.join(f'{value} {unit}' for value, unit in parts if value) or '0 s'


def format_value(value: Any, length: int | None = None) -> str:
    """Any field's value as text: counts with separators, lists joined, long text
    shortened to ``length`` characters; ``None`` → ``''``."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, numbers.Integral):
        return format_count(value)
    if isinstance(value, float):
        return f'{value:.6g}'
    return humanize(value, length=length)


def task_link(task: Any, url_prefix: str = '') -> str:
    """An HTML link to a task's page, its id as the text; ``task`` is an id or a task
    (anything with ``uuid``). Escaped, so it can go into a page as it is."""
    uuid = getattr(task, 'uuid', task)
    href = f"{url_prefix.rstrip('/')}/task/{quote(str(uuid), safe='')}"
    return f'<a href="{html.escape(href)}">{html.escape(str(uuid))}</a>'


#: What the ``getrusage`` fields of a worker's ``stats`` mean, and their unit.
RUSAGE_FIELDS = {
    'utime': ('User CPU time', 's'), 'stime': ('System CPU time', 's'),
    'maxrss': ('Maximum resident set size', 'KiB'), 'ixrss': ('Shared memory size', 'KiB'),
    'idrss': ('Unshared data size', 'KiB'), 'isrss': ('Unshared stack size', 'KiB'),
    'minflt': ('Page faults without I/O', ''), 'majflt': ('Page faults with I/O', ''),
    'nswap': ('Swaps', ''), 'inblock': ('Block input operations', ''),
    'oublock': ('Block output operations', ''), 'msgsnd': ('IPC messages sent', ''),
    'msgrcv': ('IPC messages received', ''), 'nsignals': ('Signals received', ''),
    'nvcsw': ('Voluntary context switches', ''), 'nivcsw': ('Involuntary context switches', ''),
}


def humanize_key(key: str) -> str:
    """A worker's reply key for people: ``'connect_timeout'`` → ``'Connect timeout'``."""
    text = str(key).replace('_', ' ').replace('-', ' ').strip()
    return text[:1].upper() + text[1:]


def format_fact(value: Any) -> str:
    """A measure for people: ``None`` or empty → ``'None'`` (a blank reads as missing),
    counts with thousands separators, other numbers rounded (``1234.56789`` →
    ``'1,234.568'``), lists joined."""
    if value is None or (isinstance(value, (str, list, tuple, dict)) and not value):
        return 'None'
    if isinstance(value, float):
        return format_count(value) if value.is_integer() else \
            f'{value:,.3f}'.rstrip('0').rstrip('.')
    if isinstance(value, (list, tuple)):
        return ', '.join(format_fact(item) for item in value)
    return format_value(value)


def or_none(text: str) -> str:
    """``'None'`` for an empty value, so that a blank never reads as something missing."""
    return text if text != '' else 'None'


def format_uptime(seconds: float | None) -> str:
    """``42`` → ``'42 s'``, ``125`` → ``'2 m 05 s'``, ``3725`` → ``'1 h 02 m'``,
    ``90061`` → ``'1 d 1 h 01 m'``; ``None`` → ``'None'``."""
    if seconds is None:
        return 'None'
    whole = int(seconds)
    if whole < 60:
        return f'{whole} s'
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f'{days:,} d {hours} h {minutes:02d} m'
    if hours:
        return f'{hours} h {minutes:02d} m'
    return f'{minutes} m {secs:02d} s'


def rusage_fact(key: str, value: Any) -> tuple[str, str]:
    """A ``getrusage`` field as (label, value with its unit)."""
    label, unit = RUSAGE_FIELDS.get(key, (humanize_key(key), ''))
    text = format_fact(value)
    return label, f'{text} {unit}' if unit and value is not None else text
