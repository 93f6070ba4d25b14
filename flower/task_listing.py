"""How listings of tasks are ordered and put together: the tasks in memory, then (or,
sorted, merged with) the matching rows of the stored history; and a search's
listing, run off the IO loop on a :class:`SearchSnapshot`.

:class:`flower.tasks.Tasks` answers listings with these; what a listing wants
is a :class:`flower.tasks.TaskFilter`.
"""
import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from celery.events.state import Task

from flower.state import stored_task
from flower.store import HistoryQueries
from flower.utils.search import required_states
from flower.utils.search_text import text_term
from flower.utils.task_index import field_value, sort_key

if TYPE_CHECKING:
    from flower.tasks import TaskFilter, Tasks

#: A task with its uuid, as listings give them.
Pair = tuple[str, Task]


def matching_pairs(uuids: Iterable[str], lookup: Callable[[str], Task | None],
                   task_filter: 'TaskFilter') -> Iterator[Pair]:
    """``(uuid, task)`` of the tasks of ``uuids`` still in memory that ``task_filter``
    lets through, in the order of ``uuids``."""
    for uuid in uuids:
        task = lookup(uuid)
        if task is not None and task_filter.matches(task):
            yield uuid, task


def sort_tasks(tasks: Iterable[Pair], sort_by: str) -> list[Pair]:
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


def merge_sorted(in_memory: Iterable[Pair], stored: Iterable[Pair],
                 sort_by: str) -> Iterator[Pair]:
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


def then_stored(in_memory: Iterable[Pair], stored: Iterable[Pair],
                 sort_by: str | None) -> Iterator[Pair]:
    """The listing of the tasks in memory, then (or, sorted, merged with) the stored ones."""
    if sort_by:
        return merge_sorted(in_memory, stored, sort_by)
    return itertools.chain(in_memory, stored)


def matching_rows(history: HistoryQueries, before_seq: int, task_filter: 'TaskFilter',
                  sort_by: str | None = None, needed: int | None = None) -> Iterator[Pair]:
    """Matching ``(uuid, task)`` pairs of the history stored before ``before_seq``,
    newest first or in ``sort_by`` order; only the first ``needed`` rows are read
    unless search terms may drop some."""
    engine = task_filter.search_engine
    limit = needed if engine is None else None  # search terms drop rows after SQL
    rows = history.older_tasks(before_seq, order_by=sort_by, limit=limit,
                               **task_filter.history_filters())
    for row in rows:
        task = stored_task(row)
        if engine is None or engine.matches(task):
            yield task.uuid, task


#: Matches a search's page counts before it settles for "at least".
COUNT_LIMIT = 1000


class AtLeast(int):
    """A count that stopped early: there are at least this many (more, in fact)."""


class SearchSnapshot:
    """What a search needs from the IO loop's state, taken at once on the loop, so
    that matching can run in another thread while events keep changing the state."""

    def __init__(self, tasks: 'Tasks', task_filter: 'TaskFilter') -> None:
        index = tasks.state.task_index
        self.lookup = tasks.state.tasks.data.get
        self.oldest_number = index.oldest_number()
        self.history = tasks.history
        query = task_filter.query
        #: A text every match holds: the search text's blocks then give the candidates;
        #: else the tasks in the states it requires, else every task.
        self.text_term = None if query is None else text_term(query)
        if self.text_term is not None:
            self.text = index.search_text.snapshot(index.sequence, self.lookup)
            return
        states = None if query is None else required_states(query)
        buckets = [index.bucket('state', state) for state in states or ()]
        if states is not None and sum(map(len, buckets)) * 4 <= len(index):
            # Few enough to sort on the loop; a common state is met soon by a plain pass.
            self.uuids = index.by_creation(set().union(*buckets))
        else:
            self.uuids = list(index.newest_first())

    def page(self, task_filter: 'TaskFilter', sort_by: str | None, first: int,
             stop: int | None, count: bool) -> tuple[int | None, list[Pair]]:
        """``(filtered, page)`` of a search, run by a worker thread.

        ``filtered`` is the number of matches when ``count``, else ``None`` (and
        matching stops once the page is full). Counting stops past
        :data:`COUNT_LIMIT` matches (or the page's end, if further): ``filtered`` is
        then an :class:`AtLeast`, since a common word in a large history would
        cost seconds to count to the end.
        """
        listing = self._in_memory(task_filter)
        if sort_by:
            listing = sort_tasks(listing, sort_by)
        reader = self.history.own_reader() if self.history is not None else None
        try:
            if reader is not None:
                stored = matching_rows(reader, self.oldest_number, task_filter, sort_by)
                listing = then_stored(listing, stored, sort_by)
            listing = iter(listing)
            page = []
            matched = 0
            enough = None if stop is None else max(stop, COUNT_LIMIT) if count else stop
            for matched, pair in enumerate(listing, start=1):
                if first < matched <= (stop if stop is not None else matched):
                    page.append(pair)
                if enough is not None and matched >= enough:
                    if count and next(listing, None) is not None:
                        return AtLeast(matched), page
                    break
            return (matched if count else None), page
        finally:
            if reader is not None:
                reader.close()

    def _in_memory(self, task_filter: 'TaskFilter') -> Iterator[Pair]:
        if self.text_term is None:
            uuids = self.uuids
        else:
            uuids = itertools.chain.from_iterable(self.text.find(self.text_term))
        return matching_pairs(uuids, self.lookup, task_filter)
