"""The cluster state Flower keeps: Celery's :class:`~celery.events.state.State` with
compact tasks, per-worker event counters, metrics and an index of the tasks.

Only the IO loop changes it (see :mod:`flower.events`); it does no I/O itself.
"""
import collections
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from weakref import WeakSet

from celery.events.state import State, Task
from kombu.utils.functional import LRUCache

from flower.metrics import PrometheusMetrics, get_prometheus_metrics
from flower.store import row_fields
from flower.utils.task_event import apply_task_event, note_task_heartbeat
from flower.utils.task_index import TaskIndex


class CompactTask(Task):
    """A task that keeps only the fields Flower shows, not every key of every event.

    Celery's task copies whole events into itself (host names, pids, clocks
    of each event) and builds a set for its children and a table of bound
    methods up front; this one does neither until it is needed.
    """

    #: The host name of the event that created the task, when that event named it (what
    #: Celery's ``tasks_by_type`` and ``tasks_by_worker`` list); None otherwise.
    _listed_under = None
    #: Event keys worth keeping (``hostname`` is kept as the task's ``worker``).
    kept_fields = frozenset(Task._fields) - {'uuid', 'worker', 'children', 'root', 'parent'}

    def __init__(self, uuid: str | None = None, cluster_state: State | None = None,
                 children: Iterable[str] | None = None, **kwargs: Any) -> None:
        self.uuid = uuid
        self.cluster_state = cluster_state
        if children:
            self.children.update(cluster_state.tasks.get(task_id) for task_id in children
                                 if task_id in cluster_state.tasks)
        if kwargs:
            self.__dict__.update(kwargs)

    @property
    def children(self) -> WeakSet:
        kids = self.__dict__.get('_children')
        if kids is None:
            kids = self.__dict__['_children'] = WeakSet()
        return kids

    @children.setter
    def children(self, value: WeakSet) -> None:
        self.__dict__['_children'] = value

    @property
    def child_ids(self) -> list[str]:
        """The children's ids, without creating an empty set for a task that has none."""
        return [child.uuid for child in self.__dict__.get('_children') or ()]

    @property
    def _serializer_handlers(self):
        return {'children': lambda _: self.child_ids,
                'root': lambda _: self.root_id, 'parent': lambda _: self.parent_id}

    def event(self, type_: str, timestamp: float | None = None,
              local_received: float | None = None,
              fields: dict[str, Any] | None = None) -> None:
        """Apply one event as Celery's :meth:`Task.event` does, keeping only
        :attr:`kept_fields` (see :func:`~flower.utils.task_event.apply_task_event`)."""
        apply_task_event(self, type_, timestamp, fields, self.kept_fields)


def stored_task(row: Sequence[Any]) -> CompactTask:
    """A task of the stored history (a :data:`~flower.store.TASK_COLUMNS` row), not
    attached to any state: what listings show for tasks no longer in memory."""
    fields = row_fields(row)
    task = CompactTask(row[0])
    hostname = fields.pop('worker', None)
    if hostname is not None:
        task.worker = State.Worker(hostname)
    task.__dict__.update(fields)
    return task


class ListedTasks:
    """Celery's ``State.tasks_by_type`` and ``tasks_by_worker``: the tasks in memory
    created by an event that named them, by task name or by that event's host name.

    Celery keeps a weak set of tasks for each, two weak references a task (a sixth
    of a compact task's memory); this works them out from the tasks in memory when
    read, which only code using Celery's interface does. Calling it is Celery's
    time-ordered form (``state.tasks_by_type(name, limit=10)``).
    """

    def __init__(self, state: 'EventsState', ordered: Callable[..., Any], by_name: bool) -> None:
        self._state = state
        self._ordered = ordered
        self._by_name = by_name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ordered(*args, **kwargs)

    def _listed(self) -> Iterator[tuple[str, CompactTask]]:
        for task in list(self._state.tasks.data.values()):
            hostname = task._listed_under
            if hostname is not None:
                yield (task.name if self._by_name else hostname), task

    def __getitem__(self, key: str) -> set[CompactTask]:
        if self._by_name:
            data = self._state.tasks.data
            tasks = (data.get(uuid) for uuid in self._state.task_index.bucket('name', key))
            return {task for task in tasks if task is not None and task._listed_under is not None}
        return {task for hostname, task in self._listed() if hostname == key}

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] or default  # a key is there while some task is listed under it

    def __contains__(self, key: object) -> bool:
        return any(listed == key for listed, _ in self._listed())

    def keys(self) -> list[str]:
        return list(dict.fromkeys(key for key, _ in self._listed()))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def items(self) -> list[tuple[str, set[CompactTask]]]:
        return [(key, self[key]) for key in self.keys()]

    def values(self) -> list[set[CompactTask]]:
        return [self[key] for key in self.keys()]

    def clear(self) -> None:
        """Nothing to clear: the listing follows the tasks in memory."""


