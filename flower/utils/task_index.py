"""Incremental indexes over the tasks in memory, so listing a first page stays cheap.

:class:`TaskIndex` is kept up to date by :class:`flower.state.EventsState`
after every task event. It knows the order tasks were first seen in (newest
first is the default listing order), which tasks have a given name, worker or
state, and, for every field someone sorted by once, a sorted list of the
tasks' values that is maintained from then on.
"""
import bisect
import collections
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from flower.utils.search_text import SearchText

#: Where an item stands or would stand in a :class:`SortedList`: ``(chunk, position)``.
Place = tuple[int, int]

#: Fields with an exact-match filter, and the bucket attribute they are kept in.
BUCKET_FIELDS = ('name', 'worker', 'state')


def _filed_values(task: Any) -> tuple[Any, Any, Any]:
    """The values of :data:`BUCKET_FIELDS` a task is filed under."""
    return task.name, field_value(task, 'worker'), task.state


def field_value(task: Any, name: str) -> Any:
    """The task's value for ``name``; ``worker`` is the worker's host name."""
    value = getattr(task, name, None)
    if name == 'worker':
        return getattr(value, 'hostname', value)
    return value


def sort_key(value: Any) -> tuple[int, Any]:
    """A key that orders numbers among numbers and everything else as text."""
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value))


class SortedList:
    """A list kept sorted, stored as chunks so that inserting and removing an item
    costs a bisection plus a short ``memmove`` instead of shifting the whole list."""

    chunk_size = 512

    def __init__(self, items: Iterable = ()) -> None:
        items = sorted(items)
        size = self.chunk_size
        self._chunks = [items[start:start + size] for start in range(0, len(items), size)]
        self._maxes = [chunk[-1] for chunk in self._chunks]
        self._length = len(items)

    def __len__(self):
        return self._length

    def add(self, item: Any) -> None:
        chunks, maxes = self._chunks, self._maxes
        self._length += 1
        if not chunks:
            chunks.append([item])
            maxes.append(item)
            return
        index = bisect.bisect_left(maxes, item)
        if index == len(maxes):
            index -= 1
            chunks[index].append(item)
            maxes[index] = item
        else:
            bisect.insort(chunks[index], item)
        chunk = chunks[index]
        if len(chunk) > 2 * self.chunk_size:
            chunks.insert(index + 1, chunk[self.chunk_size:])
            del chunk[self.chunk_size:]
            maxes[index] = chunk[-1]
            maxes.insert(index + 1, chunks[index + 1][-1])

    def remove(self, item: Any) -> None:
        """Remove ``item``, which must be in the list."""
        chunks, maxes = self._chunks, self._maxes
        index = bisect.bisect_left(maxes, item)
        chunk = chunks[index] if index < len(chunks) else ()
        position = bisect.bisect_left(chunk, item)
        if position == len(chunk) or chunk[position] != item:
            raise ValueError(f"{item!r} is not in the list")
        del chunk[position]
        self._length -= 1
        if not chunk:
            del chunks[index]
            del maxes[index]
        elif position == len(chunk):
            maxes[index] = chunk[-1]

    def locate(self, item: Any) -> Place:
        """The place ``(chunk, position)`` where ``item`` would be inserted on the left."""
        index = bisect.bisect_left(self._maxes, item)
        if index == len(self._chunks):
            return index, 0
        return index, bisect.bisect_left(self._chunks[index], item)

    def end(self) -> Place:
        return len(self._chunks), 0

    def rank(self, place: Place) -> int:
        """How many items come before ``place``."""
        index, position = place
        return sum(len(chunk) for chunk in self._chunks[:index]) + position

    def before(self, place: Place) -> Any:
        """The item just before ``place`` (which must not be the start)."""
        index, position = place
        if position:
            return self._chunks[index][position - 1]
        return self._chunks[index - 1][-1]

    def between(self, start: Place, stop: Place) -> Iterator[Any]:
        """The items from ``start`` (included) to ``stop`` (excluded), in order."""
        index, position = start
        stop_index, stop_position = stop
        while index < stop_index:
            yield from self._chunks[index][position:]
            index, position = index + 1, 0
        if index == stop_index and index < len(self._chunks):
            yield from self._chunks[index][position:stop_position]


