"""Selecting, counting and serialising the tasks of the state and of the stored history.

A :class:`TaskFilter` says which tasks a listing wants; the HTTP handlers
parse it once from a request. :class:`Tasks` answers it over the tasks in
memory, through the state's task index, then over the ``--persistent``
history, so ``/api/tasks``, the tasks page and ``/api/events`` select,
order and show tasks the same way.
"""
import asyncio
import dataclasses
import datetime
import itertools
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import Executor
from typing import Any

from celery.events.state import Task

from flower.state import EventsState, stored_task
from flower.store import TaskStore
from flower.task_listing import (Pair, SearchSnapshot, matching_pairs, matching_rows, sort_tasks,
                                 then_stored)
from flower.utils.search import Query, TaskSearchEngine, parse_query
from flower.utils.search_text import text_term
from flower.utils.task_index import field_value

#: The fields of a task as served by the API, Flower 2.2's keys (``worker`` is the
#: host name; ``parent`` and ``root`` repeat ``parent_id`` and ``root_id``).
TASK_FIELDS = (
    'args', 'children', 'client', 'clock', 'eta', 'exception', 'exchange', 'expires',
    'failed', 'kwargs', 'name', 'parent', 'parent_id', 'received', 'rejected', 'result',
    'retried', 'retries', 'revoked', 'root', 'root_id', 'routing_key', 'runtime', 'sent',
    'started', 'state', 'succeeded', 'timestamp', 'traceback', 'uuid', 'worker',
)
#: The fields a listing may be sorted by.
SORT_FIELDS = frozenset(TASK_FIELDS) - {'children', 'parent', 'rejected', 'root'}

#: Fields that are another field under the name Flower 2.2 also gives it.
_SAME_AS = {'parent': 'parent_id', 'root': 'root_id'}

#: The format of the ``received_*`` and ``started_*`` filters (UTC).
DATE_FORMAT = '%Y-%m-%d %H:%M'
#: Most tasks a search without a text term looks through on the IO loop before it
#: leaves the search to a thread (see :meth:`Tasks.page`).
SCANNED_ON_LOOP = 500


def parse_date(value: str) -> datetime.datetime:
    """``'2024-05-01 13:45'`` → an aware UTC datetime; a ``ValueError`` otherwise."""
    moment = datetime.datetime.strptime(value.strip(), DATE_FORMAT)
    return moment.replace(tzinfo=datetime.timezone.utc)


def parse_sort_by(value: str) -> str:
    """Check a ``sort_by`` value (a field, ``-`` first for descending order)."""
    if value.removeprefix('-') not in SORT_FIELDS:
        raise ValueError(f"cannot sort by {value!r}; use one of {', '.join(sorted(SORT_FIELDS))}")
    return value


