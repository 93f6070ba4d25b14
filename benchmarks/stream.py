#!/usr/bin/env python
"""Ingest with ``/api/events`` clients connected: 0 clients, then 100, side by side.

    .venv/bin/python benchmarks/stream.py [--clients 100] [--rate 5000] [--seconds 20]

For each number of clients, starts ``celery flower`` on a private Redis,
connects that many ``/api/events`` clients (one thread reads them all and
drops what it reads), publishes task events at ``--rate`` events/s for
``--seconds`` with ``benchmarks/run.py``'s publisher (20 workers with
heartbeats, one task in ten failing), and samples ``/healthcheck`` every 50 ms
meanwhile. Prints, per run: the rate published, the events applied, how far
behind flower was when publishing ended, CPU per event, ``/healthcheck`` p50
and p95, and what the clients received.
"""
import argparse
import json
import os
import selectors
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run as harness  # noqa: E402  (benchmarks/run.py: publisher and monitor)


class StreamReaders:
    """``count`` ``/api/events`` clients on one thread, reading as fast as they can."""

    def __init__(self, port, count):
        self.selector = selectors.DefaultSelector()
        self.received = {}
        self.lagged = 0
        for number in range(count):
            client = socket.create_connection(('127.0.0.1', port))
            client.sendall(f'GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n'.encode())
            client.setblocking(False)
            self.selector.register(client, selectors.EVENT_READ, number)
            self.received[number] = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stopping.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                self.received[key.data] += data.count(b'\nevent: task-')
                self.lagged += data.count(b'event: lagged')

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()


def measure(broker, clients, args):
    monitor = harness.Monitor('ours', broker, args.max_tasks, args.log_dir)
    try:
        publisher = harness.Publisher(broker)
        base = harness.subscribe(monitor, publisher)
        readers = StreamReaders(monitor.port, clients)
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
        readers.stop()
        per_client = sorted(readers.received.values())
        return {
            'clients': clients, 'published_rate': published_rate, 'sent': tasks * 3,
            'applied': seen, 'behind_when_publishing_ended': behind,
            'cpu_us_per_event': round(cpu / max(seen, 1) * 1e6, 1),
            'healthcheck_ms': {key: round(value, 1)
                               for key, value in harness.percentiles(samples).items()},
            'task_events_per_client': {'min': per_client[0], 'max': per_client[-1]}
            if per_client else None,
            'lagged_messages': readers.lagged,
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