class SortIndex:
    """The tasks in memory ordered by one field; tasks without a value are kept apart.

    Items are ``(sort_key(value), -sequence, uuid)``, so equal values list the
    newest task first, in both directions.
    """

    def __init__(self, field: str, tasks: Mapping[str, Any], sequence: Mapping[str, int]) -> None:
        self.field = field
        self.keys = {}
        self.missing = set()
        for uuid, task in tasks.items():
            self._remember(uuid, field_value(task, field), sequence[uuid])
        self.items = SortedList(self.keys.values())

    def _remember(self, uuid, value, number):
        if value is None:
            self.missing.add(uuid)
            return None
        key = self.keys[uuid] = (sort_key(value), -number, uuid)
        return key

    def update(self, uuid: str, task: Any, number: int) -> None:
        value = field_value(task, self.field)
        old = self.keys.get(uuid)
        if old is not None and value is not None and old[0] == sort_key(value):
            return
        self.discard(uuid)
        key = self._remember(uuid, value, number)
        if key is not None:
            self.items.add(key)

    def discard(self, uuid: str) -> None:
        key = self.keys.pop(uuid, None)
        if key is not None:
            self.items.remove(key)
        self.missing.discard(uuid)

    def ascending(self) -> Iterator[str]:
        for _, _, uuid in self.items.between((0, 0), self.items.end()):
            yield uuid

    def descending(self) -> Iterator[str]:
        """Values from the largest down, equal values still newest first."""
        items = self.items
        stop = items.end()
        while stop != (0, 0):
            group_start = items.locate((items.before(stop)[0],))
            for _, _, uuid in items.between(group_start, stop):
                yield uuid
            stop = group_start

    def count_range(self, low: float | None, high: float | None) -> int:
        """How many tasks have ``low <= value < high`` (numbers; ``None``: unbounded)."""
        items = self.items
        start = (0, 0) if low is None else items.locate(((0, low),))
        stop = items.end() if high is None else items.locate(((0, high),))
        return max(0, items.rank(stop) - items.rank(start))

    def in_range(self, low: float | None, high: float | None) -> list[str]:
        items = self.items
        start = (0, 0) if low is None else items.locate(((0, low),))
        stop = items.end() if high is None else items.locate(((0, high),))
        return [uuid for _, _, uuid in items.between(start, stop)]


