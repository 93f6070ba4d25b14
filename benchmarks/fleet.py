#!/usr/bin/env python
"""A fleet of 500 workers: the workers pages while heartbeats and task events arrive.

    .venv/bin/python benchmarks/fleet.py [--workers 500] [--rate 5000] [--requests 100]
                                         [--monitors ours,flower-2.2.0]

Starts a private ``redis-server`` and, for each monitor in turn, ``celery
flower`` (from ``benchmarks/run.py``'s command templates) with ``--workers``
worker host names sending a heartbeat every 2 s and task events at ``--rate``
events/s (``benchmarks/run.py``'s publisher, in a process of its own). The
same names answer remote-control requests: a responder process replies for
each of them with the replies of one real ``celery worker`` captured at the
start, so that inspections see a fleet of that size. Once the monitor shows
every worker online, times ``/workers`` (the HTML page),
``/api/workers?status=1`` and ``/api/workers`` in turn, then refreshes of
every worker and of one, and prints p50 and p95 in milliseconds.
"""
import argparse
import json
import multiprocessing
import os
import sys
import time
import urllib.error

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run as harness  # noqa: E402  (benchmarks/run.py: publisher and monitor)

from tests.support.processes import CeleryWorker, RedisServer  # noqa: E402

#: The pages timed while the fleet's events arrive, by label.
PAGES = {'workers_page': '/workers', 'api_workers_status': '/api/workers?status=1',
         'api_workers': '/api/workers'}
#: Seconds a refresh may take before it is reported as not answered.
REFRESH_TIMEOUT = 120
#: What the responder answers, from the real worker's replies.
INSPECTED = ('stats', 'active_queues', 'registered', 'conf', 'active', 'reserved', 'scheduled',
             'revoked')


def fleet_names(count):
    """``count`` worker host names, eight workers a host."""
    return [f'fleet-{number:03d}@host-{number // 8:02d}' for number in range(count)]


def capture_replies(broker, log_dir):
    """What one real worker answers to each inspect method, and its host name."""
    import celery
    worker = CeleryWorker(broker, 'template@bench', concurrency=4, log_dir=log_dir)
    worker.start()
    try:
        worker.wait_ready(60)
        app = celery.Celery(broker=broker)
        inspect = app.control.inspect(timeout=5, destination=[worker.hostname])
        replies = {}
        for method in INSPECTED:
            answer = (inspect.conf(with_defaults=False) if method == 'conf'
                      else getattr(inspect, method)())
            replies[method] = (answer or {}).get(worker.hostname)
        return replies
    finally:
        worker.stop()


def answer_for(replies, method, name, number):
    """The reply of worker ``name`` to ``method``: the captured one, made its own."""
    if method == 'ping':
        return {'ok': 'pong'}
    if method not in replies:
        return {'error': f'No such command: {method}'}
    reply = replies[method]
    if method == 'stats':
        reply = dict(reply, pid=10000 + number)
    return reply


def answer_inspections(broker, names, replies, ready):
    """Answer every remote-control request addressed to ``names`` (or to every worker)
    as each of those workers would: one reply per worker."""
    import celery
    from kombu import Consumer
    app = celery.Celery(broker=broker)
    numbers = {name: number for number, name in enumerate(names)}
    with app.connection_for_write() as connection:
        mailbox = app.control.mailbox(connection)
        channel = connection.channel()

        def on_request(body, message):
            reply_to = body.get('reply_to')
            if not reply_to:
                return
            for name in body.get('destination') or names:
                if name in numbers:
                    answer = answer_for(replies, body['method'], name, numbers[name])
                    mailbox._publish_reply({name: answer}, reply_to['exchange'],
                                           reply_to['routing_key'], body.get('ticket'),
                                           channel=channel)

        queue = mailbox.get_queue('fleet-responder@bench')
        with Consumer(channel, [queue], callbacks=[on_request], no_ack=True, accept=['json']):
            ready.set()
            while True:
                connection.drain_events()


def wait_for_fleet(monitor, names, timeout):
    """Seconds until ``/api/workers?status=1`` shows every name online and ``/api/workers``
    holds every name's inspect replies."""
    started = time.monotonic()
    while True:
        try:
            status = json.loads(monitor.read('/api/workers?status=1'))
            inspected = json.loads(monitor.read('/api/workers'))
            if all(status.get(name) for name in names) and all(
                    name in inspected for name in names):
                return time.monotonic() - started
        except (OSError, ValueError):
            pass
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{monitor.name} did not see the whole fleet in {timeout} s")
        time.sleep(0.5)


def timed_refresh(monitor, path, count, spacing, timeout=REFRESH_TIMEOUT):
    """p50/p95 (ms) of ``count`` refreshes ``path``, ``spacing`` seconds apart, and the
    fewest workers whose replies one of them brought (``/api/workers`` timestamps); one
    taking over ``timeout`` seconds ends them."""
    samples, fresh = [], []
    try:
        for _ in range(count):
            before = time.time()
            samples.append(monitor.get(path, timeout=timeout))
            answer = json.loads(monitor.read('/api/workers'))
            fresh.append(sum(1 for info in answer.values()
                             if (info.get('timestamp') or 0) >= before))
            time.sleep(spacing)
    except urllib.error.HTTPError as exc:
        return {'error': f'HTTP {exc.code}'}
    except TimeoutError:
        return {'error': f'no answer in {timeout} s'}
    result = {key: round(value, 1) for key, value in harness.percentiles(samples).items()}
    return dict(result, fewest_workers_replied=min(fresh))


