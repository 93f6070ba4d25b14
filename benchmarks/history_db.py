"""The task history in PostgreSQL against SQLite: ingest, and listings at 1,000,000 tasks.

    .venv/bin/python benchmarks/history_db.py [--tasks 1000000] [--requests 50]
        [--stores sqlite,postgresql] [--only listings,ingest] [--follow-rate N] [--rates ...]

Starts a private PostgreSQL cluster (``tests.support.postgres``, but with a
real server's durability: fsync, full-page writes and synchronous commits on;
``--pg-setting`` changes a setting) and a private redis-server, then for each
store, SQLite first:

1. fills it with ``--tasks`` finished tasks through the store's own ``write``,
   20,000 a batch (one in ten failed with a traceback), and times it;
2. starts ``celery flower`` on it (``--persistent --db=FILE``, or
   ``--db=postgresql://...``; ``--max_tasks`` left at its default), times the
   start until ``/healthcheck`` answers and until the log says the history is
   loaded, then times listings, sorts and searches over HTTP;
3. ingests as :class:`flower.history.History` writes: one batch a flush
   interval (1 s), each task written three times over its life (received,
   started, then succeeded or failed, one interval apart), with the retention
   the store applies on every write keeping it at ``--tasks``. Rates go up
   until a batch's write takes longer than the interval; the highest rate at
   which every batch was written in time is the store's sustained rate.
   PostgreSQL is also fed for ``--follow-seconds`` at SQLite's sustained rate.

``--stores`` and ``--only`` run a part of this (e.g. PostgreSQL's ingest alone);
``--follow-rate`` and ``--rates`` set the rates. Prints the figures side by side
(see docs/benchmarks.rst); the figures of
record are in benchmarks/RESULTS.md.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from flower.store import TASK_COLUMNS, TaskStore  # noqa: E402
from flower.store_postgres import PostgresTaskStore  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402
from tests.support.processes import RedisServer, free_port  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from restore import timed_get, wait_for_healthcheck  # noqa: E402  (benchmarks/restore.py)

FLUSH_INTERVAL = 1.0  # seconds: History's default state_save_interval
FILL_BATCH = 20000
WORKERS = [f'w{number}@bench' for number in range(4)]
TRACEBACK = 'Traceback (most recent call last):\n' + '  File "tasks.py", line 12, in run\n' * 8
STORES = ('SQLite', 'PostgreSQL')
PARTS = ('listings', 'ingest')
RATES = (250, 500, 1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 40000, 60000)
#: Durability as a PostgreSQL server has it out of the box (the tests turn it off).
DURABLE = ('fsync=on', 'full_page_writes=on', 'synchronous_commit=on')


class BenchCluster(PostgresCluster):
    """The tests' private cluster, started with ``settings`` instead of theirs."""

    def __init__(self, settings, base_dir):
        super().__init__(base_dir=base_dir)
        self.settings = settings

    def start(self, timeout=30):
        if not self._initialised:
            self._initdb()
        options = ' '.join([f'-c listen_addresses={self.host} -p {self.port} -k {self.base_dir}',
                            *(f'-c {setting}' for setting in self.settings)])
        self._check(self._run('pg_ctl', 'start', '-D', self.data_dir, '-l', self.log_path,
                              '-o', options, '-w', '-t', str(int(timeout)), timeout=timeout + 10),
                    'pg_ctl start')
        return self


# -- rows ------------------------------------------------------------------------------

def task_fields(number, stage, start):
    """Task ``number`` as History writes it after its received (0), started (1) and
    succeeded or failed (2) event: every field known so far."""
    failed = number % 10 == 0
    at = start + number / 1000
    fields = {'uuid': f'{number:08x}-7c1e-4b8a-9d2f-{number:012x}', 'seq': number,
              'name': f'tasks.job{number % 20}', 'state': 'RECEIVED',
              'worker': WORKERS[number % len(WORKERS)], 'received': at, 'timestamp': at,
              'args': f'({number}, "order-{number}")', 'kwargs': "{'user': 'u%d'}" % number,
              'retries': 0, 'root_id': None, 'clock': 3 * number}
    if stage >= 1:
        fields.update(state='STARTED', started=at + 0.01, timestamp=at + 0.01,
                      clock=3 * number + 1)
    if stage >= 2:
        runtime = (number % 1000) / 1000
        fields.update(timestamp=at + 0.01 + runtime, clock=3 * number + 2)
        if failed:
            fields.update(state='FAILURE', failed=at + 0.01 + runtime,
                          exception="ValueError('bad')", traceback=TRACEBACK)
        else:
            fields.update(state='SUCCESS', succeeded=at + 0.01 + runtime, runtime=runtime,
                          result=f"'ok-{number}'")
    return [fields.get(column) for column in TASK_COLUMNS]


