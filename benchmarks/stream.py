#!/usr/bin/env python
"""Ingest with ``/api/events`` clients connected: 0 clients, then 100, side by side.

    .venv/bin/python benchmarks/stream.py [--clients 100] [--rate 5000] [--seconds 20]

For each number of clients, starts ``celery flower`` on a private Redis,
connects that many ``/api/events`` clients (``curl -N``, each counting what
it receives with ``grep -c``), publishes task events at ``--rate`` events/s for
``--seconds`` with ``benchmarks/run.py``'s publisher (20 workers with
heartbeats, one task in ten failing), and samples ``/healthcheck`` every 50 ms
meanwhile. Prints, per run: the rate published, the events applied, how far
behind flower was when publishing ended, CPU per event, ``/healthcheck`` p50
and p95, and what the clients received.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run as harness  # noqa: E402  (benchmarks/run.py: publisher and monitor)


class StreamReaders:
    """``count`` ``/api/events`` clients, each ``curl -N`` piped into ``grep -c``: readers
    in C, so that the clients cost the machine as little as real ones elsewhere would."""

    def __init__(self, port, count, seconds):
        url = f'http://127.0.0.1:{port}/api/events'
        self.processes = [subprocess.Popen(
            f"curl -sN --max-time {seconds} {url} | grep -c -e '^event: task-'",
            shell=True, stdout=subprocess.PIPE, text=True) for _ in range(count)]

    def counts(self):
        """Task changes each client received, once their ``curl`` time is up."""
        return sorted(int(process.communicate()[0] or 0) for process in self.processes)


def measure(broker, clients, args):
    monitor = harness.Monitor('ours', broker, args.max_tasks, args.log_dir)
    try:
        publisher = harness.Publisher(broker)
        base = harness.subscribe(monitor, publisher)
        readers = StreamReaders(monitor.port, clients, args.seconds + 20)
        time.sleep(1)
        tasks = int(args.rate * args.seconds / 3)
        cpu = monitor.cpu_seconds()
        publishing = time.monotonic()
        process = publisher.start(tasks, args.rate)
        samples = []
        while process.is_alive():
            samples.append(monitor.get('/healthcheck'))
            time.sleep(0.05)
        process.join()
        published_rate = round(tasks * 3 / (time.monotonic() - publishing))
        behind = tasks * 3 - (monitor.task_events() - base)
        seen = monitor.settle(base + tasks * 3, timeout=60, quiet=3) - base
        cpu = monitor.cpu_seconds() - cpu
        time.sleep(1)
        per_client = readers.counts()
        return {
            'clients': clients, 'published_rate': published_rate, 'sent': tasks * 3,
            'applied': seen, 'behind_when_publishing_ended': behind,
            'cpu_us_per_event': round(cpu / max(seen, 1) * 1e6, 1),
            'healthcheck_ms': {key: round(value, 1)
                               for key, value in harness.percentiles(samples).items()},
            'messages_per_client': {'min': per_client[0], 'max': per_client[-1]}
            if per_client else None,
        }
    finally:
        monitor.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--clients', type=int, default=100)
    parser.add_argument('--rate', type=int, default=5000)
    parser.add_argument('--seconds', type=int, default=20)
    parser.add_argument('--max-tasks', type=int, default=100000)
    args = parser.parse_args()
    args.log_dir = tempfile.mkdtemp(prefix='flower-stream-bench-')
    redis = harness.RedisServer(dir=args.log_dir).start()
    try:
        with open('/proc/loadavg') as load:
            print('load average before:', load.read().split()[:3])
        for clients in (0, args.clients):
            print(json.dumps(measure(redis.url, clients, args)), flush=True)
        with open('/proc/loadavg') as load:
            print('load average after:', load.read().split()[:3])
    finally:
        redis.stop()


if __name__ == '__main__':
    main()
