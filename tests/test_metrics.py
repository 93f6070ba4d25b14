"""``/metrics``: the documented metrics, fed by real workers running real tasks.

The first part drives :class:`PrometheusMetrics` with hand-written events
(pure logic: what each event type does to which series); the second part
checks the exposition of a Flower watching real workers.
"""
import gc
import re
import subprocess
import sys
import time
import uuid

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flower.events import EventsState, get_prometheus_metrics
from flower.metrics import PrometheusMetrics
from tests.support.waiting import wait_for

#: name -> (type, label names) of every family ``/metrics`` serves; see docs/prometheus.rst.
DOCUMENTED = {
    'flower_events': ('counter', {'task', 'type', 'worker'}),
    'flower_task_prefetch_time_seconds': ('gauge', {'task', 'worker'}),
    'flower_worker_prefetched_tasks': ('gauge', {'task', 'worker'}),
    'flower_task_runtime_seconds': ('histogram', {'task', 'worker'}),
    'flower_worker_online': ('gauge', {'worker'}),
    'flower_worker_number_of_currently_executing_tasks': ('gauge', {'worker'}),
    'flower_queue_length': ('gauge', {'queue'}),
    'flower_ingest_events_received': ('counter', set()),
    'flower_ingest_events_applied': ('counter', set()),
    'flower_ingest_events_dropped': ('counter', set()),
    'flower_ingest_broker_disconnects': ('counter', set()),
    'flower_ingest_pending_events': ('gauge', set()),
    'flower_ingest_lag_seconds': ('gauge', set()),
    'flower_history_write_errors': ('counter', set()),
    'flower_history_pending_changes': ('gauge', set()),
}


