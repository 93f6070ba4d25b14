"""Event capture: a thread that reads Celery events from the broker and feeds the state.

The receiving thread does nothing but read events and append them to a queue;
the IO loop applies them to :class:`EventsState` in bounded batches, so a flood
of events never blocks the broker subscription and never starves HTTP requests.
"""
import collections
import gc
import itertools
import json
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from weakref import WeakSet

from celery.events import EventReceiver
from celery.events.receiver import CLIENT_CLOCK_SKEW
from celery.events.state import State, Task
from celery.utils.time import utcoffset
from kombu.utils.functional import LRUCache
from tornado.ioloop import PeriodicCallback

from flower.metrics import PrometheusMetrics, get_prometheus_metrics  # noqa: F401 (public here too)
from flower.store import WORKER_FIELDS, TaskStore, row_fields, task_row
from flower.utils.broker import broadcast_connection, run_detached
from flower.utils.task_index import TaskIndex

logger = logging.getLogger(__name__)


class CompactTask(Task):
    """A task that keeps only the fields Flower shows, not every key of every event.

    Celery's task copies whole events into itself (host names, pids, clocks
    of each event) and builds a set for its children and a table of bound
    methods up front; this one does neither until it is needed.
    """

    #: Event keys worth keeping (``hostname`` is kept as the task's ``worker``).
    kept_fields = frozenset(Task._fields) - {'uuid', 'worker', 'children', 'root', 'parent'}
    _interned = ('name', 'exchange', 'routing_key')

    def __init__(self, uuid=None, cluster_state=None, children=None, **kwargs):
        self.uuid = uuid
        self.cluster_state = cluster_state
        if children:
            self.children.update(cluster_state.tasks.get(task_id) for task_id in children
                                 if task_id in cluster_state.tasks)
        if kwargs:
            self.__dict__.update(kwargs)

    @property
    def children(self):
        kids = self.__dict__.get('_children')
        if kids is None:
            kids = self.__dict__['_children'] = WeakSet()
        return kids

    @children.setter
    def children(self, value):
        self.__dict__['_children'] = value

    @property
    def child_ids(self):
        """The children's ids, without creating an empty set for a task that has none."""
        return [child.uuid for child in self.__dict__.get('_children') or ()]

    @property
    def _serializer_handlers(self):
        return {'children': lambda _: self.child_ids,
                'root': lambda _: self.root_id, 'parent': lambda _: self.parent_id}

    def event(self, type_, timestamp=None, local_received=None, fields=None, **kwargs):
        kept = self.kept_fields
        fields = {key: value for key, value in (fields or {}).items() if key in kept}
        for key in self._interned:
            if isinstance(fields.get(key), str):
                fields[key] = sys.intern(fields[key])
        return super().event(type_, timestamp, local_received, fields, **kwargs)


def stored_task(row):
    """A task of the stored history (a :data:`~flower.store.TASK_COLUMNS` row), not
    attached to any state: what listings show for tasks no longer in memory."""
    fields = row_fields(row)
    task = CompactTask(row[0])
    hostname = fields.pop('worker', None)
    if hostname is not None:
        task.worker = State.Worker(hostname)
    task.__dict__.update(fields)
    return task


