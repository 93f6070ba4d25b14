"""Requests served while a restarted flower loads its ``--persistent`` history.

    .venv/bin/python benchmarks/restore.py [--tasks 200000] [--requests-for 60]

Writes a history of ``--tasks`` tasks (one in ten failed, with a traceback)
straight into a fresh SQLite file, starts ``celery flower --persistent`` on
it against a private redis-server, and as soon as ``/healthcheck`` answers
sends ``/api/tasks?limit=100`` requests back to back, one at a time, until
the log says the history is loaded. Prints how long the load took and the
latency of the requests made meanwhile (p50, p95, max), then the same for
requests made after the load.
"""
import argparse
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tests.support.history import write_history  # noqa: E402
from tests.support.processes import RedisServer, free_port  # noqa: E402


def timed_get(port, path, timeout=30):
    """``GET path`` of the flower on ``port``: ``(status, milliseconds, body)``."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        connection.request('GET', path)
        response = connection.getresponse()
        body = response.read()
        return response.status, (time.perf_counter() - started) * 1000, body
    finally:
        connection.close()


def wait_for_healthcheck(port, flower, log_path):
    """Return once the flower process ``flower`` answers ``/healthcheck``; stop the
    benchmark if it exits first."""
    while True:
        try:
            if timed_get(port, '/healthcheck')[0] == 200:
                return
        except OSError:
            if flower.poll() is not None:
                raise SystemExit(f'flower exited ({flower.returncode}), see {log_path}') from None
            time.sleep(0.02)


def summary(latencies):
    if not latencies:
        return 'no request'
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (f'{len(ordered)} requests, p50 {statistics.median(ordered):.1f} ms, '
            f'p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tasks', type=int, default=200000)
    parser.add_argument('--after', type=int, default=50, help='requests measured after the load')
    arguments = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix='flower-restore-bench-')
    db = os.path.join(workdir, 'history.db')
    started = time.monotonic()
    write_history(db, arguments.tasks)
    print(f'history of {arguments.tasks} tasks written in {time.monotonic() - started:.1f} s '
          f'({os.path.getsize(db) / 1e6:.0f} MB)')

    redis = RedisServer(dir=workdir).start()
    port = free_port()
    log_path = os.path.join(workdir, 'flower.log')
    env = {key: value for key, value in os.environ.items() if not key.startswith('FLOWER_')}
    env['FLOWER_UNAUTHENTICATED_API'] = 'true'
    with open(log_path, 'wb') as log:
        flower = subprocess.Popen(
            [sys.executable, '-m', 'celery', '--broker', redis.url, 'flower', f'--port={port}',
             '--persistent', f'--db={db}', f'--max_tasks={arguments.tasks}'],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    launched = time.monotonic()
    try:
        wait_for_healthcheck(port, flower, log_path)
        healthy = time.monotonic() - launched
        during, after = [], []
        while True:
            status, elapsed, _ = timed_get(port, '/api/tasks?limit=100')
            assert status == 200, status
            with open(log_path, encoding='utf-8', errors='replace') as log:
                loaded = re.search(r'Restored (\d+) tasks .* in ([\d.]+) s', log.read())
            if loaded:
                break
            during.append(elapsed)
        load_seconds = float(loaded.group(2))
        for _ in range(arguments.after):
            after.append(timed_get(port, '/api/tasks?limit=100')[1])
        print(f'/healthcheck answered {healthy:.2f} s after start; {loaded.group(1)} tasks '
              f'loaded in {load_seconds:.2f} s (by the log)')
        print(f'/api/tasks?limit=100 while loading: {summary(during)}')
        print(f'/api/tasks?limit=100 after loading:  {summary(after)}')
    finally:
        flower.terminate()
        flower.wait(30)
        redis.stop()


if __name__ == '__main__':
    main()