def fill(store, count):
    """Write ``count`` finished tasks; return the seconds it took."""
    start = time.time() - count / 1000
    started = time.monotonic()
    for first in range(0, count, FILL_BATCH):
        store.write(tasks=[task_fields(number, 2, start)
                           for number in range(first, min(count, first + FILL_BATCH))])
    return time.monotonic() - started


# -- ingest ----------------------------------------------------------------------------

def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def ingest(store, rate, seconds, first_number, max_tasks):
    """Write one batch a flush interval for ``seconds`` at ``rate`` tasks/s: the tasks
    received in the last interval, started in the one before, finished in the one
    before that. A write longer than the interval delays the next batch, which holds
    the same rows (what History writes is what changed since its last write, and the
    rows generated here stand for it). Returns the write seconds per batch (the first
    two, smaller, left out; at least three) and the next task number."""
    start = time.time()
    counters = [(worker, event, rate) for worker in WORKERS
                for event in ('task-received', 'task-started', 'task-succeeded')]
    workers = [(worker, {'hostname': worker, 'active': 4, 'processed': 0}) for worker in WORKERS]
    timings = []
    began_at = due = time.monotonic()
    batch = 0
    while len(timings) < 3 or time.monotonic() - began_at < seconds + 2 * FLUSH_INTERVAL:
        rows = []
        for stage in range(3):
            low = first_number + (batch - stage) * rate
            if low >= first_number:
                rows.extend(task_fields(number, stage, start) for number in range(low, low + rate))
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        due = max(due, now) + FLUSH_INTERVAL
        began = time.perf_counter()
        store.write(tasks=rows, workers=workers, counters=counters, max_tasks=max_tasks)
        if batch >= 2:
            timings.append(time.perf_counter() - began)
        batch += 1
    return timings, first_number + batch * rate


def write_summary(timings):
    return {'batches': len(timings), 'p50_ms': percentile(timings, 0.5) * 1000,
            'p95_ms': percentile(timings, 0.95) * 1000, 'max_ms': max(timings) * 1000,
            'kept_up': max(timings) < FLUSH_INTERVAL}


def sustained_rate(name, store, args, number):
    """Rates upwards until one is not kept up with, then one between the last two."""
    results = {}

    def attempt(rate):
        nonlocal number
        timings, number = ingest(store, rate, args.rate_seconds, number, args.tasks)
        results[rate] = write_summary(timings)
        print(f'  {name} ingest at {rate} tasks/s: {json.dumps(results[rate])}', flush=True)
        return results[rate]['kept_up']

    best, failed = 0, None
    for rate in args.rates:
        if not attempt(rate):
            failed = rate
            break
        best = rate
    if failed is not None and failed - best > 500:
        middle = (best + failed) // 2 // 500 * 500
        if attempt(middle):
            best = middle
    return best, results, number


# -- flower over HTTP --------------------------------------------------------------------

def requests(args):
    """``{label: path}`` of the requests timed; the order number searched for is in
    exactly one task's arguments (``order-N`` with ``10 N >= tasks``)."""
    once = int(args.tasks * 0.654321)
    return {
        '/api/tasks?limit=100 (first page)': '/api/tasks?limit=100',
        '/tasks/datatable first page': '/tasks/datatable?draw=1&start=0&length=25',
        '/api/tasks?limit=100&sort_by=name': '/api/tasks?limit=100&sort_by=name',
        '/api/tasks?limit=100&sort_by=-runtime': '/api/tasks?limit=100&sort_by=-runtime',
        '/api/tasks?limit=100&state=FAILURE&workername=w2@bench':
            '/api/tasks?limit=100&state=FAILURE&workername=w2@bench',
        f'/api/tasks?limit=100&search=order-{once} (one match)':
            f'/api/tasks?limit=100&search=order-{once}',
        '/api/tasks?limit=100&search=args:order-1234':
            '/api/tasks?limit=100&search=args:order-1234',
    }


