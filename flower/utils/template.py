"""Formatting helpers for templates and for ``format_task`` in configuration files."""
import datetime
import re

import humanize as humanize_lib
import pytz

ELLIPSIS = '...'
_SURROGATE = re.compile('[\ud800-\udfff]')


def format_time(time, tz):
    """Format a POSIX timestamp in the time zone ``tz`` (a tzinfo or a zone name)."""
    if isinstance(tz, str):
        tz = pytz.timezone(tz)
    moment = datetime.datetime.fromtimestamp(time, tz)
    return moment.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3] + moment.strftime(' %Z')


def _shorten(text, length):
    if length is None or len(text) <= length:
        return text
    if length <= len(ELLIPSIS):
        return text[:length]
    return text[:length - len(ELLIPSIS)] + ELLIPSIS


def humanize(obj, type=None, length=None):
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


def encodable(value):
    """``value`` with all its text encodable as UTF-8, in lists, tuples and dicts too.

    Workers can send text that is not: a file name Python decoded from bytes
    that were not UTF-8 holds lone surrogates. Pages show those characters as
    backslash escapes (``\\udcff``) rather than failing to render.
    """
    if isinstance(value, str):
        if _SURROGATE.search(value) is None:
            return value
        return value.encode('utf-8', 'backslashreplace').decode('utf-8')
    if isinstance(value, dict):
        return {encodable(key): encodable(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(encodable(item) for item in value)
    return value
