#!/usr/bin/env python
"""Measure flower and Flower 2.2.0 side by side, in one run, on a private Redis.

    .venv/bin/python benchmarks/run.py

Installs Flower 2.2.0 from PyPI into ``benchmarks/.venv-flower22`` the first
time, starts a private ``redis-server``, and for every measure starts each
monitor in turn (ours first, then Flower 2.2.0) from its command template,
publishes realistic Celery events through Celery's own event dispatcher (20
workers with heartbeats, task events batched as prefork workers send them,
one task in ten failing with a traceback), and prints the figures and the
ratios ours / Flower 2.2.0. See ``docs/benchmarks.rst``; ``--quick`` runs
smaller sizes to try the script out.
"""
import argparse
import bisect
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tests.support.processes import RedisServer, free_port  # noqa: E402

VENV22 = os.path.join(REPO, 'benchmarks', '.venv-flower22')
COMMON_ARGS = ['flower', '--port={port}', '--address=127.0.0.1', '--max_tasks={max_tasks}',
               '--enable_events=false']
MONITORS = {
    'ours': [sys.executable, '-m', 'celery', '-b', '{broker}'] + COMMON_ARGS,
    'flower-2.2.0': [os.path.join(VENV22, 'bin', 'celery'), '-b', '{broker}'] + COMMON_ARGS,
}
WORKERS = [f'bench-worker-{number:02d}@bench-host' for number in range(20)]
TASK_NAMES = [f'proj.tasks.{name}' for name in (
    'add', 'mul', 'send_email', 'resize_image', 'charge_card', 'sync_account', 'report',
    'cleanup', 'notify', 'index_document')]
TRACEBACK = ''.join(
    f'  File "/srv/app/proj/module_{depth}.py", line {depth * 10}, in step_{depth}\n'
    f'    result = step_{depth + 1}(payload, retries=retries)\n' for depth in range(8)
) + "ValueError: upstream answered 502 Bad Gateway"
DATATABLE = ('/tasks/datatable?draw=1&start=0&length=15&search%5Bvalue%5D='
             '&order%5B0%5D%5Bcolumn%5D=6&order%5B0%5D%5Bdir%5D=desc'
             + ''.join(f'&columns%5B{index}%5D%5Bdata%5D={name}' for index, name in enumerate(
                 ('name', 'uuid', 'state', 'args', 'kwargs', 'result', 'received', 'started',
                  'runtime', 'worker'))))

#: Searches timed at each size (``limit=100``): a word, and a term of each field.
SEARCHES = {
    'search_word': '/api/tasks?limit=100&search=customer-123',
    'search_args': '/api/tasks?limit=100&search=args:customer-45',
    'search_kwargs': '/api/tasks?limit=100&search=kwargs:priority=2',
    'search_result': '/api/tasks?limit=100&search=result:12345',
    'search_state': '/api/tasks?limit=100&search=state:FAILURE',
}


def ensure_flower22():
    celery_bin = MONITORS['flower-2.2.0'][0]
    if not os.path.exists(celery_bin):
        print("Installing Flower 2.2.0 from PyPI into", VENV22, flush=True)
        subprocess.run([sys.executable, '-m', 'venv', VENV22], check=True)
        subprocess.run([os.path.join(VENV22, 'bin', 'pip'), 'install', '-q', 'flower==2.2.0', 'redis', 'packaging'],
                       check=True)


# -- publishing ------------------------------------------------------------------

def task_events(number, workers=WORKERS):
    """The three events of task ``number``: (worker, type, fields)."""
    worker = workers[number % len(workers)]
    uuid = f'{number:08x}-7c1e-4b8a-9d2f-{number:012x}'
    name = TASK_NAMES[number % len(TASK_NAMES)]
    received = dict(uuid=uuid, name=name, args=f'({number}, "customer-{number % 997}")',
                    kwargs=f"{{'priority': {number % 3}, 'source': 'api'}}", retries=0,
                    eta=None, expires=None, root_id=uuid, parent_id=None)
    if number % 10 == 9:
        final = ('task-failed', dict(uuid=uuid, exception="ValueError('upstream answered 502')",
                                     traceback=TRACEBACK))
    else:
        final = ('task-succeeded', dict(uuid=uuid, result=f"{{'ok': True, 'id': {number}}}",
                                        runtime=0.0123))
    return [(worker, 'task-received', received), (worker, 'task-started', dict(uuid=uuid)),
            (worker,) + final]