def parse(text):
    """``{family name: family}`` of a Prometheus text exposition."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families, sample_name, **labels):
    """The value of the one sample ``sample_name`` with exactly ``labels`` (plus ``le``)."""
    family_name = sample_name
    for suffix in ('_total', '_bucket', '_count', '_sum'):
        if sample_name.endswith(suffix) and sample_name[:-len(suffix)] in families:
            family_name = sample_name[:-len(suffix)]
    found = [sample.value for sample in families[family_name].samples
             if sample.name == sample_name and sample.labels == labels]
    assert len(found) == 1, (sample_name, labels, families[family_name].samples)
    return found[0]


def series_of(families, worker):
    return [(sample.name, sample.labels) for family in families.values()
            for sample in family.samples if sample.labels.get('worker') == worker]


# -- events → instruments (pure logic) ----------------------------------------------

def task_event(type_, uuid_, worker='w@h', name='tasks.add', timestamp=100.0, **fields):
    event = dict(type=type_, uuid=uuid_, hostname=worker, timestamp=timestamp,
                 local_received=timestamp, clock=int(timestamp), **fields)
    if type_ == 'task-received':
        event['name'] = name
    return event


def exposition(metrics, workers=None):
    return parse(metrics.exposition(workers or {}).decode())


@pytest.fixture
def state():
    return EventsState(metrics=PrometheusMetrics([1.0, 0.1, 5.0]))


def test_task_events_feed_counter_prefetch_and_runtime(state):
    for event in [task_event('task-received', 'a', timestamp=100.0),
                  task_event('task-received', 'b', timestamp=100.0),
                  task_event('task-started', 'a', timestamp=102.5)]:
        state.event(event)
    families = exposition(state.metrics)

    assert value(families, 'flower_events_total',
                 task='tasks.add', type='task-received', worker='w@h') == 2
    assert value(families, 'flower_worker_prefetched_tasks', task='tasks.add', worker='w@h') == 1
    assert value(families, 'flower_task_prefetch_time_seconds',
                 task='tasks.add', worker='w@h') == 2.5

    state.event(task_event('task-succeeded', 'a', timestamp=103.0, runtime=0.5))
    state.event(task_event('task-revoked', 'b', timestamp=103.0))
    families = exposition(state.metrics)

    assert value(families, 'flower_task_prefetch_time_seconds', task='tasks.add', worker='w@h') == 0
    assert value(families, 'flower_worker_prefetched_tasks', task='tasks.add', worker='w@h') == 0
    assert value(families, 'flower_task_runtime_seconds_count', task='tasks.add', worker='w@h') == 1
    assert value(families, 'flower_task_runtime_seconds_bucket',
                 task='tasks.add', worker='w@h', le='0.1') == 0
    assert value(families, 'flower_task_runtime_seconds_bucket',
                 task='tasks.add', worker='w@h', le='1.0') == 1
    # Later events of a task carry no name: the state's task gives it.
    assert value(families, 'flower_events_total',
                 task='tasks.add', type='task-succeeded', worker='w@h') == 1


def test_events_applied_in_a_batch_show_as_events_applied_one_by_one():
    """The IO loop applies events in batches and updates each series once per batch:
    what the exposition shows after a batch is what one update per event shows, and
    nothing of the batch shows before its end."""
    import random

    rng = random.Random(18)
    stream = []
    for number in range(300):
        worker, name = f'w{number % 3}@h', f'tasks.t{number % 4}'
        at = 100.0 + number
        stream.append(task_event('task-received', f'u{number}', worker, name, at))
        stream.append(task_event('task-started', f'u{number}', worker, name, at + rng.random()))
        if number % 7 == 0:
            stream.append(task_event('task-failed', f'u{number}', worker, name, at + 2))
        elif number % 11 != 0:  # some stay started
            stream.append(task_event('task-succeeded', f'u{number}', worker, name, at + 2,
                                     runtime=rng.choice([0.05, 0.5, 3.0, 9.0])))
    one_by_one = EventsState(metrics=PrometheusMetrics([1.0, 0.1, 5.0]))
    batched = EventsState(metrics=PrometheusMetrics([1.0, 0.1, 5.0]))
    for event in stream:
        one_by_one.event(dict(event))
    start = 0
    while start < len(stream):
        size = rng.randint(1, 60)
        with batched.metrics.batch():
            for event in stream[start:start + size]:
                batched.event(dict(event))
            if start == 0:
                inside = exposition(batched.metrics)
        start += size

    def samples(families):  # series appear in another order: Prometheus reads them by labels
        return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in families.values() for sample in family.samples}

    assert not [key for key in samples(inside) if key[0].startswith('flower_')]
    assert samples(exposition(batched.metrics)) == samples(exposition(one_by_one.metrics))
    assert value(exposition(batched.metrics), 'flower_task_runtime_seconds_count',
                 task='tasks.t1', worker='w1@h') > 0


def test_runtimes_observed_together_count_as_prometheus_clients_observe():
    """A batch's runtimes go into the histogram in one update a bucket: the same
    buckets, count and sum (added in the same order) as ``observe`` of each."""
    import math
    import random

    from flower.metrics import _observe_all

    rng = random.Random(7)
    bounds = [0.1, 0.5, 1.0, 5.0]
    values = [rng.choice([0.0, 0.1, 0.5, 1.0, 5.0, 7.5, -1.0, math.inf, math.nan])
              for _ in range(200)] + [rng.uniform(0, 10) for _ in range(300)]
    by_observe = prometheus_client.Histogram('h_one', 'h', ['task'], buckets=bounds,
                                             registry=prometheus_client.CollectorRegistry())
    together = prometheus_client.Histogram('h_all', 'h', ['task'], buckets=bounds,
                                           registry=prometheus_client.CollectorRegistry())
    for value in values:
        by_observe.labels('t').observe(value)
    observe_all = _observe_all(together.labels('t'))
    for start in range(0, len(values), 37):
        observe_all(values[start:start + 37])

    def samples(histogram):
        return [(sample.name.split('_', 2)[-1], sample.labels, repr(sample.value))
                for sample in histogram.collect()[0].samples if 'created' not in sample.name]

    assert samples(together) == samples(by_observe)


def test_runtime_buckets_are_the_configured_ones_sorted(state):
    state.event(task_event('task-received', 'a'))
    state.event(task_event('task-succeeded', 'a', runtime=7.0))
    buckets = [sample.labels['le'] for sample in
               exposition(state.metrics)['flower_task_runtime_seconds'].samples
               if sample.name.endswith('_bucket')]

    assert buckets == ['0.1', '1.0', '5.0', '+Inf']


def test_worker_events_and_heartbeat_expiry_set_online_and_active(state):
    now = time.time()
    state.event({'type': 'worker-online', 'hostname': 'w@h', 'timestamp': now,
                 'local_received': now, 'freq': 2.0})
    state.event({'type': 'worker-heartbeat', 'hostname': 'w@h', 'timestamp': now,
                 'local_received': now, 'freq': 2.0, 'active': 3})
    state.event({'type': 'worker-heartbeat', 'hostname': 'quiet@h', 'timestamp': now - 60,
                 'local_received': now - 60, 'freq': 2.0, 'active': 0})
    families = exposition(state.metrics, state.workers)

    assert value(families, 'flower_worker_online', worker='w@h') == 1
    assert value(families, 'flower_worker_number_of_currently_executing_tasks', worker='w@h') == 3
    # No heartbeat for a minute: no longer online, though it never said goodbye.
    assert value(families, 'flower_worker_online', worker='quiet@h') == 0

    state.event({'type': 'worker-offline', 'hostname': 'w@h', 'timestamp': now,
                 'local_received': now})
    assert value(exposition(state.metrics, state.workers), 'flower_worker_online', worker='w@h') == 0


def test_remove_worker_drops_every_series_of_that_worker_only(state):
    for worker in ('gone@h', 'kept@h'):
        state.event({'type': 'worker-heartbeat', 'hostname': worker, 'active': 1,
                     'timestamp': 100.0, 'local_received': 100.0})
        state.event(task_event('task-received', f'{worker}-1', worker=worker))
        state.event(task_event('task-started', f'{worker}-1', worker=worker, timestamp=101.0))
        state.event(task_event('task-succeeded', f'{worker}-1', worker=worker, runtime=0.2))
        state.event(task_event('task-received', f'{worker}-2', worker=worker))
    assert series_of(exposition(state.metrics), 'gone@h')

    state.metrics.remove_worker('gone@h')
    families = exposition(state.metrics)

    assert series_of(families, 'gone@h') == []
    kept = {name for name, _ in series_of(families, 'kept@h')}
    assert {'flower_events_total', 'flower_task_runtime_seconds_bucket',
            'flower_task_prefetch_time_seconds', 'flower_worker_prefetched_tasks',
            'flower_worker_online', 'flower_worker_number_of_currently_executing_tasks'} <= kept
    # A worker coming back under the same name starts from zero.
    state.event(task_event('task-received', 'gone@h-3', worker='gone@h'))
    assert value(exposition(state.metrics), 'flower_worker_prefetched_tasks',
                 task='tasks.add', worker='gone@h') == 1


def test_queue_lengths_replace_the_previous_sample():
    metrics = PrometheusMetrics()
    metrics.set_queue_lengths([{'name': 'celery', 'messages': 4}, {'name': 'old', 'messages': 1}])
    metrics.set_queue_lengths([{'name': 'celery', 'messages': 2}])
    families = exposition(metrics)

    assert [(sample.labels, sample.value) for sample in families['flower_queue_length'].samples] \
        == [({'queue': 'celery'}, 2.0)]
    metrics.forget_queue_lengths()
    assert exposition(metrics)['flower_queue_length'].samples == []


def test_metrics_of_two_apps_are_separate_and_the_default_one_is_process_wide():
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first.set_queue_lengths([{'name': 'celery', 'messages': 4}])

    assert exposition(second)['flower_queue_length'].samples == []
    assert get_prometheus_metrics() is get_prometheus_metrics()
    assert EventsState().metrics is get_prometheus_metrics()


def without_created_series(text):
    """prometheus_client's exposition minus the ``*_created`` series it adds."""
    def name(line):
        return line.split(' ')[2] if line.startswith('#') else re.split('[{ ]', line)[0]
    return ''.join(line for line in text.splitlines(keepends=True)
                   if not name(line).endswith('_created'))


