"""Event capture counts: received, applied and dropped events are exact for a known
stream published through Celery's own event dispatcher to a real Redis, and a broker
that drops the subscription is noticed, counted and recovered from."""
import json
import logging
import subprocess
import sys
import threading
import time

import celery
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import REPO_DIR
from tests.support.publisher import Publisher, subscribed
from tests.support.waiting import wait_for


def ingest_metrics(flower):
    status, _, body = flower.fetch('/metrics')
    assert status == 200
    return {sample.name: sample.value for family in text_string_to_metric_families(body)
            if family.name.startswith('flower_ingest_') for sample in family.samples}


@pytest.fixture
def flower(broker_url, flower_factory):
    return flower_factory(broker_url, enable_events=False)


@pytest.fixture
def publisher(broker_url):
    publisher = Publisher(broker_url)
    yield publisher
    publisher.close()


def test_counts_are_exact_for_a_known_stream(flower, publisher):
    base = subscribed(flower, publisher)
    events = flower.app.events

    publisher.tasks('known', 1500)

    wait_for(lambda: events.applied_count == base + 3000, what='3000 events applied')
    assert ingest_metrics(flower) == {
        'flower_ingest_events_received_total': base + 3000,
        'flower_ingest_events_applied_total': base + 3000,
        'flower_ingest_events_dropped_total': 0,
        'flower_ingest_broker_disconnects_total': 0,
        'flower_ingest_pending_events': 0,
        'flower_ingest_lag_seconds': 0,
    }
    tasks = flower.app.events.state.tasks.data
    assert sum(1 for uuid in tasks if uuid.startswith('known-')) == 1500
    assert all(tasks[f'known-{number:05d}'].state == 'SUCCESS' for number in range(1500))


def test_a_full_backlog_drops_counts_and_logs_the_excess(flower, publisher, caplog):
    base = subscribed(flower, publisher)
    events = flower.app.events
    events.max_pending = 500
    release = threading.Event()
    flower.io_loop.add_callback(release.wait, 30)  # the IO loop is busy: nothing is applied

    with caplog.at_level(logging.WARNING, logger='flower.events'):
        publisher.tasks('burst', 750)  # 1500 events
        wait_for(lambda: events.received_count == base + 1500, what='1500 events received')
        during = events.ingest_stats()
        release.set()
        wait_for(lambda: events.applied_count == base + 500, what='the backlog applied')

    assert (during['pending'], during['dropped']) == (500, 1000)
    assert during['lag'] > 0
    metrics = ingest_metrics(flower)
    assert metrics['flower_ingest_events_received_total'] == base + 1500
    assert metrics['flower_ingest_events_applied_total'] == base + 500
    assert metrics['flower_ingest_events_dropped_total'] == 1000
    assert metrics['flower_ingest_pending_events'] == 0
    kept = [uuid for uuid in events.state.tasks.data if uuid.startswith('burst-')]
    assert kept == [f'burst-{number:05d}' for number in range(250)]  # the first 500 events
    assert [record.getMessage() for record in caplog.records
            if 'dropping new events' in record.getMessage()] == \
        ['500 events are waiting to be applied: dropping new events until the backlog halves '
         '(see flower_ingest_events_dropped)']


def test_a_dropped_subscription_is_logged_counted_and_recovered(
        redis_server, flower_factory, caplog):
    broker_url = redis_server.url_for(0)
    flower = flower_factory(broker_url, enable_events=False)
    publisher = Publisher(broker_url)
    try:
        subscribed(flower, publisher)
        events = flower.app.events
        with caplog.at_level(logging.WARNING, logger='flower.events'):
            # What Redis does to a subscriber past its pub/sub output buffer limit.
            killed = redis.Redis(port=redis_server.port).client_kill_filter(_type='pubsub')
            assert killed >= 1
            wait_for(lambda: events.broker_disconnects == 1, what='the disconnect noticed')
        assert ingest_metrics(flower)['flower_ingest_broker_disconnects_total'] == 1
        assert any('Lost the event subscription' in record.getMessage()
                   and 'client-output-buffer-limit' in record.getMessage()
                   for record in caplog.records)
        before = events.received_count

        def capturing_again():
            publisher.tasks('after', 1)
            return events.received_count > before

        wait_for(capturing_again, what='events captured after reconnecting')
    finally:
        publisher.close()


