#!/usr/bin/env python
"""The CPU flower spends per task event, in one process, without a broker.

    .venv/bin/python benchmarks/ingest_cpu.py                    # µs per event, best of 5
    .venv/bin/python benchmarks/ingest_cpu.py --stage decoded    # the IO loop's share only
    valgrind --tool=callgrind .venv/bin/python benchmarks/ingest_cpu.py --repeat 1 [--dry]

The event stream is ``benchmarks/run.py``'s (20 workers, task events in
batches of 24 as prefork workers send them, a heartbeat from each worker
every 10,000 task events, two seconds' worth at 5,000 events/s), published through Celery's own dispatcher into
kombu's in-memory transport, then taken out as the message envelopes Redis
would deliver. Each repetition replays them into a fresh
:class:`flower.events.Events`, by the path a message takes after kombu's
Redis transport has read it (the ``encoded`` stage: kombu's envelope
decoding, :class:`kombu.Message`, :class:`flower.capture.BatchEventReceiver`),
by the path of a message flower reads off a Redis subscription itself (the
``redis`` stage, :mod:`flower.capture_redis`), or hands the decoded event
lists straight to ``Events.on_events`` (the ``decoded`` stage). Either way the IO loop's batch (state, task index,
metrics, change feed) runs after every message, as it does at a few
thousand events per second. What the Redis client does with the socket is
not included: ``benchmarks/run.py`` measures the whole process.

``--dry`` builds everything and replays nothing, so that under callgrind the
instructions of the replay are those of a run less those of a dry run.
"""
import argparse
import base64
import gc
import json
import os
import queue
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import celery  # noqa: E402
from kombu import Connection, Consumer, Exchange, Queue  # noqa: E402
from kombu.utils.json import loads  # noqa: E402

from benchmarks.run import WORKERS, task_events  # noqa: E402
from flower.capture import BatchEventReceiver  # noqa: E402
from flower.command import GC_THRESHOLDS  # noqa: E402
from flower.events import Events  # noqa: E402
from flower.metrics import PrometheusMetrics  # noqa: E402


class ManualLoop:
    """Stands in for the IO loop: callbacks wait until :meth:`run_callbacks`, which runs
    once a message; a timed callback waits as many messages as come in its delay at
    5,000 events/s (a message of 24 events every 4.8 ms)."""

    seconds_per_message = 24 / 5000

    def __init__(self):
        self.callbacks = []
        self.timed = []  # (message number it is due at, callback)
        self.messages = 0

    def add_callback(self, callback, *args):
        self.callbacks.append((callback, args))

    def call_later(self, delay, callback, *args):
        due = self.messages + max(1, round(delay / self.seconds_per_message))
        self.timed.append((due, callback, args))

    def finish(self):
        """Run what is still waiting, timed or not (the replay's end)."""
        while self.callbacks or self.timed:
            self.messages = max([self.messages] + [at for at, _, _ in self.timed])
            self.run_callbacks()

    def run_callbacks(self):
        self.messages += 1
        due = [(callback, args) for at, callback, args in self.timed if at <= self.messages]
        self.timed = [entry for entry in self.timed if entry[0] > self.messages]
        callbacks, self.callbacks = self.callbacks + due, []
        for callback, args in callbacks:
            callback(*args)


def envelopes(tasks):
    """The message envelopes (JSON text, as Redis delivers them) of ``tasks`` tasks."""
    connection = Connection('memory://', transport_options={'polling_interval': 0})
    channel = connection.channel()
    bound = Queue('ingest-cpu', Exchange('celeryev', type='topic'), routing_key='#',
                  channel=channel)
    bound.declare()
    app = celery.Celery(broker='memory://', set_as_current=False)
    dispatchers = {worker: app.events.Dispatcher(connection, hostname=worker, enabled=True,
                                                 buffer_group=['task'], buffer_limit=24)
                   for worker in WORKERS}
    texts = []

    def take():
        while True:
            try:
                message = channel._get('ingest-cpu')  # the raw envelope
            except queue.Empty:
                return
            texts.append(json.dumps(message))

    for number in range(tasks):
        for worker, event_type, fields in task_events(number):
            dispatchers[worker].send(event_type, **fields)
        if number % 3333 == 0:
            for worker, dispatcher in dispatchers.items():
                dispatcher.flush()
                dispatcher.send('worker-heartbeat', freq=2.0, active=4, processed=number,
                                loadavg=[0.5, 0.4, 0.3], sw_ident='py-celery',
                                sw_ver='5.4.0', sw_sys='Linux')
        take()
    for dispatcher in dispatchers.values():
        dispatcher.flush()
    take()
    connection.close()
    return texts


