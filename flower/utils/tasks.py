"""Selecting, ordering and serializing the tasks of the events state.

Used by ``/api/tasks`` and ``/api/task/info`` and by the tasks pages, so that
filters, sort order and task fields are the same everywhere.
"""
import datetime
import itertools

from flower.utils.search import parse_search_terms, satisfies_search_terms

#: The fields of a task as served by the API (``worker`` is the host name).
TASK_FIELDS = (
    'args', 'children', 'client', 'clock', 'eta', 'exception', 'exchange', 'expires',
    'failed', 'kwargs', 'name', 'parent_id', 'received', 'result', 'retried', 'retries',
    'revoked', 'root_id', 'routing_key', 'runtime', 'sent', 'started', 'state',
    'succeeded', 'timestamp', 'traceback', 'uuid', 'worker',
)
SORT_FIELDS = frozenset(TASK_FIELDS) - {'children'}

#: The format of the ``received_*`` and ``started_*`` filters (UTC).
DATE_FORMAT = '%Y-%m-%d %H:%M'


def parse_date(value):
    """``'2024-05-01 13:45'`` → an aware UTC datetime; a ``ValueError`` otherwise."""
    moment = datetime.datetime.strptime(value.strip(), DATE_FORMAT)
    return moment.replace(tzinfo=datetime.timezone.utc)


def parse_sort_by(value):
    """Check a ``sort_by`` value (a field, ``-`` first for descending order)."""
    if value.removeprefix('-') not in SORT_FIELDS:
        raise ValueError(f"cannot sort by {value!r}; use one of {', '.join(sorted(SORT_FIELDS))}")
    return value


def _timestamp(moment):
    if isinstance(moment, str):
        moment = parse_date(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _field(task, name):
    value = getattr(task, name, None)
    if name == 'worker':
        return getattr(value, 'hostname', value)
    return value


def sort_tasks(tasks, sort_by):
    """Sort ``(uuid, task)`` pairs by a field, ``-field`` for descending order.

    Tasks without a value for the field come last in both orders.
    """
    field = sort_by.removeprefix('-')
    pairs = list(tasks)
    present = [pair for pair in pairs if _field(pair[1], field) is not None]
    missing = [pair for pair in pairs if _field(pair[1], field) is None]
    present.sort(key=lambda pair: _field(pair[1], field), reverse=sort_by.startswith('-'))
    return present + missing


def _in_range(value, start, end):
    if value is None:
        return False
    return (start is None or value >= start) and (end is None or value < end)


def iter_tasks(events, limit=None, offset=None, type=None, worker=None, state=None,
               sort_by=None, received_start=None, received_end=None, started_start=None,
               started_end=None, search=None):
    """Yield the ``(uuid, task)`` pairs of ``events.state`` matching every filter.

    Newest first unless ``sort_by`` is given. ``type``, ``worker`` and ``state``
    are exact task name, worker host name and state; the date bounds (datetimes,
    naive ones being UTC, or strings in :data:`DATE_FORMAT`) keep tasks with
    ``start <= time < end``; ``search`` uses :mod:`flower.utils.search`.
    """
    terms = parse_search_terms(search) if search else None
    received = [None if bound is None else _timestamp(bound) for bound in (received_start, received_end)]
    started = [None if bound is None else _timestamp(bound) for bound in (started_start, started_end)]

    def wanted(task):
        if type is not None and task.name != type:
            return False
        if worker is not None and _field(task, 'worker') != worker:
            return False
        if state is not None and task.state != state:
            return False
        if received != [None, None] and not _in_range(task.received, *received):
            return False
        if started != [None, None] and not _in_range(task.started, *started):
            return False
        return terms is None or satisfies_search_terms(task, terms)

    selected = ((uuid, task) for uuid, task in events.state.tasks_by_time() if wanted(task))
    if sort_by:
        selected = sort_tasks(selected, sort_by)
    first = offset or 0
    return itertools.islice(selected, first, None if limit is None else first + limit)


def count_tasks(events, type=None, worker=None, state=None, received_start=None,
                received_end=None, started_start=None, started_end=None, search=None):
    """``(total, filtered)``: how many tasks there are, and how many match the filters
    (the same filters as :func:`iter_tasks`)."""
    total = len(events.state.tasks)
    filtered = sum(1 for _ in iter_tasks(
        events, type=type, worker=worker, state=state, received_start=received_start,
        received_end=received_end, started_start=started_start, started_end=started_end,
        search=search))
    return total, filtered


def get_task_by_id(events, task_id):
    """The task ``task_id`` of ``events.state``, or ``None``."""
    return events.state.tasks.get(task_id)


def shallow_copy(task):
    """A copy whose attributes ``format_task`` may replace without touching the state."""
    clone = object.__new__(type(task))
    clone.__dict__.update(vars(task))
    return clone


def as_dict(task):
    """The task's :data:`TASK_FIELDS`, in that (alphabetical) order, ready for JSON."""
    data = {name: _field(task, name) for name in TASK_FIELDS}
    data['children'] = [getattr(child, 'id', child) for child in data['children'] or ()]
    return data