def hold_the_interpreter_lock(seconds):
    """Compute for ``seconds`` without releasing the GIL, as applying events does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_the_subscription_is_drained_while_a_backlog_keeps_the_io_loop_busy(
        redis_server, flower_factory):
    """Applying a backlog keeps the IO loop computing; the capture thread must still
    read the broker as fast as events come, or Redis drops the subscription and every
    event published meanwhile is lost."""
    # Redis's default limit on unread pub/sub output is 32 MB; a smaller one makes a
    # slow reader visible within a few seconds.
    redis.Redis(port=redis_server.port).config_set(
        'client-output-buffer-limit', 'pubsub 12mb 12mb 0')
    broker_url = redis_server.url_for(0)
    flower = flower_factory(broker_url, enable_events=False)
    publisher = Publisher(broker_url)
    try:
        base = subscribed(flower, publisher)
    finally:
        publisher.close()
    events = flower.app.events
    apply_event = events.state.event

    def slow_apply(event):
        hold_the_interpreter_lock(0.0002)
        return apply_event(event)

    events.state.event = slow_apply  # 5,000 events/s: far slower than the flood
    flood = subprocess.run(
        [sys.executable, '-m', 'tests.support.event_flood', broker_url, '30000', '1000'],
        cwd=REPO_DIR, capture_output=True, text=True, timeout=120, check=True)
    sent = int(flood.stdout)
    wait_for(lambda: events.received_count == base + sent or events.broker_disconnects,
             what='the flood received')
    backlog = events.ingest_stats()['pending']
    events.state.event = apply_event

    assert events.broker_disconnects == 0
    assert events.received_count == base + sent
    assert backlog > 0  # the IO loop was still busy when the last event was read
    wait_for(lambda: events.applied_count == base + sent, timeout=60, what='the flood applied')
    assert events.dropped_count == 0


def test_a_message_of_events_is_handed_on_as_one_batch_with_local_times():
    from celery.utils.time import utcoffset

    from flower.events import BatchEventReceiver
    app = celery.Celery(broker='memory://')
    batches = []
    receiver = BatchEventReceiver(app.connection(), batches.append, app=app)
    here = utcoffset()
    body = [
        dict(type='task-received', uuid='a', clock=7, timestamp=1000.0, utcoffset=here),
        dict(type='task-started', uuid='a', clock=9, timestamp=1001.0, utcoffset=here + 2),
        dict(type='task-sent', uuid='b', clock=3, timestamp=1002.0, utcoffset=here),
    ]

    before = time.time()
    receiver._receive(body)

    [batch] = batches
    assert [event['uuid'] for event in batch] == ['a', 'a', 'b']
    assert batch[0]['timestamp'] == 1000.0
    assert batch[1]['timestamp'] == 1001.0 - 2 * 3600  # sent from two hours east
    assert len({event['local_received'] for event in batch}) == 1
    assert batch[0]['local_received'] >= before
    assert batch[2]['clock'] < 9  # a client's clock is placed before the workers'
    assert receiver.clock.value >= 9


def test_messages_on_the_events_exchange_that_hold_no_events_are_dropped_and_capture_goes_on(
        flower, publisher, caplog):
    """Anyone who can publish on the broker can put anything on the events exchange."""
    base = subscribed(flower, publisher)
    events = flower.app.events
    dispatcher = publisher.dispatcher
    hostile = ['[' * 100_000 + ']' * 100_000, '42', '["not", "events"]', '{"unclosed": ',
               '\udcff'.encode('utf-8', 'surrogatepass')]
    with caplog.at_level(logging.WARNING, logger='flower.events'):
        for body in hostile:
            dispatcher.producer.publish(
                body, exchange=dispatcher.exchange, routing_key='task.received',
                content_type='application/json', content_encoding='utf-8', serializer=None)
        publisher.tasks('after', 3)
        wait_for(lambda: events.applied_count == base + 6, what='the events sent after them')
    assert events.undecodable_count == len(hostile)
    assert events.dropped_count == len(hostile)
    assert events.broker_disconnects == 0
    warnings = [record.getMessage() for record in caplog.records
                if 'holds no events' in record.getMessage()]
    assert len(warnings) == 1, warnings
    assert 'after-00002' in events.state.tasks


class SteppingClock:
    """``time`` for :mod:`flower.events` whose ``perf_counter`` moves on only when told."""

    def __init__(self):
        self.now = 0.0
        self.time = time.time
        self.monotonic = time.monotonic

    def perf_counter(self):
        return self.now


def test_events_are_applied_in_turns_of_bounded_duration(monkeypatch):
    """A backlog is applied a few milliseconds per IO loop turn, so requests waiting
    between two turns are served within that time whatever the backlog's size."""
    import types

    from tornado.ioloop import IOLoop

    import flower.events
    from flower.events import Events

    clock = SteppingClock()
    monkeypatch.setattr(flower.events, 'time', clock)
    events = Events(celery.Celery(broker='memory://'), IOLoop.current(), enable_events=False)
    scheduled = []
    events.io_loop = types.SimpleNamespace(add_callback=scheduled.append,
                                           call_later=lambda delay, callback: None)
    apply_event = events.state.event

    def slow_apply(event):
        clock.now += 0.001  # each event takes a millisecond
        return apply_event(event)

    events.state.event = slow_apply
    events.on_events([dict(type='task-received', uuid=f'u{number}', name='tasks.add',
                           hostname='w@h', timestamp=1.0, local_received=1.0, clock=number)
                      for number in range(1000)])
    scheduled.clear()

    events._apply_pending()

    turn = events.applied_count
    assert 0 < turn <= events.batch_seconds * 1000 + 32
    assert len(events._pending) == 1000 - turn
    assert scheduled == [events._apply_pending], "the rest is left to the next turns"
    while events._pending:
        events._apply_pending()
    assert events.applied_count == 1000


