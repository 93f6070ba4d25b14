"""The Prometheus metrics Flower serves at ``/metrics`` (see ``docs/prometheus.rst``).

Each Flower application owns a :class:`PrometheusMetrics` with a registry of
its own, so two Flowers in one process (embedded, or in tests) never mix
their counts; :func:`get_prometheus_metrics` is the process-wide instance on
``prometheus_client``'s default registry, for event states built without one.
"""

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import prometheus_client
from celery.events.state import Task, Worker
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.values import MutexValue

from flower.metrics_text import MetricsText
from flower.options import default_options

#: Task events after which a received task is no longer waiting at the worker.
LEAVES_PREFETCH = frozenset(
    ('task-started', 'task-succeeded', 'task-failed', 'task-revoked', 'task-rejected'))


class PrometheusMetrics:
    """The instruments Flower updates from the events it sees and the queues it samples."""

    def __init__(self, runtime_buckets: Iterable[float] | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        if runtime_buckets is None:
            runtime_buckets = default_options.task_runtime_metric_buckets
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        self.events = Counter(
            'flower_events', 'Number of times a celery task event was registered by Flower.',
            ['task', 'type', 'worker'], registry=self.registry)
        self.runtime = Histogram(
            'flower_task_runtime_seconds', 'The time it took to run the task.',
            ['task', 'worker'], buckets=sorted(set(runtime_buckets)), registry=self.registry)
        self.prefetch_time = Gauge(
            'flower_task_prefetch_time_seconds',
            'The time the task spent waiting at the celery worker to be executed.',
            ['task', 'worker'], registry=self.registry)
        self.number_of_prefetched_tasks = Gauge(
            'flower_worker_prefetched_tasks',
            'Number of tasks of given type prefetched at a worker.',
            ['task', 'worker'], registry=self.registry)
        self.worker_online = Gauge(
            'flower_worker_online', "Shows celery worker's online status.",
            ['worker'], registry=self.registry)
        self.worker_number_of_currently_executing_tasks = Gauge(
            'flower_worker_number_of_currently_executing_tasks',
            'Number of tasks currently executing at this worker.',
            ['worker'], registry=self.registry)
        self.queue_length = Gauge(
            'flower_queue_length',
            'Number of messages in a broker queue, as last sampled by Flower.',
            ['queue'], registry=self.registry)
        self._worker_metrics = (
            (self.events, ('task', 'type', 'worker')),
            (self.runtime, ('task', 'worker')),
            (self.prefetch_time, ('task', 'worker')),
            (self.number_of_prefetched_tasks, ('task', 'worker')),
            (self.worker_online, ('worker',)),
            (self.worker_number_of_currently_executing_tasks, ('worker',)))
        # (task name, worker) -> its series, with the tasks received there and not started yet
        self._task_series = {}
        self._ingest = None
        self._leadership = None
        # (metric, label values) -> child: ``labels()`` costs more than the update itself
        self._children = {}
        self._text = MetricsText(self.registry)
        #: While :meth:`batch` runs: the task series with updates still to apply.
        self._batch = None

    def _child(self, metric: MetricWrapperBase, *values: str) -> MetricWrapperBase:
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def watch_ingest(self, stats: Callable[[], Mapping[str, float]]) -> None:
        """Serve the event capture's own counts: ``stats()`` returns the keys of
        :data:`INGEST_METRICS`, read at every scrape (so counting costs nothing
        per event). A later call replaces the source."""
        if self._ingest is not None:
            self.registry.unregister(self._ingest)
        self._ingest = _IngestCollector(stats)
        self.registry.register(self._ingest)

    def watch_leadership(self, leading: Callable[[], bool]) -> None:
        """Serve ``flower_leader``: 1 while ``leading()`` (this replica captures and
        writes the shared history), else 0. Only replicas have it; a later call
        replaces the source."""
        if self._leadership is not None:
            self.registry.unregister(self._leadership)
        self._leadership = _LeaderCollector(leading)
        self.registry.register(self._leadership)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Gather the task events' updates recorded within, and apply them to the
        instruments once per series at its end: a counter incremented by the events'
        number, a gauge set to its last value. Readers between two batches (the IO
        loop applies events in batches) see what one update per event would show."""
        if self._batch is not None:  # within another batch: that one applies them
            yield
            return
        self._batch = pending = []
        try:
            yield
        finally:
            self._batch = None
            for series in pending:
                series.apply()

    def record_event(self, event: Mapping[str, Any], task: Task | None) -> None:
        """Update the instruments for one event already applied to Celery's state.

        ``task`` is the state's :class:`celery.events.state.Task` of a task
        event (``None`` if the state does not keep it).
        """
        event_type = event.get('type', '')
        worker = event.get('hostname', '')
        if event_type.startswith('task-'):
            self.record_task_event(event, event_type, task, worker)
        elif event_type in ('worker-online', 'worker-heartbeat'):
            self._child(self.worker_online, worker).set(1)
            if event_type == 'worker-heartbeat':
                self._child(self.worker_number_of_currently_executing_tasks, worker).set(
                    event.get('active') or 0)
        elif event_type == 'worker-offline':
            self._child(self.worker_online, worker).set(0)

    def record_task_event(self, event: Mapping[str, Any], event_type: str, task: Task | None,
                          worker: str) -> None:
        """:meth:`record_event` for a task event whose type and host name the caller read."""
        task_name = event.get('name') or (task.name if task is not None else None) or ''
        series = self._task_series.get((task_name, worker))
        if series is None:
            series = self._task_series[(task_name, worker)] = _TaskSeries(self, task_name, worker)
        counts, values = series.counts, series.values
        counts[event_type] = counts.get(event_type, 0) + 1
        prefetched = self.number_of_prefetched_tasks
        if event_type == 'task-received':
            series.waiting.add(event.get('uuid'))
            values[prefetched] = len(series.waiting)
        elif event_type in LEAVES_PREFETCH:
            waiting, uuid = series.waiting, event.get('uuid')
            if uuid in waiting or prefetched not in series.setters:
                waiting.discard(uuid)  # else the gauge would be set to what it shows
                values[prefetched] = len(waiting)
        if event_type == 'task-started':
            if task is not None and task.received:
                values[self.prefetch_time] = max(0.0, event.get('timestamp', 0) - task.received)
        elif event_type == 'task-succeeded':
            values[self.prefetch_time] = 0
            runtime = event.get('runtime')
            if runtime is not None:
                series.runtimes.append(runtime)
        elif event_type == 'task-failed':
            values[self.prefetch_time] = 0
        batch = self._batch
        if batch is None:
            series.apply()
        elif not series.pending:
            series.pending = True
            batch.append(series)

    def update_worker_status(self, workers: Mapping[str, Worker]) -> None:
        """Set ``flower_worker_online`` from Celery's state, so a worker that died
        without saying goodbye shows as offline once its heartbeats expire."""
        for hostname, worker in list(workers.items()):
            if worker.heartbeats:
                self._child(self.worker_online, hostname).set(int(worker.alive))

    def set_queue_lengths(self, lengths: Iterable[Mapping[str, Any]]) -> None:
        """Make ``flower_queue_length`` show exactly the sampled queues ``lengths``."""
        self.queue_length.clear()
        for queue in lengths:
            self.queue_length.labels(queue['name']).set(queue.get('messages') or 0)

    def forget_queue_lengths(self) -> None:
        """Drop every queue length: after a failed sample they are unknown, not zero."""
        self.queue_length.clear()

    def remove_worker(self, hostname: str) -> None:
        """Remove every series of the worker ``hostname`` (called when it is purged)."""
        for metric, label_names in self._worker_metrics:
            position = label_names.index('worker')
            for values in _label_values(metric, label_names):
                if values[position] == hostname:
                    metric.remove(*values)
        for key in [key for key in self._task_series if key[1] == hostname]:
            del self._task_series[key]
        for metric, label_names in self._worker_metrics:
            position = label_names.index('worker')
            for key in [key for key in self._children
                        if key[0] is metric and key[1][position] == hostname]:
                del self._children[key]

    def exposition(self, workers: Mapping[str, Worker]) -> bytes:
        """The text Prometheus scrapes, worker status refreshed from ``workers`` first."""
        self.update_worker_status(workers)
        return self._text.render()


class _TaskSeries:
    """The series of one (task name, worker) pair, found with one lookup per event
    (``labels()`` costs more than the update itself); each is created when first set.
    Updates wait in :attr:`counts`, :attr:`values` and :attr:`runtimes` until
    :meth:`apply` (see :meth:`PrometheusMetrics.batch`)."""

    __slots__ = ('metrics', 'labels', 'counters', 'children', 'setters', 'waiting', 'counts',
                 'values', 'runtimes', 'observe_runtimes', 'pending')

    def __init__(self, metrics: PrometheusMetrics, task_name: str, worker: str) -> None:
        self.metrics = metrics
        self.labels = (task_name, worker)
        self.counters = {}  # event type -> ``inc(amount)`` of its flower_events child
        self.children = {}  # metric labelled (task, worker) -> this pair's child
        self.setters = {}  # gauge labelled (task, worker) -> ``set(value)`` of its child
        self.waiting = set()  # ids of the tasks received there and not started yet
        self.counts = {}  # event type -> events not counted yet
        self.values = {}  # gauge -> the value it is to show
        self.runtimes = []  # runtimes not observed yet
        self.observe_runtimes = None  # what puts a list of them into the histogram
        self.pending = False  # in the batch being gathered

    def apply(self) -> None:
        """Bring the instruments up to date with the updates gathered."""
        self.pending = False
        for event_type, amount in self.counts.items():
            inc = self.counters.get(event_type)
            if inc is None:
                task_name, worker = self.labels
                inc = self.counters[event_type] = _increment(self.metrics.events.labels(
                    task_name, event_type, worker))
            inc(amount)
        self.counts.clear()
        for gauge, value in self.values.items():
            self.setter(gauge)(value)
        self.values.clear()
        if self.runtimes:
            if self.observe_runtimes is None:
                self.observe_runtimes = _observe_all(self.child(self.metrics.runtime))
            self.observe_runtimes(self.runtimes)
            self.runtimes.clear()

    def child(self, metric: MetricWrapperBase) -> MetricWrapperBase:
        found = self.children.get(metric)
        if found is None:
            found = self.children[metric] = metric.labels(*self.labels)
        return found

    def setter(self, gauge: Gauge) -> Callable[[float], None]:
        found = self.setters.get(gauge)
        if found is None:
            found = self.setters[gauge] = _setter(self.child(gauge))
        return found


def _increment(child: Counter) -> Callable[[float], None]:
    """``child.inc`` without the checks a labelled child always passes: its value's own
    increment, when the value is the plain in-process one (else ``child.inc`` itself)."""
    value = getattr(child, '_value', None)
    if type(value) is not MutexValue:
        return child.inc
    return value.inc


def _observe_all(child: Histogram) -> Callable[[list[float]], None]:
    """``child.observe`` of each of a list of values, as one update of each bucket they
    fall in (found by bisection, not by a loop over the buckets) and the sum added up in
    their order, when the values are the plain in-process ones (else ``observe`` each)."""
    bounds = getattr(child, '_upper_bounds', None)
    buckets = getattr(child, '_buckets', None)
    total = getattr(child, '_sum', None)
    if (bounds is None or buckets is None or type(total) is not MutexValue
            or any(type(bucket) is not MutexValue for bucket in buckets)):
        def observe_each(values: list[float]) -> None:
            for value in values:
                child.observe(value)
        return observe_each

    def observe_all(values: list[float]) -> None:
        counts = {}
        added = total.get()
        for value in values:
            added += value
            if value == value:  # NaN falls in no bucket
                index = bisect_left(bounds, value)
                counts[index] = counts.get(index, 0) + 1
        total.set(added)
        for index, count in counts.items():
            buckets[index].inc(count)
    return observe_all


def _setter(child: Gauge) -> Callable[[float], None]:
    """``child.set``, as :func:`_increment` does it for counters."""
    value = getattr(child, '_value', None)
    if type(value) is not MutexValue or getattr(child, '_is_most_recent', True):
        return child.set
    value_set = value.set
    return lambda number: value_set(float(number))


#: key of the capture's stats -> (metric name, type, help) of the ingest metrics.
INGEST_METRICS = {
    'received': ('flower_ingest_events_received', 'counter',
                 'Events Flower read from the broker.'),
    'applied': ('flower_ingest_events_applied', 'counter',
                'Events Flower applied to its state.'),
    'dropped': ('flower_ingest_events_dropped', 'counter',
                'Events Flower received but could not apply (backlog full, or malformed).'),
    'disconnects': ('flower_ingest_broker_disconnects', 'counter',
                    'Times the broker closed the event subscription; events sent until '
                    'Flower reconnected are lost.'),
    'pending': ('flower_ingest_pending_events', 'gauge',
                'Events received and waiting to be applied.'),
    'lag': ('flower_ingest_lag_seconds', 'gauge',
            'How long the oldest event waiting to be applied has waited.'),
    'history_write_errors': ('flower_history_write_errors', 'counter',
                             'Writes of the --persistent history that failed (and are retried).'),
    'history_pending': ('flower_history_pending_changes', 'gauge',
                        'Tasks and workers changed in memory, not yet written to the '
                        '--persistent history.'),
}


class _IngestCollector:
    def __init__(self, stats: Callable[[], Mapping[str, float]]) -> None:
        self.stats = stats

    def describe(self) -> list[Metric]:
        return list(self._families({key: 0 for key in INGEST_METRICS}))

    def collect(self) -> Iterator[Metric]:
        return self._families(self.stats())

    @staticmethod
    def _families(values: Mapping[str, float]) -> Iterator[Metric]:
        for key, (name, kind, documentation) in INGEST_METRICS.items():
            family = CounterMetricFamily if kind == 'counter' else GaugeMetricFamily
            yield family(name, documentation, value=values[key])


class _LeaderCollector:
    def __init__(self, leading: Callable[[], bool]) -> None:
        self.leading = leading

    def describe(self) -> list[Metric]:
        return [self._family(False)]

    def collect(self) -> list[Metric]:
        return [self._family(self.leading())]

    @staticmethod
    def _family(leading: bool) -> Metric:
        return GaugeMetricFamily(
            'flower_leader', 'Whether this replica is the leader, which captures events and '
            'writes the shared history (1), or a follower (0).', value=1 if leading else 0)


def _label_values(metric: MetricWrapperBase, label_names: Iterable[str]) -> set[tuple[str, ...]]:
    """The distinct label values (tuples in ``label_names`` order) of ``metric``'s series."""
    return {tuple(sample.labels[name] for name in label_names)
            for family in metric.collect() for sample in family.samples}


_metrics = None


def get_prometheus_metrics() -> PrometheusMetrics:
    """The process-wide :class:`PrometheusMetrics`, on ``prometheus_client``'s default registry."""
    global _metrics
    if _metrics is None:
        _metrics = PrometheusMetrics(registry=prometheus_client.REGISTRY)
    return _metrics