class TaskIndex:
    """Creation order, exact-value buckets, lazily built sort indexes and the search
    text (:class:`~flower.utils.search_text.SearchText`) of the tasks."""

    def __init__(self) -> None:
        self.sequence = {}  # uuid -> creation number; the dict's order is creation order
        self._next_number = 0
        self.buckets = {field: collections.defaultdict(set) for field in BUCKET_FIELDS}
        self.sort_indexes = {}
        self.search_text = SearchText()

    def __len__(self):
        return len(self.sequence)

    def update(self, task: Any, number: int | None = None, was: str | None = None,
               moved: bool = True) -> None:
        """File ``task`` (new or changed) under its current values; a new task gets the
        next creation number, or ``number`` (restored tasks, oldest first). ``was``, the
        state it had before this change if known, finds the bucket it leaves at once;
        ``moved=False`` says its name and worker are the ones it was filed under."""
        uuid = task.uuid
        known = self.sequence.get(uuid)
        if known is not None:
            number = known
            self.search_text.touched(number)
        else:
            if number is None:
                number = self._next_number
            self.sequence[uuid] = number
            self._next_number = max(self._next_number, number + 1)
            self.search_text.added(uuid, number)
        buckets = self.buckets
        if known is None:
            name, worker, state = _filed_values(task)
            if name is not None:
                buckets['name'][name].add(uuid)
            if worker is not None:
                buckets['worker'][worker].add(uuid)
            if state is not None:
                buckets['state'][state].add(uuid)
        else:  # filed right is the common case, one lookup; a state changes, a name rarely
            state, by_state = task.state, buckets['state']
            if state is None or uuid not in by_state.get(state, ()):
                left = by_state.get(was)
                if left is not None and uuid in left:  # the bucket of the state it had
                    left.discard(uuid)
                    if not left:
                        del by_state[was]
                else:
                    self._unfile_from('state', None, uuid)
                if state is not None:
                    by_state[state].add(uuid)
            if moved:
                name, worker, _ = _filed_values(task)
                if name is None or uuid not in buckets['name'].get(name, ()):
                    self._refile('name', name, uuid)
                if worker is None or uuid not in buckets['worker'].get(worker, ()):
                    self._refile('worker', worker, uuid)
        for index in self.sort_indexes.values():
            index.update(uuid, task, number)

    def _refile(self, field: str, value: Any, uuid: str) -> None:
        """Move a known task to the bucket of ``value`` (none if it is ``None``) from the
        one it is in."""
        self._unfile_from(field, None, uuid)
        if value is not None:
            self.buckets[field][value].add(uuid)

    def _unfile(self, field, value, uuid):
        bucket = self.buckets[field].get(value)
        if bucket is not None and uuid in bucket:
            bucket.discard(uuid)
            if not bucket:
                del self.buckets[field][value]
            return True
        return False

    def _unfile_from(self, field, likely, uuid):
        """Take ``uuid`` out of the bucket of ``field`` it is in: ``likely``'s if it is
        there, else whichever it is (the index does not keep what it filed a task under:
        that would be a sixth of a task's size)."""
        if likely is not None and self._unfile(field, likely, uuid):
            return
        for value, bucket in list(self.buckets[field].items()):
            if uuid in bucket and self._unfile(field, value, uuid):
                return

    def remove(self, uuid: str, task: Any = None) -> None:
        """Forget ``uuid``; ``task``, its task as last filed, finds its buckets at once."""
        number = self.sequence.pop(uuid, None)
        if number is None:
            return
        self.search_text.removed(number)
        values = _filed_values(task) if task is not None else (None,) * len(BUCKET_FIELDS)
        for field, value in zip(BUCKET_FIELDS, values):
            self._unfile_from(field, value, uuid)
        for index in self.sort_indexes.values():
            index.discard(uuid)

    def rebuild(self, tasks: Mapping[str, Any]) -> None:
        """Start over from the mapping ``tasks`` (after the state was cleared)."""
        numbers, next_number = self.sequence, self._next_number
        self.__init__()
        for task in tasks.values():
            self.update(task, numbers.get(task.uuid))
        self._next_number = max(self._next_number, next_number)

    def number_from(self, number: int) -> None:
        """Give new tasks creation numbers from ``number`` on (those of a restored history
        are below it)."""
        self._next_number = max(self._next_number, number)

    def oldest_number(self) -> int:
        """The creation number of the oldest task in memory (the next one if none)."""
        return next(iter(self.sequence.values()), self._next_number)

    def bucket(self, field: str, value: Any) -> set[str] | tuple[()]:
        return self.buckets[field].get(value, ())

    def sort_index(self, field: str, tasks: Mapping[str, Any]) -> SortIndex:
        """The :class:`SortIndex` of ``field``, built now if nobody sorted by it yet."""
        index = self.sort_indexes.get(field)
        if index is None:
            index = self.sort_indexes[field] = SortIndex(field, tasks, self.sequence)
        return index

    def newest_first(self) -> Iterator[str]:
        """Every uuid, most recently created first.

        Lazy: consume it before the next event is applied (take a ``list`` of it
        to keep it across IO loop turns)."""
        return reversed(self.sequence)

    def by_creation(self, uuids: Iterable[str]) -> list[str]:
        """``uuids`` ordered newest first."""
        number = self.sequence.get
        return sorted(uuids, key=lambda uuid: -number(uuid, -1))