def test_the_exposition_is_prometheus_clients_text_without_created_series(state):
    """Flower writes the text format itself (it is faster): byte for byte what
    prometheus_client writes, hostile label values and other collectors included."""
    hostile = 'tasks.say"hi"\\n\nnext line, ünïcode'
    for number, worker in enumerate(('w@h', 'back\\slash@h', 'quote"@h')):
        uuid_ = f'task-{number}'
        state.event(task_event('task-received', uuid_, worker, name=hostile))
        state.event(task_event('task-started', uuid_, worker, timestamp=100.5))
        state.event(task_event('task-succeeded', uuid_, worker, timestamp=101.0, runtime=0.5))
    metrics = state.metrics
    metrics.set_queue_lengths([{'name': 'queue "a"\\b', 'messages': 3}])
    metrics.watch_ingest(lambda: dict(received=7, applied=6, dropped=1, disconnects=0,
                                      pending=1, lag=0.25, history_write_errors=2,
                                      history_pending=5))
    prometheus_client.Info('build', 'Build "information"\nof the app',
                           registry=metrics.registry).info({'version': '1.0"'})
    prometheus_client.Enum('mode', 'A state set', states=['on', 'off'],
                           registry=metrics.registry).state('off')
    prometheus_client.Summary('latency_seconds', 'A summary', ['path'],
                              registry=metrics.registry).labels('/x').observe(0.2)
    # The process series are those of an idle child that has finished starting (while it
    # loads, its open files and CPU time still change), and no collection runs between the
    # two renders: otherwise CPU seconds or GC counts may tick between them.
    sleeper = subprocess.Popen(
        [sys.executable, '-c', 'import time; print("ready", flush=True); time.sleep(60)'],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert sleeper.stdout.readline() == 'ready\n'
    prometheus_client.ProcessCollector(pid=lambda: sleeper.pid, registry=metrics.registry)
    prometheus_client.PlatformCollector(registry=metrics.registry)
    prometheus_client.GCCollector(registry=metrics.registry)
    gc.disable()
    try:
        ours = metrics.exposition({}).decode()
        theirs = prometheus_client.generate_latest(metrics.registry).decode()
    finally:
        gc.enable()
        sleeper.kill()
        sleeper.wait()
        sleeper.stdout.close()
    assert hostile.replace('\\', '\\\\').replace('\n', '\\n').replace('"', '\\"') in ours
    assert 'process_cpu_seconds_total' in ours
    assert ours == without_created_series(theirs)
    assert '_created' not in ours


def test_the_exposition_stays_prometheus_clients_text_as_series_come_and_go(state):
    """The text of each series is written once and reused: it must follow series that
    are removed, cleared and made again, scrape after scrape."""
    metrics = state.metrics

    def check():
        theirs = without_created_series(prometheus_client.generate_latest(metrics.registry).decode())
        assert metrics.exposition({}).decode() == theirs
        assert metrics.exposition({}).decode() == theirs  # the remembered texts

    for round_ in range(3):
        for number in range(30):
            worker = f'w{number % 5}@h'
            uuid_ = f'task-{round_}-{number}'
            state.event(task_event('task-received', uuid_, worker, name=f'tasks.t{number % 4}'))
            state.event(task_event('task-started', uuid_, worker, timestamp=100.5))
            state.event(task_event('task-succeeded', uuid_, worker, timestamp=101.0,
                                   runtime=number / 10))
        metrics.set_queue_lengths([{'name': f'q{round_}', 'messages': round_}])
        check()
        metrics.remove_worker('w1@h')
        metrics.forget_queue_lengths()
        check()
    state.event(task_event('task-received', 'late', 'w1@h', name='tasks.t1'))
    check()
    assert 'w1@h' in metrics.exposition({}).decode()


# -- a Flower watching real workers ----------------------------------------------------

@pytest.fixture(scope='module')
def worker(cluster):
    name = f'metrics-{uuid.uuid4().hex[:6]}@localhost'
    return cluster.start_workers(dict(name=name, concurrency=1))[0]


@pytest.fixture(scope='module')
def flower(cluster, worker):
    server = cluster.start_flower(task_runtime_metric_buckets=[0.25, 2.0, 7.5])
    cluster.wait_known(server, worker)
    return server


def metrics_of(flower):
    status, headers, body = flower.fetch('/metrics')
    assert status == 200
    assert headers['Content-Type'].startswith('text/plain; version=')
    return parse(body)


def test_metrics_are_exactly_the_documented_ones(cluster, worker, flower):
    results = [cluster.client.send_task('tasks.add', (i, i)) for i in range(3)]
    failed = cluster.client.send_task('tasks.error', ('expected failure',))
    for result in results:
        assert result.get(timeout=20) in (0, 2, 4)
    with pytest.raises(Exception, match='expected failure'):
        failed.get(timeout=20)
    host = worker.hostname

    def succeeded_seen():
        families = metrics_of(flower)
        return families if value(families, 'flower_events_total', task='tasks.add',
                                 type='task-succeeded', worker=host) == 3 else None
    families = wait_for(lambda: _or_none(succeeded_seen), what='3 task-succeeded events')

    assert {name: (family.type, {label for sample in family.samples for label in sample.labels
                                 if label != 'le'})
            for name, family in families.items()} == DOCUMENTED
    assert value(families, 'flower_events_total', task='tasks.add', type='task-received',
                 worker=host) == 3
    failures = wait_for(lambda: _or_none(lambda: value(
        metrics_of(flower), 'flower_events_total', task='tasks.error', type='task-failed',
        worker=host)))
    assert failures == 1
    assert value(families, 'flower_task_runtime_seconds_count', task='tasks.add', worker=host) == 3
    assert [sample.labels['le'] for sample in families['flower_task_runtime_seconds'].samples
            if sample.name.endswith('_bucket') and sample.labels['task'] == 'tasks.add'] \
        == ['0.25', '2.0', '7.5', '+Inf']
    assert value(families, 'flower_worker_online', worker=host) == 1
    assert value(families, 'flower_worker_prefetched_tasks', task='tasks.add', worker=host) == 0


def _or_none(function):
    """``function()``, or ``None`` while the sample it looks for is not there yet."""
    try:
        return function()
    except (AssertionError, KeyError):
        return None


def test_prefetched_tasks_prefetch_time_and_executing_tasks(cluster, worker, flower):
    """One process: the first sleep runs while the other two wait, prefetched."""
    host = worker.hostname
    results = [cluster.client.send_task('tasks.sleep', (1.5,)) for _ in range(3)]

    def waiting_tasks():
        families = metrics_of(flower)
        prefetched = value(families, 'flower_worker_prefetched_tasks',
                           task='tasks.sleep', worker=host)
        return families if prefetched == 2 else None
    wait_for(lambda: _or_none(waiting_tasks), what='two prefetched tasks')
    wait_for(lambda: _or_none(lambda: value(
        metrics_of(flower), 'flower_worker_number_of_currently_executing_tasks', worker=host) == 1),
        what='a heartbeat reporting the running task')

    second = results[1].id
    wait_for(lambda: flower.call(lambda: getattr(
        flower.app.events.state.tasks.get(second), 'state', None)) == 'STARTED',
        what='the second task to start')
    # It waited at least as long as the first task ran.
    assert value(metrics_of(flower), 'flower_task_prefetch_time_seconds',
                 task='tasks.sleep', worker=host) >= 1.4
    for result in results:
        result.get(timeout=20)


def test_a_killed_worker_goes_offline_and_purging_removes_its_series(cluster, flower):
    doomed = cluster.start_workers(dict(name=f'doomed-{uuid.uuid4().hex[:6]}@localhost'))[0]
    cluster.wait_known(flower, doomed)
    wait_for(lambda: _or_none(lambda: value(
        metrics_of(flower), 'flower_worker_online', worker=doomed.hostname) == 1))

    doomed.kill()  # no worker-offline event: heartbeats just stop

    wait_for(lambda: _or_none(lambda: value(
        metrics_of(flower), 'flower_worker_online', worker=doomed.hostname) == 0),
        what='the worker to show offline')
    flower.call(flower.app.forget_worker, doomed.hostname)
    assert series_of(metrics_of(flower), doomed.hostname) == []