class TaskCache(LRUCache):
    """The tasks by uuid; beyond ``limit`` the oldest one is dropped and reported to
    ``on_evict``. Reading a task does not make it "recent": what is kept never
    depends on what someone looked at."""

    def __init__(self, limit, on_evict):
        super().__init__(limit)
        self.on_evict = on_evict

    def __getitem__(self, key):
        return self.data[key]

    def __setitem__(self, key, value):
        with self.mutex:
            data = self.data
            if key not in data and self.limit and len(data) >= self.limit:
                self.on_evict(*data.popitem(last=False))
            data[key] = value

    def update(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


class NoTaskHeap(list):
    """Stands in for Celery's per-event time heap, which the task index replaces:
    appends and inserts are ignored, so it stays empty and costs nothing."""

    def append(self, item):
        pass

    def insert(self, index, item):
        pass


class EventsState(State):
    """Celery's cluster state plus per-worker event counters, Prometheus metrics and
    a :class:`~flower.utils.task_index.TaskIndex` of the tasks in memory."""

    Task = CompactTask

    def __init__(self, *args, metrics=None, **kwargs):
        self.task_index = TaskIndex()
        #: Set by :class:`Events` in persistent mode: collect what to write next.
        self.track_changes = False
        self.changed_tasks = {}  # uuid -> (task, creation number)
        self.changed_workers = set()
        #: Set by :class:`Events` in persistent mode: ``uuid -> {field: value}`` of the
        #: stored task (``None`` if there is none), to fill in a task that comes back to
        #: memory, after it left, with an event that carries few of its fields.
        self.stored_fields = None
        kwargs.setdefault('tasks', TaskCache(kwargs.get('max_tasks_in_memory', 10000),
                                             self._forget_task))
        kwargs.setdefault('taskheap', NoTaskHeap())
        super().__init__(*args, **kwargs)
        self.counter = collections.defaultdict(collections.Counter)
        self.metrics = metrics if metrics is not None else get_prometheus_metrics()

    def event(self, event):
        worker_name = event.get('hostname', '')
        event_type = event.get('type', '')
        self.counter[worker_name][event_type] += 1
        task = None
        if event_type.startswith('task-') and 'task' not in self.handlers:
            with self._mutex:
                result = self._task_event(event, event_type[5:])
            (task, created), subject = result
            if created and subject not in ('received', 'sent') and self.stored_fields:
                self._fill_in_from_history(task)
            self.task_index.update(task)
            if self.track_changes:
                self.changed_tasks[task.uuid] = (task, self.task_index.sequence[task.uuid])
        else:
            result = super().event(event)
        if self.track_changes:
            self.changed_workers.add(worker_name)
        self.metrics.record_event(event, task)
        return result

    def _fill_in_from_history(self, task):
        """Give a task that came back to memory the stored fields its event lacked."""
        stored = self.stored_fields(task.uuid)
        if stored:
            fields = task.__dict__
            for name, value in stored.items():
                fields.setdefault(name, value)
            if task.name is not None:
                self._seen_types.add(task.name)

    def _task_event(self, event, subject):
        """Apply a task event as Celery's state does, minus its heap of every event by
        time (the task index orders tasks) and the lookups that heap needs: this is
        where Flower spends most of its time under load."""
        self.event_count += 1
        if self.event_callback:
            self.event_callback(self, event)
        uuid, hostname = event['uuid'], event['hostname']
        timestamp, local_received = event['timestamp'], event['local_received']
        tasks = self.tasks
        task = tasks.data.get(uuid)
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
            if local_received:
                worker.event(None, local_received, timestamp)  # as Celery calls it
        if subject == 'received':
            self.task_count += 1
        task.event(subject, timestamp, local_received, event)
        name = task.name
        if name is not None:
            self._seen_types.add(name)
            if created:
                self.tasks_by_type[name].add(task)
                self.tasks_by_worker[hostname].add(task)
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

    def take_changes(self):
        """What changed since the last call: ``(tasks, workers)`` as ``{uuid: (task,
        number)}`` and host names. Called on the IO loop, like :meth:`event`, so
        every event is in exactly one batch."""
        tasks, workers = self.changed_tasks, self.changed_workers
        self.changed_tasks, self.changed_workers = {}, set()
        return tasks, workers

    def restore_task(self, fields, number):
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

    def forget_oldest_tasks(self, keep=None, before=None):
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
            self.task_index.remove(uuid)

    def _forget_task(self, uuid, task):
        self.task_index.remove(uuid)

    def rebuild_taskheap(self, *args, **kwargs):
        """Nothing to rebuild: the task index takes the heap's place."""

    def _clear_tasks(self, ready=True):
        super()._clear_tasks(ready)
        self.task_index.rebuild(self.tasks.data)

    def tasks_by_time(self, limit=None, reverse=True):
        """``(uuid, task)`` pairs, most recently created first unless ``reverse`` is false."""
        index = self.task_index
        order = list(index.newest_first() if reverse else index.sequence)
        get = self.tasks.data.get
        for uuid in itertools.islice(order, limit):
            task = get(uuid)
            if task is not None:
                yield uuid, task

    tasks_by_timestamp = tasks_by_time


class BatchEventReceiver(EventReceiver):
    """Celery's event receiver, handing each broker message's events on as one batch.

    Workers send task events in lists; Celery's receiver dispatches them one
    by one and asks the operating system for the time and the UTC offset for
    each. This one reads those once per message, which roughly halves the
    capture thread's work per event, and calls ``on_events(list)``.
    """

    def __init__(self, connection, on_events, **kwargs):
        super().__init__(connection, handlers={}, **kwargs)
        self.on_events = on_events

    def get_consumers(self, Consumer, channel):
        return [Consumer(queues=[self.queue], on_message=self._on_message, no_ack=True,
                         accept=self.accept)]

    def _on_message(self, message):
        """Decode plain JSON bodies with the C decoder: kombu's decoder calls back
        into Python for every object, to revive types events never carry."""
        payload = None
        if message.content_type == 'application/json' and not message.headers.get('compression'):
            body = message.body
            try:
                text = body if isinstance(body, str) else body.decode('utf-8')
                if '__type__' not in text:
                    payload = json.loads(text)
            except ValueError:  # not UTF-8 or not JSON after all: let kombu say why
                payload = None
        if payload is None:
            payload = message.decode()
        self._receive(payload, message)

    def _receive(self, body, message, list=list, isinstance=isinstance):
        events = body if isinstance(body, list) else [body]
        now = time.time()
        here = utcoffset()
        highest_clock = 0
        for event in events:
            if event.get('type') == 'task-sent':
                # Clients never synchronise their clocks: place the event just before ours.
                event['clock'] = (self.clock.value or 1) + CLIENT_CLOCK_SKEW
            clock = event.get('clock')
            if clock is None:
                event['clock'] = self.forward_clock()
            elif clock > highest_clock:
                highest_clock = clock
            offset = event.get('utcoffset')
            timestamp = event.get('timestamp')
            if offset is not None and timestamp is not None and offset != here:
                event['timestamp'] = timestamp - (offset - here) * 3600
            event['local_received'] = now
        if highest_clock:
            self.adjust_clock(highest_clock)
        self.on_events(events)


class Backoff:
    """Reconnection delays that double from ``initial`` up to ``maximum`` seconds."""

    def __init__(self, initial=1.0, maximum=30.0):
        self.initial = initial
        self.maximum = maximum
        self.current = initial

    def next_delay(self):
        delay = self.current
        self.current = min(self.current * 2, self.maximum)
        return delay

    def reset(self):
        self.current = self.initial


class Events(threading.Thread):
    """The capture thread: broker → queue of raw events → IO loop → :class:`EventsState`."""

    events_enable_interval = 5000  # milliseconds between enable_events broadcasts
    batch_size = 5000  # events applied per IO loop turn before yielding to requests
    max_pending = 1_000_000  # events waiting to be applied beyond which new ones are dropped
    gc_freeze_interval = 5000  # milliseconds between two gc.freeze() calls
    #: The interpreter's GIL switch interval while capturing, in seconds (Python's
    #: default is 0.005). The capture thread gives up the GIL at every socket read and
    #: then waits for it up to a switch interval while the IO loop applies a backlog;
    #: at 5 ms it reads too slowly to keep up with a busy cluster, and Redis drops a
    #: subscriber that falls 32 MB behind, losing every event sent until it is back.
    gil_switch_interval = 0.0005

    default_flush_interval = 1000  # milliseconds between two history writes

    def __init__(self, capp, io_loop, db=None, persistent=False, enable_events=True,
                 state_save_interval=0, db_max_tasks=0, db_max_age=0, **kwargs):
        super().__init__(name='flower-events', daemon=True)
        self.capp = capp
        self.io_loop = io_loop
        self.db = db
        self.persistent = persistent
        self.enable_events = enable_events
        self.state_save_interval = state_save_interval
        self.db_max_tasks = db_max_tasks
        self.db_max_age = db_max_age
        self.state = EventsState(**kwargs)
        self.store = None
        self._writer = None
        self._flush_timer = None
        self._writing = False
        self._last_write_error = None
        self._in_flight_changes = 0  # tasks and workers of the batch being written
        self.history_write_errors = 0  # failed history writes since start
        self.received_count = 0
        self.applied_count = 0
        self.dropped_backlog_count = 0  # written by the capture thread only
        self.dropped_invalid_count = 0  # written by the IO loop only
        self.broker_disconnects = 0
        self._dropping = False
        self.enable_events_sent = 0
        self.broker_connected = False
        self.broker_error = None
        self._pending = collections.deque()
        self._drain_scheduled = False
        self._stopping = threading.Event()
        self._receiver = None
        self._outage_started = None
        self._enabling_events = False
        self._backoff = Backoff()
        self._timer = None
        if enable_events:
            self._timer = PeriodicCallback(self.on_enable_events, self.events_enable_interval)
        self.state.metrics.watch_ingest(self.ingest_stats)
        self._gc_timer = PeriodicCallback(gc.freeze, self.gc_freeze_interval)

    @property
    def dropped_count(self):
        return self.dropped_backlog_count + self.dropped_invalid_count

    def ingest_stats(self):
        """Counts of the event capture (see :data:`flower.metrics.INGEST_METRICS`)."""
        pending = self._pending
        try:
            oldest = pending[0].get('local_received') if pending else None
        except IndexError:  # applied meanwhile
            oldest = None
        return {
            'received': self.received_count, 'applied': self.applied_count,
            'dropped': self.dropped_count, 'disconnects': self.broker_disconnects,
            'pending': len(pending),
            'lag': max(0.0, time.time() - oldest) if oldest else 0.0,
            'history_write_errors': self.history_write_errors,
            'history_pending': self.pending_history_changes(),
        }

    def pending_history_changes(self):
        """Tasks and workers changed in memory and not yet written to the history."""
        state = self.state
        return len(state.changed_tasks) + len(state.changed_workers) + self._in_flight_changes

    def history_status(self):
        """How far the ``--persistent`` history is loaded and written (``None`` without one)."""
        if self.store is None:
            return None
        return {
            'loading': self.restoring, 'tasks_loaded': self.restored_count,
            'tasks_to_load': self.restore_total,
            'pending_changes': self.pending_history_changes(),
            'writing': 'failing' if self._last_write_error is not None else 'ok',
        }

    def start(self):
        """Restore the history (``persistent``), then capture events.

        Long-lived objects (tasks, workers) are moved out of the garbage
        collector's sight every :attr:`gc_freeze_interval`: with hundreds of
        thousands of tasks a full collection would otherwise stall the IO loop
        for a second; tasks are still freed when dropped (they hold no cycles).
        The GIL switch interval is shortened to :attr:`gil_switch_interval`.
        """
        if self.persistent:
            self.open_history(in_background=True)
        if sys.getswitchinterval() > self.gil_switch_interval:
            sys.setswitchinterval(self.gil_switch_interval)
        gc.freeze()
        self._gc_timer.start()
        super().start()
        if self._timer is not None:
            self._timer.start()

    def stop(self):
        self._gc_timer.stop()
        if self._timer is not None:
            self._timer.stop()
        self._stopping.set()
        if self._receiver is not None:
            self._receiver.should_stop = True
        if self.is_alive():
            self.join(timeout=5)
        if self.store is not None:
            self._flush_timer.stop()
            self._apply_pending_now()
            self.save_state()
            self._writer.shutdown(wait=True)
            self.store.close()
            self.store = None

    # -- persistent history (see docs/persistence.rst) ------------------------------

    def open_history(self, in_background=False):
        """Open the ``db`` history, restore tasks, workers and counters from it, and
        write changes to it every ``state_save_interval`` ms (every second if 0).

        ``in_background``: tasks come back a chunk per IO loop turn, so requests are
        served meanwhile; events wait until all are back.
        """
        self.store = TaskStore(self.db)
        self.restore_state(in_background)
        self.state.track_changes = True
        self.state.stored_fields = self._stored_fields
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix='flower-history')
        interval = self.state_save_interval or self.default_flush_interval
        self._flush_timer = PeriodicCallback(self.flush_state, interval)
        self._flush_timer.start()

    #: Longest an IO loop turn spends restoring tasks in the background, in seconds:
    #: requests made while the history loads wait behind one such turn at a time.
    restore_slice_seconds = 0.002
    restore_chunk_size = 250  # rows read at a time within a turn
    restoring = False
    restore_total = 0  # tasks the restore brings back
    restored_count = 0  # of which back so far

    def restore_state(self, in_background=False):
        state, store = self.state, self.store
        for hostname, fields in store.load_workers().items():
            known = {name: value for name, value in fields.items() if name in WORKER_FIELDS}
            state.workers[hostname] = state.Worker(**known)
        for hostname, event_type, count in store.load_counters():
            state.counter[hostname][event_type] = count
        state.task_index.number_from(store.next_seq())
        stored = store.count_tasks()
        limit = state.max_tasks_in_memory
        self.restore_total = min(stored, limit) if limit else stored
        self.restored_count = 0
        rows = store.load_tasks(state.max_tasks_in_memory)
        self.restoring = True
        if in_background:
            self.io_loop.add_callback(self._restore_in_background, rows, time.monotonic())
        else:
            started = time.monotonic()
            while self._restore_chunk(rows):
                pass
            self._restored(started)

    def _stored_fields(self, uuid):
        row = self.store.get_task(uuid) if self.store is not None else None
        if row is None:
            return None
        fields = row_fields(row)
        fields.pop('worker', None)
        return fields

    def _restore_chunk(self, rows):
        """Restore the next chunk of tasks; return how many there were."""
        restore = self.state.restore_task
        chunk = rows.fetchmany(self.restore_chunk_size)
        for row in chunk:
            fields = row_fields(row)
            fields['uuid'] = row[0]
            restore(fields, row[1])
        self.restored_count += len(chunk)
        return len(chunk)

    def _restore_in_background(self, rows, started):
        """Restore chunks for at most :attr:`restore_slice_seconds`, then let the IO
        loop serve what waits before going on."""
        deadline = time.perf_counter() + self.restore_slice_seconds
        while self._restore_chunk(rows):
            if time.perf_counter() >= deadline:
                # Restored tasks live on: out of the collector's sight at once, or
                # full collections over a growing heap stall the requests waiting.
                gc.freeze()
                self.io_loop.add_callback(self._restore_in_background, rows, started)
                return
        self._restored(started)

    def _restored(self, started):
        self.restoring = False
        logger.info("Restored %d tasks and %d workers from %s in %.1f s", self.restored_count,
                    len(self.state.workers), self.db, time.monotonic() - started)
        if self._pending and not self._drain_scheduled:
            self._drain_scheduled = True
            self.io_loop.add_callback(self._apply_pending)

    def _take_batch(self):
        """The rows to write for everything changed since the last batch."""
        tasks, workers = self.state.take_changes()
        counter = self.state.counter
        worker_rows, counter_rows = [], []
        for hostname in workers:
            worker = self.state.workers.data.get(hostname)
            if worker is not None:
                worker_rows.append((hostname, {name: getattr(worker, name, None)
                                               for name in WORKER_FIELDS}))
            counter_rows.extend((hostname, event_type, count)
                                for event_type, count in counter.get(hostname, {}).items())
        task_rows = [task_row(task, number) for task, number in tasks.values()]
        return tasks, workers, dict(tasks=task_rows, workers=worker_rows, counters=counter_rows,
                                    max_tasks=self.db_max_tasks, max_age=self.db_max_age)

    def flush_state(self):
        """Hand what changed to the writer thread; skipped while a batch is being written
        (changes keep collecting for the next one)."""
        if self._writing or self.store is None:
            return
        self._apply_retention_in_memory()
        tasks, workers, batch = self._take_batch()
        if not batch['tasks'] and not batch['workers']:
            return
        self._writing = True
        self._in_flight_changes = len(tasks) + len(workers)
        future = self._writer.submit(self.store.write, **batch)
        future.add_done_callback(
            lambda done: self.io_loop.add_callback(self._written, done, tasks, workers))

    def _written(self, future, tasks, workers):
        """After a write: on failure keep the batch for the next try, and log an
        outage once, when it starts, and once more when writing works again."""
        self._writing = False
        self._in_flight_changes = 0
        error = future.exception()
        if error is None:
            if self._last_write_error is not None:
                logger.warning("Writing the task history to %s works again; the changes "
                               "kept meanwhile are written", self.db)
            self._last_write_error = None
            return
        # Newer changes of the same tasks win over the batch kept.
        for uuid, entry in tasks.items():
            self.state.changed_tasks.setdefault(uuid, entry)
        self.state.changed_workers.update(workers)
        self.history_write_errors += 1
        if self._last_write_error is None:
            logger.error("Writing the task history to %s failed: %s: %s. Changes are kept in "
                         "memory and written when it works again (retrying every flush)",
                         self.db, type(error).__name__, error)
        self._last_write_error = f"{type(error).__name__}: {error}"

    def save_state(self):
        """Write everything changed so far now, waiting for it (used at shutdown)."""
        if self.store is None:
            return
        _, _, batch = self._take_batch()
        self._writer.submit(self.store.write, **batch).result()

    def _apply_retention_in_memory(self):
        keep = self.db_max_tasks or None
        before = time.time() - self.db_max_age if self.db_max_age else None
        if keep is not None or before is not None:
            self.state.forget_oldest_tasks(keep=keep, before=before)

    def _apply_pending_now(self):
        """Apply every event received so far (at shutdown, before the last write); if
        the history is still being restored they cannot be, and are counted as dropped."""
        while self._pending and not self.restoring:
            self._apply_pending()
        if self._pending:
            logger.warning("Stopped while restoring the history: %d events received meanwhile "
                           "are dropped", len(self._pending))
            self.dropped_invalid_count += len(self._pending)
            self._pending.clear()

    def run(self):
        while not self._stopping.is_set():
            try:
                self._capture()
            except Exception as exc:  # any broker failure: report it and retry later
                if self._stopping.is_set():
                    break
                self._on_broker_error(exc)
                self._stopping.wait(self._backoff.next_delay())

    def _capture(self):
        with self.capp.connection_for_read() as connection:
            connection.ensure_connection(max_retries=0)
            receiver = BatchEventReceiver(connection, self.on_events, app=self.capp)
            receiver.connect_max_retries = 0
            self._receiver = receiver
            if self._stopping.is_set():
                return
            self._on_connected(connection)
            for _ in receiver.consume(limit=None, timeout=None, wakeup=True):
                pass

    def _on_connected(self, connection):
        if self._outage_started is not None:
            logger.info("Reconnected to broker %s after %.1f s; capturing events again",
                        connection.as_uri(), time.monotonic() - self._outage_started)
        self._outage_started = None
        self.broker_connected = True
        self.broker_error = None
        self._backoff.reset()

    def _on_broker_error(self, exc):
        if self.broker_connected:
            self.broker_disconnects += 1
            logger.warning(
                "Lost the event subscription (%s: %s); events sent until Flower reconnects are "
                "lost. With Redis this is usually the server dropping a subscriber whose "
                "pub/sub output buffer grew past client-output-buffer-limit", type(exc).__name__,
                exc)
        self.broker_connected = False
        self.broker_error = f"{type(exc).__name__}: {exc}"
        if self._outage_started is None:
            self._outage_started = time.monotonic()
            logger.warning("Broker unreachable (%s); events are not captured until it "
                           "comes back, retrying with back-off", self.broker_error)
        else:
            logger.debug("Broker still unreachable: %s", self.broker_error)

    def on_event(self, event):
        """Hand one raw event to the IO loop (called on the capture thread)."""
        self.on_events([event])

    def on_events(self, events):
        """Hand raw events to the IO loop (called on the capture thread).

        Never waits: beyond :attr:`max_pending` waiting events new ones are
        dropped, counted and logged, rather than letting memory grow without end.
        """
        self.received_count += len(events)
        pending = self._pending
        room = self.max_pending - len(pending)
        if room < len(events):
            dropped = len(events) - max(room, 0)
            self.dropped_backlog_count += dropped
            events = events[:max(room, 0)]
            if not self._dropping:
                self._dropping = True
                logger.warning("%d events are waiting to be applied: dropping new events "
                               "until the backlog halves (see flower_ingest_events_dropped)",
                               len(pending) + len(events))
        elif self._dropping and len(pending) < self.max_pending // 2:
            self._dropping = False
            logger.warning("Applying events again; %d dropped so far",
                           self.dropped_backlog_count)
        pending.extend(events)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.io_loop.add_callback(self._apply_pending)

    def _apply_pending(self):
        self._drain_scheduled = False
        if self.restoring:
            return  # the restore applies them when it is done
        pending = self._pending
        apply_event = self.state.event
        count = min(len(pending), self.batch_size)
        failed = 0
        for _ in range(count):
            event = pending.popleft()
            try:
                apply_event(event)
            except Exception:
                failed += 1
                logger.exception("Failed to apply event %r", event.get('type'))
        self.dropped_invalid_count += failed
        self.applied_count += count - failed
        if pending and not self._drain_scheduled:
            self._drain_scheduled = True
            self.io_loop.add_callback(self._apply_pending)

    def _send_enable_events(self):
        with broadcast_connection(self.capp) as connection:
            self.capp.control.enable_events(connection=connection)

    async def on_enable_events(self):
        """Ask every worker to send events, so workers started later are seen."""
        if self._enabling_events or not self.broker_connected:
            return
        self._enabling_events = True
        try:
            await run_detached(self._send_enable_events)
            self.enable_events_sent += 1
        except Exception as exc:
            logger.warning("Failed to enable events: %s: %s", type(exc).__name__, exc)
        finally:
            self._enabling_events = False
