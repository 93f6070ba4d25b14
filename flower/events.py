"""Event capture: a thread that reads Celery events from the broker and feeds the state.

The receiving thread does nothing but read events and append them to a queue;
the IO loop applies them to :class:`EventsState` in bounded batches, so a flood
of events never blocks the broker subscription and never starves HTTP requests.
"""
import collections
import itertools
import logging
import sys
import threading
import time
from weakref import WeakSet

from celery.events import EventReceiver
from celery.events.state import State, Task
from kombu.utils.functional import LRUCache
from tornado.ioloop import PeriodicCallback

from flower.metrics import PrometheusMetrics, get_prometheus_metrics  # noqa: F401 (public here too)
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

    def __init__(self, *args, metrics=None, on_task_evicted=None, **kwargs):
        self.task_index = TaskIndex()
        self.on_task_evicted = on_task_evicted
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
        result = super().event(event)
        task = None
        if event_type.startswith('task-'):
            task = self.tasks.data.get(event.get('uuid'))
            if task is not None:
                self.task_index.update(task)
        self.metrics.record_event(event, task)
        return result

    def _forget_task(self, uuid, task):
        self.task_index.remove(uuid)
        if self.on_task_evicted is not None:
            self.on_task_evicted(uuid, task)

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

    def __init__(self, capp, io_loop, db=None, persistent=False, enable_events=True,
                 state_save_interval=0, **kwargs):
        super().__init__(name='flower-events', daemon=True)
        self.capp = capp
        self.io_loop = io_loop
        self.db = db
        self.persistent = persistent
        self.enable_events = enable_events
        self.state_save_interval = state_save_interval
        self.state = EventsState(**kwargs)
        self.received_count = 0
        self.applied_count = 0
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

    def start(self):
        super().start()
        if self._timer is not None:
            self._timer.start()

    def stop(self):
        if self._timer is not None:
            self._timer.stop()
        self._stopping.set()
        if self._receiver is not None:
            self._receiver.should_stop = True
        if self.is_alive():
            self.join(timeout=5)

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
            receiver = EventReceiver(connection, handlers={'*': self.on_event}, app=self.capp)
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
        self.received_count += 1
        self._pending.append(event)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.io_loop.add_callback(self._apply_pending)

    def _apply_pending(self):
        self._drain_scheduled = False
        pending = self._pending
        apply_event = self.state.event
        count = min(len(pending), self.batch_size)
        for _ in range(count):
            event = pending.popleft()
            try:
                apply_event(event)
            except Exception:
                logger.exception("Failed to apply event %r", event.get('type'))
        self.applied_count += count
        if pending and not self._drain_scheduled:
            self._drain_scheduled = True
            self.io_loop.add_callback(self._apply_pending)

    def _send_enable_events(self):
        with self.capp.connection_for_write() as connection:
            self.capp.control.enable_events(connection=connection)

    async def on_enable_events(self):
        """Ask every worker to send events, so workers started later are seen."""
        if self._enabling_events or not self.broker_connected:
            return
        self._enabling_events = True
        try:
            await self.io_loop.run_in_executor(None, self._send_enable_events)
            self.enable_events_sent += 1
        except Exception as exc:
            logger.warning("Failed to enable events: %s: %s", type(exc).__name__, exc)
        finally:
            self._enabling_events = False
