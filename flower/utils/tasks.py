"""Selecting, ordering and serializing the tasks of the events state.

Used by ``/api/tasks`` and ``/api/task/info`` and by the tasks pages, so that
filters, sort order and task fields are the same everywhere.
"""
import asyncio
import datetime
import heapq
import itertools

from flower.state import stored_task
from flower.utils.search import parse_search_terms, satisfies_search_terms
from flower.utils.task_index import field_value, sort_key

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


def sort_tasks(tasks, sort_by):
    """Sort ``(uuid, task)`` pairs by a field, ``-field`` for descending order.

    Tasks without a value for the field come last in both orders.
    """
    field = sort_by.removeprefix('-')
    pairs = list(tasks)
    present = [pair for pair in pairs if field_value(pair[1], field) is not None]
    missing = [pair for pair in pairs if field_value(pair[1], field) is None]
    present.sort(key=lambda pair: sort_key(field_value(pair[1], field)),
                 reverse=sort_by.startswith('-'))
    return present + missing


def _merge_sorted(in_memory, stored, sort_by):
    """Merge two listings sorted by ``sort_by`` (see :func:`sort_tasks`) lazily, so a
    first page reads only the stored rows it shows. The tasks in memory are newer
    than the stored ones, so they come first among equal values and missing ones."""
    field = sort_by.removeprefix('-')
    descending = sort_by.startswith('-')
    present, missing = (1, 0) if descending else (0, 1)

    def key(pair):
        value = field_value(pair[1], field)
        return (missing,) if value is None else (present, sort_key(value))

    return heapq.merge(in_memory, stored, key=key, reverse=descending)


def _in_range(value, start, end):
    if value is None:
        return False
    return (start is None or value >= start) and (end is None or value < end)


class TaskQuery:
    """The filters of :func:`iter_tasks` and :func:`count_tasks`, parsed once."""

    def __init__(self, type=None, worker=None, state=None, received_start=None,
                 received_end=None, started_start=None, started_end=None, search=None):
        self.exact = {'name': type, 'worker': worker, 'state': state}
        self.ranges = {}
        for field, bounds in (('received', (received_start, received_end)),
                              ('started', (started_start, started_end))):
            if bounds != (None, None):
                self.ranges[field] = tuple(None if bound is None else _timestamp(bound)
                                           for bound in bounds)
        self.terms = parse_search_terms(search) if search else None

    @property
    def is_empty(self):
        return (not self.ranges and self.terms is None
                and all(value is None for value in self.exact.values()))

    def wanted(self, task):
        for field, value in self.exact.items():
            if value is not None and field_value(task, field) != value:
                return False
        for field, bounds in self.ranges.items():
            if not _in_range(getattr(task, field, None), *bounds):
                return False
        return self.terms is None or satisfies_search_terms(task, self.terms)

    def candidates(self, state, needed=None):
        """The uuids that can match, from the state's index, or ``None`` when scanning
        every task in order is cheaper (a common value and only ``needed`` rows wanted)."""
        index = state.task_index
        best = None
        for field, value in self.exact.items():
            if value is not None:
                bucket = index.bucket(field, value)
                if best is None or len(bucket) < len(best):
                    best = bucket
        for field, bounds in self.ranges.items():
            sort_index = index.sort_index(field, state.tasks.data)
            if best is None or sort_index.count_range(*bounds) < len(best):
                best = sort_index.in_range(*bounds)
        if best is None:
            return None
        # Scanning finds ``needed`` matches after about needed * total / len(best) tasks;
        # going through the candidates costs about len(best) (times a sort).
        if needed is not None and needed * len(index) < len(best) * len(best):
            return None
        return best

    def count(self, state):
        """How many tasks in ``state`` (one with a task index) match."""
        candidates = self.candidates(state)
        if candidates is None:
            candidates = list(state.task_index.sequence)
        index = state.task_index
        others = [index.bucket(field, value) for field, value in self.exact.items()
                  if value is not None]
        others = [bucket for bucket in others if bucket is not candidates]
        if not self.ranges and self.terms is None:
            if not others:
                return len(candidates)
            return sum(1 for uuid in candidates if all(uuid in bucket for bucket in others))
        get = state.tasks.data.get
        return sum(1 for uuid in candidates
                   if all(uuid in bucket for bucket in others)
                   and (task := get(uuid)) is not None and self.wanted(task))


def _history(events):
    """The persistent history (:class:`flower.store.TaskStore`) of ``events``, if any."""
    return getattr(events, 'store', None)