def measure(name, broker, names, args):
    timeout_ms = int(args.inspect_timeout * 1000)
    monitor = harness.Monitor(name, broker, args.max_tasks, args.log_dir,
                              extra_args=[f'--inspect_timeout={timeout_ms}'])
    publisher = harness.Publisher(broker, workers=names, buffer_limit=args.buffer)
    tasks = int(args.rate * args.seconds / 3)
    publishing = publisher.start(tasks, args.rate)
    result = {}
    try:
        # The inspection every monitor makes as it starts finds the fleet.
        result['seconds_until_fleet_seen'] = round(wait_for_fleet(monitor, names, 120), 1)
        base = monitor.task_events()
        cpu, started = monitor.cpu_seconds(), time.monotonic()
        samples = {label: [] for label in PAGES}
        for _ in range(args.requests):
            for label, path in PAGES.items():
                samples[label].append(monitor.get(path, timeout=120))
                time.sleep(args.spacing)
        for label in PAGES:
            result[label] = {key: round(value, 1) for key, value in
                             harness.percentiles(samples[label]).items()}
        elapsed = time.monotonic() - started
        result['events_applied_per_s'] = round((monitor.task_events() - base) / elapsed)
        result['cpu_percent'] = round(100 * (monitor.cpu_seconds() - cpu) / elapsed)
        timeout = getattr(args, 'refresh_timeout', REFRESH_TIMEOUT)
        result['refresh_every_worker'] = timed_refresh(monitor, '/api/workers?refresh=1',
                                                       args.refreshes, 0.5, timeout)
        result['refresh_one_worker'] = timed_refresh(
            monitor, f'/api/workers?refresh=1&workername={names[len(names) // 2]}',
            args.refreshes, 0.5, timeout)
        result['still_publishing'] = publishing.is_alive()
    finally:
        publishing.terminate()
        publishing.join()
        monitor.stop()
    return result


def report(results, args):
    print(f"\n{args.workers} workers, heartbeats every 2 s, {args.rate} task events/s sent "
          f"{args.buffer} at a time per worker, inspect_timeout {args.inspect_timeout} s; "
          f"milliseconds")
    names = list(results)
    rows = [row for label in PAGES for row in ((f'{PAGES[label]} p50', (label, 'p50')),
                                               (f'{PAGES[label]} p95', (label, 'p95')))]
    rows += [('/api/workers?refresh=1 p50', ('refresh_every_worker', 'p50')),
             ('/api/workers?refresh=1 p95', ('refresh_every_worker', 'p95')),
             ('  fewest workers replied to one', ('refresh_every_worker',
                                                  'fewest_workers_replied')),
             ('one worker, refresh=1 p50', ('refresh_one_worker', 'p50')),
             ('one worker, refresh=1 p95', ('refresh_one_worker', 'p95')),
             ('task events applied/s while timing', ('events_applied_per_s',)),
             ('monitor CPU % while timing', ('cpu_percent',))]
    width = max(len(label) for label, _ in rows)
    print(f"{'measure':{width}}" + ''.join(f'  {name:>13}' for name in names))
    for label, path in rows:
        cells = []
        for name in names:
            value = results[name]
            for key in path:
                value = value.get(key, 'n/a') if isinstance(value, dict) else 'n/a'
            cells.append(f'  {value!s:>13}')
        print(f'{label:{width}}' + ''.join(cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--workers', type=int, default=500)
    parser.add_argument('--rate', type=int, default=5000, help='task events/s')
    parser.add_argument('--buffer', type=int, default=24,
                        help="task events a worker sends at once (others go with its "
                             "heartbeat); 24 as in benchmarks/run.py")
    parser.add_argument('--requests', type=int, default=100, help='requests of each page')
    parser.add_argument('--spacing', type=float, default=0.05,
                        help='seconds between two requests')
    parser.add_argument('--refreshes', type=int, default=5,
                        help='refreshes of every worker, then of one, timed')
    parser.add_argument('--inspect-timeout', type=float, default=10.0,
                        help="the monitors' --inspect_timeout, in seconds")
    parser.add_argument('--seconds', type=int, default=600,
                        help='longest the publisher runs for each monitor')
    parser.add_argument('--monitors', default='ours',
                        help='comma separated, from benchmarks/run.py (ours, flower-2.2.0)')
    parser.add_argument('--max-tasks', type=int, default=100000)
    parser.add_argument('--output', default=os.path.join(HERE, 'fleet.json'))
    args = parser.parse_args()
    monitors = args.monitors.split(',')
    if 'flower-2.2.0' in monitors:
        harness.ensure_flower22()
    args.log_dir = os.path.join(HERE, 'logs')
    os.makedirs(args.log_dir, exist_ok=True)
    names = fleet_names(args.workers)
    redis = RedisServer(dir=args.log_dir)
    redis.start()
    results = {}
    responders = []
    try:
        broker = redis.url_for(1)
        replies = capture_replies(broker, args.log_dir)
        ready = multiprocessing.Event()
        responder = multiprocessing.Process(target=answer_inspections,
                                            args=(broker, names, replies, ready), daemon=True)
        responder.start()
        responders.append(responder)
        ready.wait(30)
        for name in monitors:
            print(f"{name} ...", flush=True)
            results[name] = measure(name, broker, names, args)
            print(json.dumps(results[name]), flush=True)
    finally:
        for responder in responders:
            responder.terminate()
        redis.stop()
    results['load_average'] = os.getloadavg()
    with open(args.output, 'w') as output:
        json.dump(results, output, indent=1)
    report({name: results[name] for name in monitors}, args)
    print(f"\nload average {results['load_average']}")


if __name__ == '__main__':
    main()