def publish(broker, first_task, tasks, rate, sent, workers=WORKERS, buffer_limit=24,
            timeline=None):
    """Publish ``tasks`` tasks (3 events each) at ``rate`` events/s (0: as fast as
    possible) with heartbeats every 2 s from each of ``workers``, each sending its
    task events ``buffer_limit`` at a time (and the rest with its heartbeat); add the
    task events sent to ``sent``. With ``timeline`` (a pipe's end), send on it when
    each 300th event was sent: ``[(time.monotonic(), events sent), ...]``."""
    import celery
    app = celery.Celery(broker=broker)
    connection = app.connection_for_write()
    dispatchers = {worker: app.events.Dispatcher(connection, hostname=worker, enabled=True,
                                                 buffer_group=['task'], buffer_limit=buffer_limit)
                   for worker in workers}
    started = time.monotonic()
    next_heartbeat = 0.0
    count = 0
    sent_at = [(started, 0)]
    for number in range(first_task, first_task + tasks):
        for worker, event_type, fields in task_events(number, workers):
            dispatchers[worker].send(event_type, **fields)
        count += 3
        if count % 300 == 0:
            now = time.monotonic()
            sent_at.append((now, count))
            if now >= next_heartbeat:
                for worker, dispatcher in dispatchers.items():
                    dispatcher.flush()
                    dispatcher.send('worker-heartbeat', freq=2.0, active=4, processed=number,
                                    loadavg=[0.5, 0.4, 0.3], sw_ident='py-celery',
                                    sw_ver='5.4.0', sw_sys='Linux')
                next_heartbeat = now + 2.0
            if rate:
                ahead = count / rate - (now - started)
                if ahead > 0:
                    time.sleep(ahead)
    for dispatcher in dispatchers.values():
        dispatcher.flush()
    sent_at.append((time.monotonic(), count))
    with sent.get_lock():
        sent.value += count
    connection.close()
    if timeline is not None:
        timeline.send(sent_at)


class Publisher:
    def __init__(self, broker, workers=WORKERS, buffer_limit=24):
        self.broker = broker
        self.workers = workers
        self.buffer_limit = buffer_limit
        self.next_task = 0
        self.sent = multiprocessing.Value('q', 0)

    def start(self, tasks, rate=0, timeline=None):
        process = multiprocessing.Process(
            target=publish, args=(self.broker, self.next_task, tasks, rate, self.sent,
                                  self.workers, self.buffer_limit, timeline))
        self.next_task += tasks
        process.start()
        return process

    def run(self, tasks, rate=0):
        started = time.monotonic()
        process = self.start(tasks, rate)
        process.join()
        return time.monotonic() - started


# -- the monitor under test --------------------------------------------------------