class Replay:
    """A fresh capture (receiver, queue, state) fed the envelopes of one run."""

    def __init__(self, app):
        self.loop = ManualLoop()
        self.events = Events(app, self.loop, enable_events=False,
                             max_tasks_in_memory=1_000_000, metrics=PrometheusMetrics())
        self.connection = Connection('memory://')
        self.receiver = BatchEventReceiver(self.connection, self.events.on_events, app=app,
                                           on_undecodable=self.events._on_undecodable)
        channel = self.connection.default_channel
        self.consumer = Consumer(channel, queues=[self.receiver.queue],
                                 on_message=self.receiver._on_message, no_ack=True,
                                 accept=self.receiver.accept)
        self.consumer.consume()
        self.transport = channel.connection
        self.queue = self.receiver.queue.name

    def encoded(self, texts):
        """Each envelope as the Redis transport hands it on, then the IO loop's turn."""
        deliver, queue = self.transport._deliver, self.queue
        for number, text in enumerate(texts):
            deliver(loads(text), queue)
            self.turn(number)

    def redis(self, texts):
        """Each envelope as the capture reads it off a Redis subscription
        (``BatchEventReceiver.on_payload``), then the IO loop's turn."""
        on_payload = self.receiver.on_payload
        for number, text in enumerate(texts):
            on_payload(text.encode())
            self.turn(number)

    def decoded(self, batches):
        on_events = self.events.on_events
        for number, batch in enumerate(batches):
            on_events(batch)
            self.turn(number)

    def turn(self, number):
        """The IO loop's turn after a message, and its periodic ``gc.freeze()`` (see
        :func:`flower.command.tune_process`): every 5 s, about 1,000 messages at
        5,000 events/s."""
        self.loop.run_callbacks()
        if number % 1000 == 999:
            gc.freeze()

    def close(self):
        self.consumer.cancel()
        self.connection.close()


def decoded_batches(texts):
    """The event lists of the envelopes, with the fields the receiver adds."""
    batches = []
    for text in texts:
        body = json.loads(text)['body']
        events = json.loads(base64.b64decode(body))
        events = events if isinstance(events, list) else [events]
        arrived = max(event['timestamp'] for event in events)  # all at once, as received
        for event in events:
            event['local_received'] = arrived
        batches.append(events)
    return batches


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tasks', type=int, default=20000, help='tasks (3 events each)')
    parser.add_argument('--stage', choices=('encoded', 'redis', 'decoded'), default='encoded')
    parser.add_argument('--repeat', type=int, default=5, help='runs; the fastest is reported')
    parser.add_argument('--dry', action='store_true', help='build everything, replay nothing')
    args = parser.parse_args()
    gc.set_threshold(*GC_THRESHOLDS)  # as flower.command.tune_process() sets them
    app = celery.Celery(broker='memory://', set_as_current=False)
    texts = envelopes(args.tasks)
    task_event_count = 3 * args.tasks
    timings = []
    for _ in range(args.repeat):
        replay = Replay(app)
        work = json.loads(json.dumps(decoded_batches(texts))) if args.stage == 'decoded' else texts
        gc.collect()
        gc.freeze()
        started = time.process_time()
        if not args.dry:
            getattr(replay, args.stage)(work)
            replay.loop.finish()
        timings.append(time.process_time() - started)
        applied = replay.events.applied_count
        replay.close()
    best = min(timings)
    print(json.dumps({'stage': args.stage, 'messages': len(texts), 'task_events': task_event_count,
                      'events_applied': applied,
                      'us_per_task_event': round(best / task_event_count * 1e6, 2),
                      'runs_s': [round(timing, 3) for timing in timings]}))


if __name__ == '__main__':
    main()
