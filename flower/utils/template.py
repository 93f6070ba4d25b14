"""Formatting helpers for templates and for ``format_task`` in configuration files."""
import datetime

import humanize as humanize_lib
import pytz

ELLIPSIS = '...'


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