class Monitor:
    def __init__(self, name, broker, max_tasks, log_dir, extra_args=()):
        self.name = name
        self.port = free_port()
        argv = [part.format(broker=broker, port=self.port, max_tasks=max_tasks)
                for part in MONITORS[name]] + list(extra_args)
        env = dict(os.environ, FLOWER_UNAUTHENTICATED_API='true')
        env.pop('FLOWER_PERSISTENT', None)
        if argv[0] != sys.executable:
            # Another virtualenv's monitor: PYTHONPATH=$PWD would import our flower in it.
            env.pop('PYTHONPATH', None)
        self.log = open(os.path.join(log_dir, f'{name}-{self.port}.log'), 'wb')
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=env, cwd=log_dir)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get('/healthcheck')
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"{name} did not start; see {self.log.name}")
                time.sleep(0.2)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def get(self, path, timeout=60):
        """GET ``path``; return the seconds it took (the body is read and dropped)."""
        started = time.perf_counter()
        with urllib.request.urlopen(f'http://127.0.0.1:{self.port}{path}', timeout=timeout) as r:
            r.read()
        return time.perf_counter() - started

    def read(self, path):
        with urllib.request.urlopen(f'http://127.0.0.1:{self.port}{path}', timeout=60) as r:
            return r.read().decode()

    def task_events(self):
        """Task events applied, from ``flower_events_total`` (both monitors serve it)."""
        total = 0
        for family in text_string_to_metric_families(self.read('/metrics')):
            if family.name == 'flower_events':
                total += sum(sample.value for sample in family.samples
                             if sample.name == 'flower_events_total')
        return int(total)

    def cpu_seconds(self):
        with open(f'/proc/{self.process.pid}/stat') as stat:
            fields = stat.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def rss(self):
        with open(f'/proc/{self.process.pid}/status') as status:
            for line in status:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
        return 0

    def settle(self, expected, timeout=30.0, quiet=3.0):
        """Wait until ``expected`` task events are applied, or until the count has not
        moved for ``quiet`` seconds; return the count."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            seen = self.task_events()
            if seen >= expected:
                return seen
            if seen != last:
                last, last_change = seen, time.monotonic()
            elif time.monotonic() - last_change > quiet:
                return seen
            time.sleep(0.25)
        return self.task_events()


def subscribe(monitor, publisher):
    """Publish single tasks until the monitor sees them (pub/sub keeps nothing for
    subscribers not there yet); return the task events seen."""
    for _ in range(60):
        publisher.run(1)
        time.sleep(0.25)
        if monitor.task_events():
            break
    time.sleep(0.5)
    return monitor.task_events()


@contextlib.contextmanager
def subscribed_monitor(name, broker, args):
    """A monitor started for one measure, subscribed: ``(monitor, publisher, task events
    seen so far)``; stopped at the end."""
    monitor = Monitor(name, broker, args.max_tasks, args.log_dir)
    try:
        publisher = Publisher(broker)
        yield monitor, publisher, subscribe(monitor, publisher)
    finally:
        monitor.stop()


def percentiles(samples):
    ordered = sorted(samples)
    return {'p50': ordered[len(ordered) // 2] * 1000,
            'p95': ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000}


def latency(monitor, path, count):
    try:
        return percentiles([monitor.get(path) for _ in range(count)])
    except urllib.error.HTTPError as exc:
        return {'error': f'HTTP {exc.code}'}


def healthcheck_while(monitor, background, count=40, spacing=0.05):
    """p50/p95 of ``/healthcheck`` while ``background()`` runs in a loop in a thread."""
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            background()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    time.sleep(0.3)
    samples = []
    for _ in range(count):
        samples.append(monitor.get('/healthcheck'))
        time.sleep(spacing)
    stop.set()
    thread.join(120)
    return percentiles(samples)


# -- the measures --------------------------------------------------------------------

def measure_burst(name, broker, args):
    """Loss and lag in a burst of ``burst`` task events published as fast as possible.

    The lag of an event is the time from its sending to its being applied.
    While the burst is applied, the monitor's applied count is read every
    ``LAG_SAMPLE_SECONDS``; at each reading, the next event to apply was sent
    when the publisher's count reached it, so the reading's time less that
    time is the lag then. The maximum over the readings is reported (an upper
    bound, by at most a reading's interval and duration).
    """
    with subscribed_monitor(name, broker, args) as (monitor, publisher, base):
        tasks = args.burst // 3
        readings = []
        stop = threading.Event()

        def read_applied():
            while not stop.is_set():
                try:
                    readings.append((time.monotonic(), monitor.task_events() - base))
                except OSError:
                    pass
                time.sleep(LAG_SAMPLE_SECONDS)

        reader = threading.Thread(target=read_applied, daemon=True)
        receiving, sending = multiprocessing.Pipe(duplex=False)
        reader.start()
        started = time.monotonic()
        process = publisher.start(tasks, timeline=sending)
        sent_at = receiving.recv()
        process.join()
        seconds = time.monotonic() - started
        seen = monitor.settle(base + tasks * 3, timeout=120) - base
        stop.set()
        reader.join(60)
        return {'events': tasks * 3, 'publish_rate': round(tasks * 3 / seconds),
                'applied': seen, 'lost_percent': round(100 * (1 - seen / (tasks * 3)), 2),
                'max_lag_s': max_lag(readings, sent_at, tasks * 3)}


#: Seconds between two readings of the applied count during a burst.
LAG_SAMPLE_SECONDS = 0.05


def max_lag(readings, sent_at, total):
    """Seconds: the longest an event waited between its sending and its application,
    from ``(time, applied)`` readings and the publisher's ``(time, sent)`` points."""
    sent_times = [moment for moment, _ in sent_at]
    sent_counts = [count for _, count in sent_at]
    worst = 0.0
    for moment, applied in readings:
        waiting = min(applied + 1, total)  # the next event to apply (or the last one)
        point = bisect.bisect_left(sent_counts, waiting)
        if point < len(sent_times):
            worst = max(worst, moment - sent_times[point])
        if applied >= total:
            break
    return round(worst, 2)


def measure_sustained(name, broker, args):
    """Highest publish rate kept up with, CPU per event, /healthcheck during ingest.

    A rate is kept up with when, as publishing ends, the monitor has applied
    all but at most ``max_lag`` seconds' worth of the events, and it applies
    every one of them in the end. Rates are tried upwards until one is not;
    the rate counted is the one the publisher reached, not the one asked for.
    """
    result = {'rates': {}}
    for rate in args.rates:
        with subscribed_monitor(name, broker, args) as (monitor, publisher, base):
            tasks = int(rate * args.seconds / 3)
            cpu = monitor.cpu_seconds()
            publishing = time.monotonic()
            process = publisher.start(tasks, rate)
            process.join()
            published_rate = round(tasks * 3 / (time.monotonic() - publishing))
            behind = tasks * 3 - (monitor.task_events() - base)
            seen = monitor.settle(base + tasks * 3, timeout=30, quiet=3) - base
            cpu = monitor.cpu_seconds() - cpu
            kept_up = seen == tasks * 3 and behind <= published_rate * args.max_lag
            result['rates'][rate] = {'applied': seen, 'sent': tasks * 3, 'kept_up': kept_up,
                                     'published_rate': published_rate,
                                     'behind_when_publishing_ended': behind,
                                     'cpu_us_per_event': round(cpu / max(seen, 1) * 1e6, 1)}
            print(f"  {name} at {rate} events/s: {json.dumps(result['rates'][rate])}", flush=True)
            if not kept_up:
                break
            if published_rate > result.get('sustained_rate', 0):
                result['sustained_rate'] = published_rate
                result['cpu_us_per_event'] = result['rates'][rate]['cpu_us_per_event']
    result['healthcheck_during_ingest_5000'] = healthcheck_during_ingest(name, broker, args)
    return result


def measure_cpu(broker, args, rate=5000):
    """CPU per task event at ``rate`` events/s of both monitors, in ``cpu_rounds`` rounds
    of ``cpu_seconds`` each: every round runs both, each on a monitor started for it,
    no request made meanwhile, ours first in the first round, Flower 2.2.0 first in the
    next, and so on. The medians, and the median of the rounds' ratios: the machine's
    speed drifts over minutes, and rounds that alternate which monitor goes first let
    both meet the same drift."""
    runs = {name: [] for name in MONITORS}
    for number in range(args.cpu_rounds):
        for name in (MONITORS if number % 2 == 0 else reversed(MONITORS)):
            runs[name].append(cpu_run(name, broker, args, rate))
    results = {name: {'rate': rate, 'seconds': args.cpu_seconds, 'runs_us_per_event': figures,
                      'median_us_per_event': median(figures)} for name, figures in runs.items()}
    ratios = [round(mine / theirs, 3) for mine, theirs in zip(*runs.values()) if theirs]
    results['ours'].update(ratios_of_rounds=ratios, median_ratio_of_rounds=median(ratios))
    return results


def cpu_run(name, broker, args, rate):
    """One run of :func:`measure_cpu`: µs of CPU per task event."""
    with subscribed_monitor(name, broker, args) as (monitor, publisher, base):
        tasks = int(rate * args.cpu_seconds / 3)
        cpu = monitor.cpu_seconds()
        publisher.run(tasks, rate)
        seen = monitor.settle(base + tasks * 3, timeout=60, quiet=3) - base
        figure = round((monitor.cpu_seconds() - cpu) / max(seen, 1) * 1e6, 1)
    print(f"  {name}: {figure} µs per task event", flush=True)
    return figure


def median(figures):
    ordered = sorted(figures)
    return ordered[len(ordered) // 2] if ordered else None


def healthcheck_during_ingest(name, broker, args, rate=5000):
    """p50/p95 of ``/healthcheck`` while ``rate`` events/s arrive, on a monitor of its
    own: the CPU per event measured above counts no requests."""
    with subscribed_monitor(name, broker, args) as (monitor, publisher, _):
        process = publisher.start(int(rate * args.seconds / 3), rate)
        try:
            return healthcheck_while(monitor, lambda: time.sleep(0.05), count=60)
        finally:
            process.join()


def measure_sizes(name, broker, args):
    """RSS per task and request latencies with ``sizes`` tasks stored."""
    result = {}
    with subscribed_monitor(name, broker, args) as (monitor, publisher, base):
        time.sleep(1)
        idle_rss = monitor.rss()
        stored = 0
        for size in args.sizes:
            publisher.run(size - stored, rate=args.fill_rate)
            seen = monitor.settle(base + (publisher.next_task - 1) * 3 + 3, timeout=60) - base
            stored = size
            figures = result[size] = {'tasks_seen': seen // 3}
            figures['rss_per_task_bytes'] = round((monitor.rss() - idle_rss) / size)
            figures['api_tasks_limit_100'] = latency(monitor, '/api/tasks?limit=100', 30)
            figures['datatable_first_page'] = latency(monitor, DATATABLE, 30)
            figures['metrics'] = latency(monitor, '/metrics', 100)
            for label, path in SEARCHES.items():
                figures[label] = latency(monitor, path, 30)
            figures['healthcheck_during_full_listing'] = healthcheck_while(
                monitor, lambda: monitor.get('/api/tasks', timeout=300), count=30)
    return result


def measure_fleet(name, broker, args):
    """``benchmarks/fleet.py``'s measure: the workers pages and refreshes while
    ``fleet_workers`` workers send heartbeats and 5,000 task events/s arrive."""
    import fleet
    names = fleet.fleet_names(args.fleet_workers)
    replies = fleet.capture_replies(broker, args.log_dir)
    ready = multiprocessing.Event()
    responder = multiprocessing.Process(target=fleet.answer_inspections,
                                        args=(broker, names, replies, ready), daemon=True)
    responder.start()
    try:
        ready.wait(30)
        return fleet.measure(name, broker, names, argparse.Namespace(
            inspect_timeout=10.0, max_tasks=100000, log_dir=args.log_dir, buffer=24, rate=5000,
            seconds=600, requests=60, spacing=0.05, refreshes=3, refresh_timeout=30))
    except RuntimeError as exc:  # the monitor never showed the whole fleet
        return {'error': str(exc)}
    finally:
        responder.terminate()
        responder.join()


def measure_history(name, broker, args):
    """``benchmarks/history_db.py``'s SQLite measure at ``history_tasks`` stored tasks
    (ours only: Flower 2.2.0's ``--persistent`` history is a pickle of its whole state),
    and a retention pass over it."""
    if name != 'ours':
        return {}
    import history_db
    from flower.store import TaskStore
    with tempfile.TemporaryDirectory(dir=args.log_dir) as workdir:
        path = os.path.join(workdir, 'history.db')
        store = TaskStore(path)
        result = {'fill_s': round(history_db.fill(store, args.history_tasks), 1)}
        store.close()
        figures = history_db.measure_flower('SQLite', path, args.redis, workdir, argparse.Namespace(
            tasks=args.history_tasks, requests=50, request_budget=120))
        result['start_to_healthcheck_s'] = round(figures.pop('healthcheck_s'), 2)
        result['start_to_history_loaded_s'] = round(figures.pop('loaded_s'), 2)
        result.update((label, {'p50': value['p50_ms'], 'p95': value['p95_ms']})
                      for label, value in figures.items() if isinstance(value, dict))
        store = TaskStore(path)
        try:
            for label, keep in (('retention_pass_nothing_to_delete_s', args.history_tasks),
                                ('retention_pass_deleting_10000_s', args.history_tasks - 10000)):
                started = time.perf_counter()
                store.write(max_tasks=keep)
                result[label] = round(time.perf_counter() - started, 4)
        finally:
            store.close()
    return result


def ratio(ours, theirs):
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)) or not theirs:
        return 'n/a'
    return f'{ours / theirs:.3f}'


def add_common_rate(results):
    """CPU per event of both monitors at the highest rate both kept up with."""
    if 'sustained' not in results['ours']:
        return
    rates = [result['sustained']['rates'] for result in (results['ours'], results['flower-2.2.0'])]
    common = [rate for rate in rates[0] if rate in rates[1]
              and rates[0][rate]['kept_up'] and rates[1][rate]['kept_up']]
    if not common:
        return
    for name, measured in zip(('ours', 'flower-2.2.0'), rates):
        results[name]['sustained']['common_rate'] = max(common)
        results[name]['sustained']['cpu_us_at_common_rate'] = \
            measured[max(common)]['cpu_us_per_event']


#: Issue 18's targets, by row label: ``ratio ≤ x`` or an absolute figure.
TARGETS = {
    'CPU per event at 5000 events/s, median of runs (µs)': 'ratio ≤ 0.2',
    'burst loss (%)': '0',
    'burst maximum lag (s)': '≤ 1.0',
    'RSS per task (bytes) at 50000 tasks': 'ratio ≤ 0.25',
    '/metrics p95 (ms) at 50000 tasks': 'ratio ≤ 0.5',
    **{f'{path.split("search=")[1]} p95 (ms) at 50000 tasks': 'ratio ≤ 0.1'
       for label, path in SEARCHES.items() if label != 'search_state'},
    '/workers p95 (ms)': '≤ 50',
    '/api/workers?status=1 p95 (ms)': '≤ 50',
    'start → /healthcheck answers (s)': '≤ 3',
    'retention pass deleting 10,000 tasks (s)': '≤ 1',
}


def report_rows(results):
    """``(label, path into a monitor's results)`` of every figure printed."""
    rows = [('sustained ingest (events/s)', ('sustained', 'sustained_rate')),
            ('CPU per event at that rate (µs)', ('sustained', 'cpu_us_per_event')),
            ('CPU per event, both at the same rate (µs)',
             ('sustained', 'cpu_us_at_common_rate')),
            ('  (that rate, events/s asked for)', ('sustained', 'common_rate')),
            ('CPU per event at 5000 events/s (µs)', ('sustained', 'rates', 5000,
                                                     'cpu_us_per_event')),
            ('CPU per event at 5000 events/s, median of runs (µs)',
             ('cpu', 'median_us_per_event')),
            ('  (median of the rounds\' ratios)', ('cpu', 'median_ratio_of_rounds')),
            ('burst loss (%)', ('burst', 'lost_percent')),
            ('burst maximum lag (s)', ('burst', 'max_lag_s')),
            ('  (burst published at, events/s)', ('burst', 'publish_rate')),
            ('/healthcheck p95 during 5000 ev/s ingest (ms)',
             ('sustained', 'healthcheck_during_ingest_5000', 'p95'))]
    for size in results['sizes']:
        for label, key in (('RSS per task (bytes)', ('rss_per_task_bytes',)),
                           ('/api/tasks?limit=100 p50 (ms)', ('api_tasks_limit_100', 'p50')),
                           ('/api/tasks?limit=100 p95 (ms)', ('api_tasks_limit_100', 'p95')),
                           ('datatable first page p50 (ms)', ('datatable_first_page', 'p50')),
                           ('datatable first page p95 (ms)', ('datatable_first_page', 'p95')),
                           ('/metrics p50 (ms)', ('metrics', 'p50')),
                           ('/metrics p95 (ms)', ('metrics', 'p95')),
                           *((f'{path.split("search=")[1]} p95 (ms)', (label, 'p95'))
                             for label, path in SEARCHES.items()),
                           ('/healthcheck p95 during full listing (ms)',
                            ('healthcheck_during_full_listing', 'p95'))):
            rows.append((f'{label} at {size} tasks', ('sizes', size) + key))
    rows += [(f'{path} p95 (ms)', ('fleet', label, 'p95'))
             for label, path in (('workers_page', '/workers'),
                                 ('api_workers_status', '/api/workers?status=1'),
                                 ('api_workers', '/api/workers'))]
    rows += [('/api/workers?refresh=1 p95 (ms)', ('fleet', 'refresh_every_worker', 'p95')),
             ('  fewest workers replied to one refresh',
              ('fleet', 'refresh_every_worker', 'fewest_workers_replied'))]
    rows += [('start → /healthcheck answers (s)', ('history', 'start_to_healthcheck_s')),
             ('start → history loaded (s)', ('history', 'start_to_history_loaded_s'))]
    history = results['ours'].get('history', {})
    rows += [(f'{label} p95 (ms)', ('history', label, 'p95'))
             for label, value in history.items() if isinstance(value, dict)]
    rows += [('retention pass, nothing to delete (s)',
              ('history', 'retention_pass_nothing_to_delete_s')),
             ('retention pass deleting 10,000 tasks (s)',
              ('history', 'retention_pass_deleting_10000_s'))]
    return rows


def report(results):
    ours, theirs = results['ours'], results['flower-2.2.0']
    rows = report_rows(results)

    def dig(data, path):
        for key in path:
            if not isinstance(data, dict) or key not in data:
                return None
            data = data[key]
        return data

    def show(value):
        if isinstance(value, float):
            return f'{value:.3f}' if abs(value) < 1 else f'{value:.1f}'
        return str(value if value is not None else 'n/a')

    width = max(len(label) for label, _ in rows)
    print(f"\n{'measure':{width}}  {'ours':>12}  {'flower 2.2.0':>12}  {'ratio':>8}  target")
    if ours.get('history'):
        print(f"(history: SQLite, {results['history_tasks']:,} tasks stored; fleet: "
              f"{results['fleet_workers']} workers and 5000 task events/s)")
    for label, path in rows:
        mine, other = dig(ours, path), dig(theirs, path)
        if mine is None and other is None:
            continue
        print(f'{label:{width}}  {show(mine):>12}  {show(other):>12}  '
              f'{ratio(mine, other):>8}  {TARGETS.get(label, "")}')


MEASURES = {'sustained': measure_sustained, 'cpu': measure_cpu, 'burst': measure_burst,
            'sizes': measure_sizes,
            'fleet': measure_fleet, 'history': measure_history}
#: Measures that run both monitors themselves (``measure(broker, args)``).
PAIRED = {'cpu'}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='small sizes, to try the script')
    parser.add_argument('--output', default=os.path.join(REPO, 'benchmarks', 'results.json'))
    parser.add_argument('--measures', default=','.join(MEASURES),
                        help='which measures to run, comma separated (default: all: '
                             f'{",".join(MEASURES)})')
    args = parser.parse_args()
    args.sizes = [5000, 20000] if args.quick else [50000, 200000]
    args.burst = 30000 if args.quick else 150000
    args.rates = ([5000, 10000] if args.quick else
                  [5000, 10000, 15000, 20000, 25000, 30000, 35000, 40000, 50000])
    args.max_lag = 1.0  # seconds of events a monitor may be behind and still keep up
    args.seconds = 4 if args.quick else 8
    args.cpu_rounds, args.cpu_seconds = (1, 4) if args.quick else (5, 20)
    args.fill_rate = 8000
    args.max_tasks = max(args.sizes) + 50000
    args.fleet_workers = 100 if args.quick else 500
    args.history_tasks = 100_000 if args.quick else 1_000_000
    ensure_flower22()
    log_dir = os.path.join(REPO, 'benchmarks', 'logs')
    os.makedirs(log_dir, exist_ok=True)
    args.log_dir = log_dir
    redis = RedisServer(dir=log_dir)
    redis.start()
    results = {name: {} for name in MONITORS}
    results['sizes'] = args.sizes
    results['fleet_workers'] = args.fleet_workers
    results['history_tasks'] = args.history_tasks
    args.redis = redis
    results['load_before'] = os.getloadavg()
    try:
        for number, name in enumerate(MEASURES):
            if name not in args.measures.split(','):
                continue
            measure = MEASURES[name]
            broker = redis.url_for(number + 1)
            if name in PAIRED:  # both monitors in one measure, round by round
                print(f"{measure.__name__} ...", flush=True)
                for monitor, result in measure(broker, args).items():
                    results[monitor][name] = result
                    print(monitor, json.dumps(result, default=str), flush=True)
                continue
            for monitor in MONITORS:  # interleaved: each measure, ours then Flower 2.2.0
                print(f"{measure.__name__} {monitor} ...", flush=True)
                results[monitor][name] = measure(monitor, broker, args)
                print(json.dumps(results[monitor][name], default=str), flush=True)
    finally:
        redis.stop()
    results['load_after'] = os.getloadavg()
    add_common_rate(results)
    with open(args.output, 'w') as output:
        json.dump(results, output, indent=1, default=str)
    report(results)
    print(f"\nload average before {results['load_before']}, after {results['load_after']}")


if __name__ == '__main__':
    main()