def test_a_steady_trickle_wakes_the_loop_once_per_gathering_not_per_message():
    """Messages arriving while events flow gather for ``gather_seconds`` and are applied
    by one timed turn; a turn that finds nothing ends the gathering, and the next message
    wakes the loop at once again. No event is left waiting without a turn scheduled."""
    import types

    from tornado.ioloop import IOLoop

    from flower.events import Events

    events = Events(celery.Celery(broker='memory://'), IOLoop.current(), enable_events=False)
    woken, timed = [], []
    events.io_loop = types.SimpleNamespace(
        add_callback=woken.append,
        call_later=lambda delay, callback: timed.append((delay, callback)))

    def message(first):
        events.on_events([dict(type='task-received', uuid=f'u{number}', name='tasks.add',
                               hostname='w@h', timestamp=1.0, local_received=1.0, clock=number)
                          for number in range(first, first + 3)])

    message(0)
    assert woken == [events._apply_pending], "the first message after a quiet moment wakes it"
    woken.pop()()
    assert events.applied_count == 3
    assert timed == [(events.gather_seconds, events._apply_pending)]
    message(3)
    message(6)
    assert woken == [], "while gathering, messages do not wake the loop"
    timed.pop()[1]()
    assert events.applied_count == 9
    assert len(timed) == 1 and woken == []
    timed.pop()[1]()  # nothing came: the gathering ends
    assert timed == [] and woken == [] and not events._drain_scheduled
    message(9)
    assert woken == [events._apply_pending]
    woken.pop()()
    assert events.applied_count == 12 and not events._pending


@pytest.mark.parametrize('body', [
    '[{"type": "task-succeeded", "uuid": "a", "result": "ok", "runtime": 0.5}]',
    '{"type": "task-failed", "uuid": "b", "exception": "\\u00e9t\\u00e9 \\ud83d\\ude00"}',
    '{"type": "task-succeeded", "uuid": "c", "runtime": NaN}',  # not strict JSON
    '{"type": "task-received", "uuid": "d", "eta": 123456789012345678901234567890}',
    '{"type": "task-received", "uuid": "e", "args": "\\ud800"}',  # a lone surrogate
], ids=['list', 'unicode', 'nan', 'big-integer', 'lone-surrogate'])
def test_event_bodies_decode_as_the_standard_library_reads_them(body):
    """The fast decoder gives what Python's json gives; what it refuses goes to kombu."""
    import math

    from flower.capture import BatchEventReceiver
    app = celery.Celery(broker='memory://')
    receiver = BatchEventReceiver(app.connection(), lambda events: None, app=app)

    decoded = receiver._decode(body.encode('utf-8'), 'application/json', 'utf-8')

    expected = json.loads(body)
    if body.count('NaN'):
        assert math.isnan(decoded['runtime'])
        decoded['runtime'] = expected['runtime'] = 0
    assert decoded == expected