def _stored_filters(query):
    return dict(name=query.exact['name'], state=query.exact['state'],
                worker=query.exact['worker'], ranges=query.ranges)


def _stored_matches(events, query, sort_by=None, needed=None):
    """Matching ``(uuid, task)`` pairs of the history that are no longer in memory,
    newest first or in ``sort_by`` order; only the first ``needed`` rows are read
    unless search terms may drop some."""
    return _matching_rows(_history(events), events.state.task_index.oldest_number(), query,
                          sort_by, needed)


def _matching_rows(history, before_seq, query, sort_by=None, needed=None):
    limit = needed if query.terms is None else None  # search terms drop rows after SQL
    rows = history.older_tasks(before_seq, order_by=sort_by, limit=limit, **_stored_filters(query))
    for row in rows:
        task = stored_task(row)
        if query.terms is None or satisfies_search_terms(task, query.terms):
            yield task.uuid, task


def _with_history(events, in_memory, query, sort_by, needed):
    """The listing of the tasks in memory, then (or, sorted, merged with) the
    matching stored tasks that are no longer in memory."""
    stored = _stored_matches(events, query, sort_by, needed)
    if sort_by:
        return _merge_sorted(in_memory, stored, sort_by)
    return itertools.chain(in_memory, stored)


def _indexed(events):
    """The state's task index, or ``None`` for a plain Celery state."""
    return getattr(events.state, 'task_index', None)


def _select_indexed(state, query, sort_by, needed):
    """Matching ``(uuid, task)`` pairs in listing order, using the state's index."""
    index = state.task_index
    get = state.tasks.data.get
    candidates = query.candidates(state, needed)
    if candidates is not None:
        pairs = [(uuid, get(uuid)) for uuid in index.by_creation(candidates)]
        pairs = [pair for pair in pairs if pair[1] is not None and query.wanted(pair[1])]
        return sort_tasks(pairs, sort_by) if sort_by else pairs
    if sort_by:
        sort_index = index.sort_index(sort_by.removeprefix('-'), state.tasks.data)
        ordered = sort_index.descending() if sort_by.startswith('-') else sort_index.ascending()
        missing = sort_index.missing
        if len(missing) * 4 < len(index):
            tail = index.by_creation(missing)
        else:
            tail = (uuid for uuid in index.newest_first() if uuid in missing)
        uuids = itertools.chain(ordered, tail)
    else:
        uuids = index.newest_first()
    pairs = ((uuid, get(uuid)) for uuid in uuids)
    if query.is_empty:
        return (pair for pair in pairs if pair[1] is not None)
    return (pair for pair in pairs if pair[1] is not None and query.wanted(pair[1]))


def iter_tasks(events, limit=None, offset=None, type=None, worker=None, state=None,
               sort_by=None, received_start=None, received_end=None, started_start=None,
               started_end=None, search=None):
    """Yield the ``(uuid, task)`` pairs of ``events.state``, then of its persistent
    history if any, matching every filter.

    Newest first unless ``sort_by`` is given (tasks with equal values, and
    tasks without the field, which come last, stay newest first). ``type``,
    ``worker`` and ``state`` are exact task name, worker host name and state;
    the date bounds (datetimes, naive ones being UTC, or strings in
    :data:`DATE_FORMAT`) keep tasks with ``start <= time < end``; ``search``
    uses :mod:`flower.utils.search`. With Flower's own state, the task index
    makes a first page cost about the same however many tasks are kept.
    """
    query = TaskQuery(type, worker, state, received_start, received_end, started_start,
                      started_end, search)
    if _indexed(events) is not None:
        needed = None if limit is None else (offset or 0) + limit
        selected = _select_indexed(events.state, query, sort_by, needed)
        if _history(events) is not None:
            selected = _with_history(events, selected, query, sort_by, needed)
    else:
        selected = ((uuid, task) for uuid, task in events.state.tasks_by_time()
                    if query.wanted(task))
        if sort_by:
            selected = sort_tasks(selected, sort_by)
    first = offset or 0
    return itertools.islice(selected, first, None if limit is None else first + limit)