class SharedTexts:
    """One string for equal short texts of task events (``'{}'``, ``'()'``, a common
    result): decoding makes a new one for every event, which its task then keeps."""

    fields = ('args', 'kwargs', 'result')
    #: Longest text shared, and how many are remembered (then forgotten all at once).
    longest = 256
    size = 4096

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}

    def share(self, event: dict[str, Any]) -> None:
        """Replace ``event``'s texts by equal ones seen before."""
        texts = self._texts
        longest = self.longest
        for key in self.fields:
            value = event.get(key)
            if value.__class__ is str and len(value) <= longest:
                event[key] = texts.setdefault(value, value)
        if len(texts) > self.size:
            texts.clear()


class TaskCache(LRUCache):
    """The tasks by uuid; beyond ``limit`` the oldest one is dropped and reported to
    ``on_evict``. Reading a task does not make it "recent": what is kept never
    depends on what someone looked at."""

    def __init__(self, limit: int, on_evict: Callable[[str, CompactTask], None]) -> None:
        super().__init__(limit)
        self.on_evict = on_evict

    def __getitem__(self, key: str) -> CompactTask:
        return self.data[key]

    def __setitem__(self, key: str, value: CompactTask) -> None:
        with self.mutex:
            data = self.data
            if key not in data and self.limit and len(data) >= self.limit:
                self.on_evict(*data.popitem(last=False))
            data[key] = value

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


class NoTaskHeap(list):
    """Stands in for Celery's per-event time heap, which the task index replaces:
    appends and inserts are ignored, so it stays empty and costs nothing."""

    def append(self, item: Any) -> None:
        pass

    def insert(self, index: int, item: Any) -> None:
        pass