def measure_flower(name, db, redis, workdir, args):
    """Start flower on ``db``; time the start and the requests; stop it."""
    port = free_port()
    log_path = os.path.join(workdir, f'flower-{name}.log')
    env = {key: value for key, value in os.environ.items() if not key.startswith('FLOWER_')}
    env.update(FLOWER_UNAUTHENTICATED_API='true', PYTHONPATH=REPO)
    argv = [sys.executable, '-m', 'celery', '--broker', redis.url, 'flower', f'--port={port}',
            '--address=127.0.0.1', f'--db={db}']
    if name == 'SQLite':
        argv.append('--persistent')
    result = {}
    with open(log_path, 'wb') as log:
        launched = time.monotonic()
        flower = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    try:
        wait_for_healthcheck(port, flower, log_path)
        result['healthcheck_s'] = time.monotonic() - launched
        while True:
            with open(log_path, encoding='utf-8', errors='replace') as log:
                loaded = re.search(r'Restored (\d+) tasks', log.read())
            if loaded:
                break
            if flower.poll() is not None:
                raise SystemExit(f'flower exited ({flower.returncode}), see {log_path}')
            time.sleep(0.02)
        result['loaded_s'] = time.monotonic() - launched
        result['tasks_in_memory'] = int(loaded.group(1))
        for label, path in requests(args).items():
            timings, matched = [], None
            began = time.monotonic()
            while len(timings) < args.requests and (
                    time.monotonic() - began < args.request_budget or len(timings) < 3):
                status, milliseconds, body = timed_get(port, path, timeout=300)
                if status != 200:
                    raise SystemExit(f'{path}: HTTP {status}: {body[:200]!r}')
                timings.append(milliseconds)
                if matched is None and path.startswith('/api/'):
                    matched = len(json.loads(body))
            result[label] = {'requests': len(timings), 'p50_ms': percentile(timings, 0.5),
                             'p95_ms': percentile(timings, 0.95), 'max_ms': max(timings),
                             'rows': matched}
            print(f'  {name} {label}: {json.dumps(result[label])}', flush=True)
    finally:
        flower.terminate()
        flower.wait(60)
    return result


# -- the run ---------------------------------------------------------------------------------

def open_store(name, workdir, cluster):
    if name == 'SQLite':
        path = os.path.join(workdir, 'history.db')
        return path, TaskStore(path)
    url = cluster.url(cluster.create_database('flower_bench'))
    return url, PostgresTaskStore(url)


def run(args, workdir, cluster, redis):
    results = {}
    for name in args.stores:
        figures = results[name] = {}
        db, store = open_store(name, workdir, cluster)
        figures['fill_s'] = fill(store, args.tasks)
        print(f'{name}: {args.tasks} tasks written in {figures["fill_s"]:.1f} s', flush=True)
        if name == 'PostgreSQL':
            started = time.monotonic()
            cluster.psql('VACUUM (ANALYZE)', dbname='flower_bench')
            figures['vacuum_s'] = time.monotonic() - started
            figures['size_mb'] = int(cluster.psql(
                "SELECT pg_database_size('flower_bench')", dbname='flower_bench')) / 1e6
        else:
            figures['size_mb'] = os.path.getsize(db) / 1e6
        store.close()
        if 'listings' in args.only:
            figures['flower'] = measure_flower(name, db, redis, workdir, args)
        figures['store'] = open_store(name, workdir, None)[1] if name == 'SQLite' else \
            PostgresTaskStore(db)
    number = args.tasks
    if 'ingest' in args.only:
        sqlite, postgres = results.get('SQLite'), results.get('PostgreSQL')
        if sqlite is not None:
            sqlite['rate'], sqlite['rates'], number = sustained_rate(
                'SQLite', sqlite['store'], args, number)
        if postgres is not None:
            follow_rate = args.follow_rate or max(sqlite['rate'] if sqlite else 0, RATES[0])
            timings, number = ingest(postgres['store'], follow_rate, args.follow_seconds,
                                     number, args.tasks)
            postgres['at_sqlite_rate'] = write_summary(timings)
            postgres['followed_rate'] = follow_rate
            print(f'  PostgreSQL at {follow_rate} tasks/s for {args.follow_seconds} s: '
                  f'{json.dumps(postgres["at_sqlite_rate"])}', flush=True)
            if args.rates:
                postgres['rate'], postgres['rates'], number = sustained_rate(
                    'PostgreSQL', postgres['store'], args, number)
    for figures in results.values():
        figures.pop('store').close()
    return results