def count_tasks(events, type=None, worker=None, state=None, received_start=None,
                received_end=None, started_start=None, started_end=None, search=None):
    """``(total, filtered)``: how many tasks there are, and how many match the filters
    (the same filters as :func:`iter_tasks`)."""
    query = TaskQuery(type, worker, state, received_start, received_end, started_start,
                      started_end, search)
    tasks = events.state.tasks
    total = len(tasks)
    history = _history(events)
    if history is not None and _indexed(events) is not None:
        oldest = events.state.task_index.oldest_number()
        total += history.count_older(oldest)
        if query.is_empty:
            return total, total
        if query.terms is None:
            stored = history.count_older(oldest, **_stored_filters(query))
        else:
            stored = sum(1 for _ in _stored_matches(events, query))
        return total, query.count(events.state) + stored
    if query.is_empty:
        return total, total
    if _indexed(events) is not None:
        return total, query.count(events.state)
    return total, sum(1 for task in list(tasks.data.values()) if query.wanted(task))


class SearchSnapshot:
    """What a search needs from the IO loop's state, taken at once on the loop, so
    that matching can run in another thread while events keep changing the state."""

    def __init__(self, events):
        index = _indexed(events)
        if index is not None:
            self.uuids = list(index.newest_first())
            self.lookup = events.state.tasks.data.get
            self.oldest_number = index.oldest_number()
        else:
            pairs = dict(events.state.tasks_by_time())
            self.uuids = list(pairs)
            self.lookup = pairs.get
            self.oldest_number = None
        self.history = _history(events) if index is not None else None

    def in_memory(self, query):
        lookup = self.lookup
        for uuid in self.uuids:
            task = lookup(uuid)
            if task is not None and query.wanted(task):
                yield uuid, task


def _search(snapshot, query, sort_by, first, stop, count):
    """``(filtered, page)`` of a search, run by a worker thread on ``snapshot``.

    ``filtered`` is the number of matches when ``count``, else ``None`` (and
    matching stops once the page is full).
    """
    listing = snapshot.in_memory(query)
    if sort_by:
        listing = sort_tasks(listing, sort_by)
    history = snapshot.history
    reader = history.own_reader() if history is not None else None
    try:
        if reader is not None:
            stored = _matching_rows(reader, snapshot.oldest_number, query, sort_by)
            listing = (_merge_sorted(listing, stored, sort_by) if sort_by
                       else itertools.chain(listing, stored))
        page = []
        matched = 0
        for matched, pair in enumerate(listing, start=1):
            if first < matched <= (stop if stop is not None else matched):
                page.append(pair)
            if not count and stop is not None and matched >= stop:
                break
        return (matched if count else None), page
    finally:
        if reader is not None:
            reader.close()


async def search_tasks(events, executor, limit=None, offset=None, sort_by=None, count=False,
                       **filters):
    """``(filtered, page)`` like :func:`count_tasks` and :func:`iter_tasks` give them
    (``filtered`` only when ``count``), without blocking the IO loop for long.

    A page without a ``search`` filter is answered by the indexes at once, on
    the loop. A search, or a listing without ``limit``, goes through every
    task: that runs in ``executor`` on a :class:`SearchSnapshot`, the stored
    history read through a connection of its own.
    """
    query = TaskQuery(**filters)
    if query.terms is None and limit is not None:
        filtered = count_tasks(events, **filters)[1] if count else None
        return filtered, list(iter_tasks(events, limit=limit, offset=offset, sort_by=sort_by,
                                          **filters))
    first = offset or 0
    stop = None if limit is None else first + limit
    snapshot = SearchSnapshot(events)
    return await asyncio.get_running_loop().run_in_executor(
        executor, _search, snapshot, query, sort_by, first, stop, count)


def get_task_by_id(events, task_id):
    """The task ``task_id`` of ``events.state`` or of the persistent history, or ``None``."""
    task = events.state.tasks.data.get(task_id)
    history = _history(events)
    if task is None and history is not None:
        row = history.get_task(task_id)
        task = None if row is None else stored_task(row)
    return task


def shallow_copy(task):
    """A copy whose attributes ``format_task`` may replace without touching the state."""
    clone = object.__new__(type(task))
    clone.__dict__.update(vars(task))
    return clone


def as_dict(task):
    """The task's :data:`TASK_FIELDS`, in that (alphabetical) order, ready for JSON."""
    return {name: _children_ids(task) if name == 'children' else field_value(task, name)
            for name in TASK_FIELDS}


def _children_ids(task):
    if hasattr(type(task), 'child_ids'):
        return task.child_ids  # Flower's compact task: no empty set made just to read it
    return [getattr(child, 'id', child) for child in getattr(task, 'children', None) or ()]