class EventsState(State):
    """Celery's cluster state plus per-worker event counters, Prometheus metrics and
    a :class:`~flower.utils.task_index.TaskIndex` of the tasks in memory."""

    Task = CompactTask

    def __init__(self, *args: Any, metrics: PrometheusMetrics | None = None,
                 **kwargs: Any) -> None:
        self.task_index = TaskIndex()
        #: Set by :class:`Events` in persistent mode: collect what to write next.
        self.track_changes = False
        self.changed_tasks = {}  # uuid -> (task, creation number)
        self.changed_workers = set()
        #: Set by :class:`Events` in persistent mode: ``uuid -> {field: value}`` of the
        #: stored task (``None`` if there is none), to fill in a task that comes back to
        #: memory, after it left, with an event that carries few of its fields.
        self.stored_fields = None
        #: Set by :class:`Events` in persistent mode: ``uuid -> task`` of a task that left
        #: memory before its changes were written (``None`` if there is none).
        self.unwritten_task = None
        kwargs.setdefault('tasks', TaskCache(kwargs.get('max_tasks_in_memory', 10000),
                                             self._forget_task))
        kwargs.setdefault('taskheap', NoTaskHeap())
        super().__init__(*args, **kwargs)
        self.tasks_by_type = ListedTasks(self, self._tasks_by_type, by_name=True)
        self.tasks_by_worker = ListedTasks(self, self._tasks_by_worker, by_name=False)
        self.counter = collections.defaultdict(collections.Counter)
        self._shared_texts = SharedTexts()
        self.metrics = metrics if metrics is not None else get_prometheus_metrics()

    def event(self, event: dict[str, Any]) -> tuple[Any, str] | None:
        worker_name = event.get('hostname', '')
        event_type = event.get('type', '')
        self.counter[worker_name][event_type] += 1
        task = None
        if event_type.startswith('task-') and 'task' not in self.handlers:
            self._shared_texts.share(event)
            known = self.tasks.data.get(event.get('uuid'))
            if known is not None:
                was, name, worker = known.state, known.name, known.worker
            with self._mutex:
                result = self._task_event(event, event_type[5:], known)
            (task, created), subject = result
            if created:
                if subject not in ('received', 'sent') and self.stored_fields:
                    self._fill_in_from_history(task)
                self.task_index.update(task)
            else:  # names are interned: the same name is the same string
                self.task_index.update(task, was=was, moved=task.worker is not worker
                                       or task.name is not name)
            if self.track_changes:
                self.changed_tasks[task.uuid] = (task, self.task_index.sequence[task.uuid])
                self.changed_workers.add(worker_name)
            self.metrics.record_task_event(event, event_type, task, worker_name)
            return result
        result = super().event(event)
        if self.track_changes:
            self.changed_workers.add(worker_name)
        self.metrics.record_event(event, None)
        return result

    def _fill_in_from_history(self, task: CompactTask) -> None:
        """Give a task that came back to memory the stored fields its event lacked."""
        stored = self.stored_fields(task.uuid)
        if stored:
            fields = task.__dict__
            for name, value in stored.items():
                fields.setdefault(name, value)
            if task.name is not None:
                self._seen_types.add(task.name)

    def _task_event(self, event: dict[str, Any], subject: str,
                    task: CompactTask | None) -> tuple[tuple[CompactTask, bool], str]:
        """Apply a task event as Celery's state does, minus its heap of every event by
        time (the task index orders tasks) and the lookups that heap needs: this is
        where Flower spends most of its time under load. ``task`` is the event's task
        in memory (``None`` if it is not)."""
        self.event_count += 1
        if self.event_callback:
            self.event_callback(self, event)
        uuid, hostname = event['uuid'], event['hostname']
        timestamp, local_received = event['timestamp'], event['local_received']
        tasks = self.tasks
        created = task is None
        if created:
            task = tasks[uuid] = self.Task(uuid, cluster_state=self)
        if subject == 'sent':
            task.client = hostname
        else:
            workers = self.workers
            worker = workers.data.get(hostname)
            if worker is None:
                worker = workers[hostname] = self.Worker(hostname)
            task.worker = worker
            if local_received and timestamp:
                note_task_heartbeat(worker, timestamp, local_received)
        if subject == 'received':
            self.task_count += 1
        task.event(subject, timestamp, local_received, event)
        name = task.name
        if name is not None:
            self._seen_types.add(name)
            if created:
                # See ListedTasks; the worker's own string, not the event's copy.
                task._listed_under = task.client if subject == 'sent' else task.worker.hostname
        parent_id = task.parent_id
        if parent_id:
            parent = tasks.data.get(parent_id)
            if parent is None:
                self._add_pending_task_child(task)
            else:
                parent.children.add(task)
        orphans = self._tasks_to_resolve
        if uuid in orphans.data:
            task.children.update(orphans.pop(uuid))
        return (task, created), subject

    def take_changes(self) -> tuple[dict[str, tuple[CompactTask, int]], set[str]]:
        """What changed since the last call: ``(tasks, workers)`` as ``{uuid: (task,
        number)}`` and host names. Called on the IO loop, like :meth:`event`, so
        every event is in exactly one batch."""
        tasks, workers = self.changed_tasks, self.changed_workers
        self.changed_tasks, self.changed_workers = {}, set()
        return tasks, workers

    def restore_task(self, fields: dict[str, Any], number: int) -> CompactTask:
        """Put back a stored task (``fields`` by name, ``worker`` a host name)."""
        tasks = self.tasks.data
        task = self.Task(fields.pop('uuid'), cluster_state=self)
        hostname = fields.pop('worker', None)
        if hostname is not None:
            worker = self.workers.data.get(hostname)
            task.worker = worker if worker is not None else self.get_or_create_worker(hostname)[0]
        task.__dict__.update(fields)
        tasks[task.uuid] = task
        self.task_index.update(task, number)
        if task.name is not None:
            self._seen_types.add(task.name)
        parent = tasks.get(fields.get('parent_id'))
        if parent is not None:
            parent.children.add(task)
        return task

    def follow_task(self, fields: dict[str, Any], number: int) -> CompactTask:
        """Bring into memory a task another replica wrote (``fields`` as for
        :meth:`restore_task`): a new one, or the one in memory brought up to date."""
        task = self.tasks.data.get(fields['uuid'])
        if task is None:
            return self.restore_task(fields, number)
        del fields['uuid']
        hostname = fields.pop('worker', None)
        if hostname is not None:
            task.worker = self.get_or_create_worker(hostname)[0]
        task.__dict__.update(fields)
        self.task_index.update(task)
        if task.name is not None:
            self._seen_types.add(task.name)
        return task

    def forget_oldest_tasks(self, keep: int | None = None, before: float | None = None) -> None:
        """Drop the oldest tasks from memory: beyond ``keep`` tasks, or last changed
        before the timestamp ``before`` (the history's retention limits)."""
        data = self.tasks.data
        while data:
            uuid, task = next(iter(data.items()))
            too_many = keep is not None and len(data) > keep
            too_old = before is not None and (task.timestamp or 0) < before
            if not (too_many or too_old):
                break
            del data[uuid]
            self.task_index.remove(uuid, task)

    def _forget_task(self, uuid: str, task: CompactTask) -> None:
        self.task_index.remove(uuid, task)

    def rebuild_taskheap(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to rebuild: the task index takes the heap's place."""

    def _clear_tasks(self, ready: bool = True) -> None:
        super()._clear_tasks(ready)
        self.task_index.rebuild(self.tasks.data)

    def tasks_by_time(self, limit: int | None = None,
                      reverse: bool = True) -> Iterator[tuple[str, CompactTask]]:
        """``(uuid, task)`` pairs, most recently created first unless ``reverse`` is false."""
        index = self.task_index
        order = list(index.newest_first() if reverse else index.sequence)
        get = self.tasks.data.get
        for uuid in itertools.islice(order, limit):
            task = get(uuid)
            if task is not None:
                yield uuid, task

    tasks_by_timestamp = tasks_by_time