def report(results, args):
    if set(args.stores) != set(STORES) or set(args.only) != set(PARTS):
        for name in args.stores:
            print(f'\n{name}: ' + json.dumps({key: value for key, value in results[name].items()
                                               if key != 'rates'}))
            for rate, figures in results[name].get('rates', {}).items():
                print(f'  {rate:>6}: {json.dumps(figures)}')
        return
    sqlite, postgres = results['SQLite'], results['PostgreSQL']
    rows = [('fill: write --tasks tasks, 20,000 a batch (s)', 'fill_s', None),
            ('database size after fill (MB)', 'size_mb', None),
            ('start → /healthcheck answers (s)', ('flower', 'healthcheck_s'), None),
            ('start → history loaded (s)', ('flower', 'loaded_s'), None)]
    for label in requests(args):
        rows.append((f'{label} p50 (ms)', ('flower', label, 'p50_ms'), None))
        rows.append((f'{label} p95 (ms)', ('flower', label, 'p95_ms'), '≤ 50'))
    rows.append(('highest sustained ingest (tasks/s, 3 writes each)', 'rate', None))
    at = max(sqlite['rate'], RATES[0])
    for key in ('p50_ms', 'p95_ms', 'max_ms'):
        rows.append((f'write per batch at {at} tasks/s, {key[:-3]} (ms)',
                     None, None, sqlite['rates'].get(at, {}).get(key),
                     postgres['at_sqlite_rate'][key]))

    def dig(data, path):
        for key in (path,) if isinstance(path, str) else path:
            data = data.get(key) if isinstance(data, dict) else None
        return data

    def show(value):
        return f'{value:,.1f}' if isinstance(value, float) else \
            (f'{value:,}' if isinstance(value, int) else 'n/a')

    print(f'\n| measure ({args.tasks:,} tasks stored) | SQLite | PostgreSQL | target |')
    print('| --- | ---: | ---: | --- |')
    for row in rows:
        label, path, target = row[:3]
        mine, theirs = row[3:] if path is None else (dig(sqlite, path), dig(postgres, path))
        print(f'| {label} | {show(mine)} | {show(theirs)} | {target or ""} |')
    print(f'| PostgreSQL kept up with SQLite\'s rate for {args.follow_seconds} s | | '
          f'{"yes" if postgres["at_sqlite_rate"]["kept_up"] else "no"} | yes |')
    for name in ('SQLite', 'PostgreSQL'):
        print(f'\n{name} ingest, write per batch (ms) by rate (tasks/s):')
        for rate, figures in results[name]['rates'].items():
            print(f'  {rate:>6}: p50 {figures["p50_ms"]:7.1f}  p95 {figures["p95_ms"]:7.1f}  '
                  f'max {figures["max_ms"]:7.1f}  {"kept up" if figures["kept_up"] else "NOT kept up"}')


def _named(names, given):
    """The one of ``names`` that ``given`` is, whatever its case."""
    for name in names:
        if name.lower() == given.strip().lower():
            return name
    raise argparse.ArgumentTypeError(f'{given!r} is not one of {", ".join(names)}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tasks', type=int, default=1_000_000)
    parser.add_argument('--requests', type=int, default=50, help='requests timed per measure')
    parser.add_argument('--request-budget', type=float, default=120,
                        help='seconds a measure may take: slow requests are timed fewer times')
    parser.add_argument('--rate-seconds', type=float, default=15, help='ingest time per rate')
    parser.add_argument('--follow-seconds', type=float, default=60,
                        help="PostgreSQL's ingest time at SQLite's sustained rate")
    parser.add_argument('--stores', type=lambda text: [_named(STORES, name)
                                                       for name in text.split(',')],
                        default=list(STORES), help='stores measured, in turn (sqlite,postgresql)')
    parser.add_argument('--only', type=lambda text: [_named(PARTS, part)
                                                     for part in text.split(',')],
                        default=list(PARTS), help='parts measured after the fill '
                        '(listings,ingest)')
    parser.add_argument('--rates', type=lambda text: [int(rate) for rate in text.split(',') if rate],
                        default=list(RATES), help='ingest rates tried in turn, tasks/s, '
                        'until one is not kept up with ("" for none)')
    parser.add_argument('--follow-rate', type=int, default=0,
                        help="PostgreSQL's first ingest rate (default: SQLite's sustained one)")
    parser.add_argument('--pg-setting', action='append', default=[], metavar='NAME=VALUE',
                        help='a PostgreSQL server setting (default: its own, durable)')
    parser.add_argument('--output', default=os.path.join(REPO, 'benchmarks', 'history_db.json'))
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='flower-history-db-bench-', dir='/var/tmp')
    os.chmod(workdir, 0o711)  # the server may run as the postgres user
    settings = [*DURABLE, *args.pg_setting]
    cluster = BenchCluster(settings, os.path.join(workdir, 'pg'))
    os.makedirs(cluster.base_dir)
    cluster.start()
    redis = RedisServer(dir=workdir).start()
    load_before = os.getloadavg()
    print(f'load average before: {load_before}; PostgreSQL settings: {settings}; '
          f'files in {workdir}', flush=True)
    try:
        results = run(args, workdir, cluster, redis)
    finally:
        redis.stop()
        cluster.remove()
    results['load_before'], results['load_after'] = load_before, os.getloadavg()
    results['postgres_settings'] = settings
    with open(args.output, 'w') as output:
        json.dump(results, output, indent=1)
    report(results, args)
    print(f"\nload average before {results['load_before']}, after {results['load_after']}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