def _timestamp(moment: datetime.datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _in_range(value: float | None, start: float | None, end: float | None) -> bool:
    if value is None:
        return False
    return (start is None or value >= start) and (end is None or value < end)


@dataclasses.dataclass(frozen=True)
class TaskFilter:
    """Which tasks a listing wants; a field left ``None`` lets any task through.

    ``name``, ``worker`` (a host name) and ``state`` match exactly; the date
    bounds (naive datetimes being UTC) keep tasks with ``start <= time < end``;
    ``search`` is in the syntax of :mod:`flower.utils.search` (one that cannot be
    parsed is a ``ValueError``). What matching needs is worked out once, when the
    filter is made.
    """

    name: str | None = None
    worker: str | None = None
    state: str | None = None
    received_start: datetime.datetime | None = None
    received_end: datetime.datetime | None = None
    started_start: datetime.datetime | None = None
    started_end: datetime.datetime | None = None
    search: str | None = None
    #: The exact-match filters by task field, ``None`` ones included.
    exact: dict[str, str | None] = dataclasses.field(init=False, repr=False, compare=False)
    #: ``{field: (low, high)}`` timestamps, for the fields with a bound only.
    ranges: dict[str, tuple[float | None, float | None]] = dataclasses.field(
        init=False, repr=False, compare=False)
    #: The parsed ``search``, or ``None`` without one, and what matches tasks against it.
    query: Query | None = dataclasses.field(init=False, repr=False, compare=False)
    search_engine: TaskSearchEngine | None = dataclasses.field(init=False, repr=False,
                                                               compare=False)

    def __post_init__(self) -> None:
        ranges = {}
        for field, start, end in (('received', self.received_start, self.received_end),
                                  ('started', self.started_start, self.started_end)):
            if (start, end) != (None, None):
                ranges[field] = (_timestamp(start), _timestamp(end))
        query = parse_query(self.search) if self.search else None
        precomputed = {
            'exact': {'name': self.name, 'worker': self.worker, 'state': self.state},
            'ranges': ranges,
            'query': query,
            'search_engine': None if query is None else TaskSearchEngine(query),
        }
        for attribute, value in precomputed.items():
            object.__setattr__(self, attribute, value)  # frozen: only while being made

    @property
    def is_empty(self) -> bool:
        """True when every task matches."""
        return (not self.ranges and self.query is None
                and all(value is None for value in self.exact.values()))

    def matches(self, task: Task) -> bool:
        for field, value in self.exact.items():
            if value is not None and field_value(task, field) != value:
                return False
        for field, bounds in self.ranges.items():
            if not _in_range(getattr(task, field, None), *bounds):
                return False
        return self.search_engine is None or self.search_engine.matches(task)

    def history_filters(self) -> dict[str, Any]:
        """The filters the history's SQL applies; the search ``query`` may narrow the rows
        read, and is matched on them afterwards."""
        return dict(name=self.name, state=self.state, worker=self.worker, ranges=self.ranges,
                    query=self.query)


class Tasks:
    """The tasks of ``state``, read through its task index, then those of
    ``history`` (``None`` without ``--persistent``) that are no longer in memory."""

    def __init__(self, state: EventsState, history: TaskStore | None) -> None:
        self.state = state
        self.history = history

    def get(self, uuid: str) -> Task | None:
        """The task ``uuid`` from memory or from the history (written, or about to be
        when it left memory before its last write), or ``None``."""
        task = self.state.tasks.data.get(uuid)
        if task is None and self.state.unwritten_task is not None:
            task = self.state.unwritten_task(uuid)
        if task is None and self.history is not None:
            row = self.history.get_task(uuid)
            task = None if row is None else stored_task(row)
        return task

    def select(self, task_filter: TaskFilter, sort_by: str | None = None, offset: int = 0,
               limit: int | None = None) -> Iterator[Pair]:
        """The matching ``(uuid, task)`` pairs, from ``offset`` on, at most ``limit``.

        Newest first unless ``sort_by`` is given (tasks with equal values, and
        tasks without the field, which come last, stay newest first). The task
        index makes a first page cost about the same however many tasks are kept.
        """
        needed = None if limit is None else offset + limit
        selected = self._select_in_memory(task_filter, sort_by, needed)
        if self.history is not None:
            selected = then_stored(selected, self._stored(task_filter, sort_by, needed),
                                    sort_by)
        return itertools.islice(selected, offset, needed)

    def count(self, task_filter: TaskFilter) -> tuple[int, int]:
        """``(total, filtered)``: how many tasks there are, and how many match."""
        total = len(self.state.tasks)
        history = self.history
        if history is not None:
            oldest = self.state.task_index.oldest_number()
            total += history.count_older(oldest)
        if task_filter.is_empty:
            return total, total
        filtered = self._count_in_memory(task_filter)
        if history is not None and task_filter.query is None:
            filtered += history.count_older(oldest, **task_filter.history_filters())
        elif history is not None:
            filtered += sum(1 for _ in self._stored(task_filter))
        return total, filtered

    async def page(self, task_filter: TaskFilter, executor: Executor,
                   sort_by: str | None = None, offset: int = 0, limit: int | None = None,
                   count: bool = False) -> tuple[int | None, list[Pair]]:
        """``(filtered, page)`` as :meth:`count` and :meth:`select` give them
        (``filtered`` only when ``count``), without blocking the IO loop for long.

        A page without a search is answered by the indexes at once, on the loop.
        A search, or a listing without ``limit``, goes through every task: that
        runs in ``executor`` on a :class:`SearchSnapshot`, the stored history
        read through a connection of its own.
        """
        if task_filter.query is None and limit is not None:
            filtered = self.count(task_filter)[1] if count else None
            return filtered, list(self.select(task_filter, sort_by, offset, limit))
        stop = None if limit is None else offset + limit
        if stop is not None and not (count or sort_by) and text_term(task_filter.query) is None:
            first = self._first_matches(task_filter, stop)
            if first is not None:
                return None, first[offset:]
        snapshot = SearchSnapshot(self, task_filter)
        return await asyncio.get_running_loop().run_in_executor(
            executor, snapshot.page, task_filter, sort_by, offset, stop, count)

    def _first_matches(self, task_filter: TaskFilter, needed: int) -> list[Pair] | None:
        """The first ``needed`` matches, newest first, when they are among the newest
        :data:`SCANNED_ON_LOOP` tasks in memory (a search for something common), or
        ``None``. Looking there on the IO loop costs less than a snapshot for a thread;
        a search with a text term has its own index and is left to the thread."""
        newest = itertools.islice(self.state.task_index.newest_first(), SCANNED_ON_LOOP)
        found = list(itertools.islice(
            matching_pairs(newest, self.state.tasks.data.get, task_filter), needed))
        return found if len(found) == needed else None

    def _stored(self, task_filter: TaskFilter, sort_by: str | None = None,
                needed: int | None = None) -> Iterator[Pair]:
        return matching_rows(self.history, self.state.task_index.oldest_number(), task_filter,
                              sort_by, needed)

    def _candidates(self, task_filter: TaskFilter,
                    needed: int | None = None) -> Collection[str] | None:
        """The uuids that can match, from the state's index, or ``None`` when scanning
        every task in order is cheaper (a common value and only ``needed`` rows wanted)."""
        index = self.state.task_index
        best = None
        for field, value in task_filter.exact.items():
            if value is not None:
                bucket = index.bucket(field, value)
                if best is None or len(bucket) < len(best):
                    best = bucket
        for field, bounds in task_filter.ranges.items():
            sort_index = index.sort_index(field, self.state.tasks.data)
            if best is None or sort_index.count_range(*bounds) < len(best):
                best = sort_index.in_range(*bounds)
        if best is None:
            return None
        # Scanning finds ``needed`` matches after about needed * total / len(best) tasks;
        # going through the candidates costs about len(best) (times a sort).
        if needed is not None and needed * len(index) < len(best) * len(best):
            return None
        return best

    def _count_in_memory(self, task_filter: TaskFilter) -> int:
        index = self.state.task_index
        candidates = self._candidates(task_filter)
        if candidates is None:
            candidates = list(index.sequence)
        others = [index.bucket(field, value) for field, value in task_filter.exact.items()
                  if value is not None]
        others = [bucket for bucket in others if bucket is not candidates]
        if not task_filter.ranges and task_filter.query is None:
            if not others:
                return len(candidates)
            return sum(1 for uuid in candidates if all(uuid in bucket for bucket in others))
        get = self.state.tasks.data.get
        return sum(1 for uuid in candidates
                   if all(uuid in bucket for bucket in others)
                   and (task := get(uuid)) is not None and task_filter.matches(task))

    def _select_in_memory(self, task_filter: TaskFilter, sort_by: str | None,
                          needed: int | None) -> Iterable[Pair]:
        """Matching ``(uuid, task)`` pairs in listing order, using the state's index."""
        index = self.state.task_index
        get = self.state.tasks.data.get
        candidates = self._candidates(task_filter, needed)
        if candidates is not None:
            pairs = list(matching_pairs(index.by_creation(candidates), get, task_filter))
            return sort_tasks(pairs, sort_by) if sort_by else pairs
        if sort_by:
            sort_index = index.sort_index(sort_by.removeprefix('-'), self.state.tasks.data)
            ordered = sort_index.descending() if sort_by.startswith('-') else sort_index.ascending()
            missing = sort_index.missing
            if len(missing) * 4 < len(index):
                tail = index.by_creation(missing)
            else:
                tail = (uuid for uuid in index.newest_first() if uuid in missing)
            uuids = itertools.chain(ordered, tail)
        else:
            uuids = index.newest_first()
        if task_filter.is_empty:
            pairs = ((uuid, get(uuid)) for uuid in uuids)
            return (pair for pair in pairs if pair[1] is not None)
        return matching_pairs(uuids, get, task_filter)


def shallow_copy(task: Task) -> Task:
    """A copy whose attributes ``format_task`` may replace without touching the state."""
    clone = object.__new__(type(task))
    clone.__dict__.update(vars(task))
    return clone


def as_dict(task: Task) -> dict[str, Any]:
    """The task's :data:`TASK_FIELDS`, in that (alphabetical) order, ready for JSON."""
    return {name: _children_ids(task) if name == 'children'
            else field_value(task, _SAME_AS.get(name, name)) for name in TASK_FIELDS}


def _children_ids(task: Task) -> list[str]:
    if hasattr(type(task), 'child_ids'):
        return task.child_ids  # Flower's compact task: no empty set made just to read it
    return [getattr(child, 'id', child) for child in getattr(task, 'children', None) or ()]
