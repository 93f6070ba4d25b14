"""The tasks page's data request with 100,000 tasks in state: first page, sorted, searched.

    .venv/bin/python benchmarks/tasks_page.py [--tasks 100000] [--requests 30]

Feeds the tasks' events straight into a running Flower (the same path events
from the broker take after decoding), then times ``/tasks/datatable`` requests
over HTTP and prints p50 / p95 in milliseconds. Needs no broker.
"""
import argparse
import os
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.flower import FlowerServer  # noqa: E402

QUERIES = {
    'first page': 'draw=1&start=0&length=25',
    'sorted by runtime': ('draw=1&start=0&length=25&columns[0][data]=runtime'
                          '&order[0][column]=0&order[0][dir]=desc'),
    'state:FAILURE': 'draw=1&start=0&length=25&search[value]=state:FAILURE',
    'page 100': 'draw=1&start=2475&length=25',
}


def feed(flower, count):
    """Send received/started/succeeded-or-failed events for ``count`` tasks."""
    events = flower.app.events
    now = time.time() - count * 0.01
    for number in range(count):
        moment = now + number * 0.01
        common = {'uuid': f'task-{number:07d}', 'hostname': f'worker{number % 20}@bench',
                  'local_received': moment}
        events.on_event(dict(common, type='task-received', name=f'tasks.job{number % 15}',
                             args=f'({number}, {number * 2})', kwargs="{'retry': False}",
                             timestamp=moment, clock=3 * number))
        events.on_event(dict(common, type='task-started', timestamp=moment + 0.001,
                             clock=3 * number + 1))
        if number % 10:
            events.on_event(dict(common, type='task-succeeded', result=str(number),
                                 runtime=(number % 1000) / 1000, timestamp=moment + 0.002,
                                 clock=3 * number + 2))
        else:
            events.on_event(dict(common, type='task-failed', exception="ValueError('bad')",
                                 traceback='Traceback (most recent call last):\nValueError: bad',
                                 timestamp=moment + 0.002, clock=3 * number + 2))
    total = count * 3
    while events.applied_count < total:
        time.sleep(0.1)


def latency(url, requests):
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[max(0, round(0.95 * len(timings)) - 1)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tasks', type=int, default=100_000)
    parser.add_argument('--requests', type=int, default=30)
    arguments = parser.parse_args()
    with FlowerServer('memory://', enable_events=False,
                      max_tasks=arguments.tasks) as flower:
        started = time.perf_counter()
        feed(flower, arguments.tasks)
        print(f"{arguments.tasks:,} tasks applied in {time.perf_counter() - started:.1f} s; "
              f"load average {os.getloadavg()[0]:.2f}")
        for label, query in QUERIES.items():
            p50, p95 = latency(f'{flower.base_url}/tasks/datatable?{query}', arguments.requests)
            print(f"/tasks/datatable {label:<18} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms")


if __name__ == '__main__':
    main()
