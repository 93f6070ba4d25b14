"""End to end: real workers on a real Redis broker, seen through a running Flower."""
import json
import logging
import threading
import time

import pytest

from tests.support.waiting import wait_for


def task_snapshot(flower, task_id):
    """A plain copy of a task's fields, read on the IO loop thread (or None)."""
    def read():
        task = flower.app.events.state.tasks.get(task_id)
        if task is None:
            return None
        return {field: getattr(task, field) for field in (
            'name', 'args', 'kwargs', 'result', 'runtime', 'state', 'exception', 'traceback')} | {
            'worker': task.worker.hostname if task.worker else None}
    return flower.call(read)


def workers_json(flower):
    status, body = flower.get('/workers?json=1')
    assert status == 200
    return {row['hostname']: row for row in json.loads(body)['data']}


def test_a_finished_task_appears_with_all_its_fields(broker_url, worker_factory, celery_client,
                                                      flower_factory):
    flower = flower_factory(broker_url)
    worker = worker_factory(broker_url, pool='threads', concurrency=2)
    client = celery_client(broker_url)
    result = client.send_task('tasks.add', args=(2, 3), kwargs={})
    assert result.get(timeout=10) == 5

    task = wait_for(lambda: (t := task_snapshot(flower, result.id)) and t['state'] == 'SUCCESS'
                    and t, timeout=5, what='task SUCCESS in Flower state')
    assert task['name'] == 'tasks.add'
    assert task['args'] == '(2, 3)'
    assert task['kwargs'] == '{}'
    assert task['result'] == '5'
    assert task['runtime'] is not None and task['runtime'] >= 0
    assert task['worker'] == worker.hostname


def test_a_failing_task_shows_failure_with_exception_and_traceback(
        broker_url, worker_factory, celery_client, flower_factory):
    flower = flower_factory(broker_url)
    worker_factory(broker_url, pool='threads', concurrency=1)
    client = celery_client(broker_url)
    result = client.send_task('tasks.error', args=('kaboom',))
    with pytest.raises(Exception):
        result.get(timeout=10)

    task = wait_for(lambda: (t := task_snapshot(flower, result.id)) and t['state'] == 'FAILURE'
                    and t, timeout=5, what='task FAILURE in Flower state')
    assert task['name'] == 'tasks.error'
    assert 'ValueError' in task['exception'] and 'kaboom' in task['exception']
    assert 'Traceback' in task['traceback'] and 'kaboom' in task['traceback']


def test_workers_started_later_are_seen_and_stopped_ones_go_offline(
        broker_url, worker_factory, flower_factory):
    flower = flower_factory(broker_url)
    assert workers_json(flower) == {}
    worker = worker_factory(broker_url, pool='threads', concurrency=1)

    row = wait_for(lambda: workers_json(flower).get(worker.hostname), timeout=10,
                   what='worker started after Flower to be listed')
    assert row['status'] is True
    status, page = flower.get('/')
    assert worker.hostname in page and 'Online' in page

    worker.stop()
    wait_for(lambda: workers_json(flower)[worker.hostname]['status'] is False, timeout=10,
             what='stopped worker shown offline')
    status, page = flower.get('/')
    assert 'Offline' in page


def test_enable_events_makes_a_worker_started_without_events_visible(
        broker_url, worker_factory, celery_client, flower_factory, monkeypatch):
    from flower.events import Events
    monkeypatch.setattr(Events, 'events_enable_interval', 500)
    quiet = worker_factory(broker_url, pool='threads', concurrency=1, events=False)
    flower = flower_factory(broker_url)
    sent_before = flower.app.events.enable_events_sent
    wait_for(lambda: flower.app.events.enable_events_sent > sent_before + 1, timeout=10,
             what='enable_events sent to workers')
    # The quiet worker has heartbeats off, so only task events can reveal it.
    result = celery_client(broker_url).send_task('tasks.add', args=(1, 2))
    assert result.get(timeout=10) == 3
    task = wait_for(lambda: (t := task_snapshot(flower, result.id)) and t['state'] == 'SUCCESS'
                    and t, timeout=10, what='task events from the worker started without -E')
    assert task['worker'] == quiet.hostname


def test_without_enable_events_a_silent_worker_stays_unseen(
        broker_url, worker_factory, celery_client, flower_factory, monkeypatch):
    from flower.events import Events
    monkeypatch.setattr(Events, 'events_enable_interval', 500)
    flower = flower_factory(broker_url, enable_events=False)
    quiet = worker_factory(broker_url, pool='threads', concurrency=1, events=False,
                           queues=['quiet'])
    loud = worker_factory(broker_url, pool='threads', concurrency=1)
    wait_for(lambda: flower.call(lambda: loud.hostname in flower.app.events.state.workers),
             timeout=10, what='worker with -E seen')
    client = celery_client(broker_url)
    unseen = client.send_task('tasks.add', args=(1, 2), queue='quiet')
    assert unseen.get(timeout=10) == 3
    seen = client.send_task('tasks.add', args=(2, 2))
    assert seen.get(timeout=10) == 4
    wait_for(lambda: task_snapshot(flower, seen.id), timeout=10, what='task run by -E worker')
    time.sleep(1)
    assert flower.app.events.enable_events_sent == 0
    # The client's task-sent event arrives; nothing from the worker that ran it.
    assert task_snapshot(flower, unseen.id)['state'] == 'PENDING'
    assert task_snapshot(flower, unseen.id)['worker'] is None
    assert not flower.call(lambda: quiet.hostname in flower.app.events.state.workers)


def test_a_worker_without_heartbeats_answers_the_heartbeat_asked_for_once_subscribed(
        broker_url, worker_factory, flower_factory):
    """Once its subscription is up, Flower asks every worker for a heartbeat: a worker
    started before it, with heartbeats off but an event dispatcher on, is seen at once
    (asked before the subscription was up, its answer would be lost)."""
    quiet = worker_factory(broker_url, pool='threads', concurrency=1, events=False)
    flower = flower_factory(broker_url, enable_events=False)
    wait_for(lambda: flower.call(lambda: quiet.hostname in flower.app.events.state.workers),
             timeout=10, what='the quiet worker seen by its answer')
    assert flower.app.events.enable_events_sent == 0


class RecordingHandler(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_broker_outage_keeps_serving_logs_once_and_recovers(
        redis_server, worker_factory, celery_client, flower_factory):
    handler = RecordingHandler()
    events_logger = logging.getLogger('flower.events')
    events_logger.addHandler(handler)
    events_logger.setLevel(logging.INFO)
    try:
        flower = flower_factory(redis_server.url)
        worker = worker_factory(redis_server.url, pool='threads', concurrency=1)
        wait_for(lambda: workers_json(flower).get(worker.hostname), timeout=10,
                 what='worker listed before the outage')

        redis_server.stop()
        wait_for(lambda: not flower.app.events.broker_connected, timeout=10,
                 what='Flower noticing the outage')
        for _ in range(3):
            assert flower.get('/healthcheck') == (200, 'OK')
            status, page = flower.get('/')
            assert status == 200 and 'Broker unreachable' in page
            assert worker.hostname in page  # what Flower knew is still shown
            time.sleep(1)

        redis_server.start()
        wait_for(lambda: flower.app.events.broker_connected, timeout=30,
                 what='Flower reconnecting to the broker')
        worker.wait_ready(timeout=30)
        client = celery_client(redis_server.url)
        result = client.send_task('tasks.add', args=(20, 22))
        assert result.get(timeout=20) == 42
        wait_for(lambda: (t := task_snapshot(flower, result.id)) and t['state'] == 'SUCCESS',
                 timeout=10, what='task after the outage captured')
    finally:
        events_logger.removeHandler(handler)

    outage_warnings = [record for record in handler.records
                       if record.levelno >= logging.WARNING and 'unreachable' in record.getMessage()]
    assert len(outage_warnings) == 1, [r.getMessage() for r in outage_warnings]
    assert any('Reconnected' in record.getMessage() for record in handler.records)


def test_event_flood_is_applied_in_batches_without_starving_requests(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False)
    events = flower.app.events
    total = 60000
    batches = []
    original_apply = events._apply_pending

    def counting_apply():
        batches.append(len(events._pending))
        original_apply()

    events._apply_pending = counting_apply
    now = time.time()

    def flood():
        for index in range(total // 3):
            uuid = f'flood-{index}'
            common = {'uuid': uuid, 'hostname': 'flood@host', 'timestamp': now,
                      'local_received': now, 'clock': index}
            events.on_event(dict(common, type='task-received', name='tasks.flood',
                                 args='()', kwargs='{}'))
            events.on_event(dict(common, type='task-started'))
            events.on_event(dict(common, type='task-succeeded', result='1', runtime=0.001))

    producer = threading.Thread(target=flood)
    producer.start()
    wait_for(lambda: events.received_count > total // 4, timeout=30, what='flood under way')
    # No time limit of its own: a starved request is one answered only once the flood
    # is applied, which answered_while_pending catches however busy the machine is.
    status, body = flower.get('/healthcheck', timeout=60)
    answered_while_pending = events.applied_count < total
    producer.join()
    wait_for(lambda: events.applied_count == total, timeout=60, what='all events applied')

    assert (status, body) == (200, 'OK')
    assert answered_while_pending
    assert len(batches) < total / 100  # handed over in batches, not one callback per event
    assert events.received_count == events.applied_count == total
    counter = flower.call(lambda: dict(events.state.counter['flood@host']))
    assert counter == {'task-received': total // 3, 'task-started': total // 3,
                       'task-succeeded': total // 3}


def test_max_tasks_bounds_the_tasks_kept_in_memory(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False, max_tasks=50)
    events = flower.app.events
    now = time.time()
    for index in range(500):
        events.on_event({'type': 'task-received', 'uuid': f'bounded-{index}', 'name': 'tasks.x',
                         'hostname': 'w@host', 'timestamp': now, 'local_received': now,
                         'clock': index, 'args': '()', 'kwargs': '{}'})
    wait_for(lambda: events.applied_count == 500, what='events applied')
    kept = flower.call(lambda: list(events.state.tasks.keys()))
    assert len(kept) == 50
    assert 'bounded-499' in kept and 'bounded-0' not in kept


def test_max_workers_bounds_the_workers_kept_in_memory(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False, max_workers=5)
    events = flower.app.events
    now = time.time()
    for index in range(40):
        events.on_event({'type': 'worker-heartbeat', 'hostname': f'w{index}@host',
                         'timestamp': now, 'local_received': now, 'clock': index,
                         'freq': 2.0, 'active': 0, 'processed': 0})
    wait_for(lambda: events.applied_count == 40, what='events applied')
    kept = flower.call(lambda: list(events.state.workers.keys()))
    assert len(kept) == 5
    assert 'w39@host' in kept and 'w0@host' not in kept


def test_pushed_pubsub_messages_are_not_written_into_a_dropped_debug_line(broker_url, caplog):
    """redis-py's default handler of RESP3 pushes formats every whole message for a
    debug line its logger drops; capture hands messages on without it, and still
    writes the line when someone turns that logger's debug level on."""
    import celery

    from flower import capture

    app = celery.Celery(broker=broker_url)
    seen = []

    def on_events(events):
        channel = seen[-1][0]
        parser = channel.subclient.connection._parser
        seen[-1] = (channel, parser.pubsub_push_handler_func, events)
        if len(seen) == 1:
            caplog.set_level(logging.DEBUG, logger='push_response')

    done = threading.Event()

    def send():
        with app.connection_for_write() as connection:
            dispatcher = app.events.Dispatcher(connection, hostname='w@push', enabled=True)
            while not done.wait(0.1):
                dispatcher.send('worker-heartbeat', freq=2.0)

    with app.connection_for_read() as connection:
        receiver = capture.BatchEventReceiver(connection, on_events, app=app)
        original = receiver._on_message

        def on_message(message):
            seen.append((message.channel, None, None))
            original(message)

        receiver._on_message = on_message
        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 10
        try:
            for _ in receiver.consume(limit=None, timeout=10):
                if len(seen) >= 3 or time.monotonic() > deadline:
                    break
        finally:
            done.set()
            sender.join()
    seen = seen[:3]
    assert [handler for _, handler, _ in seen] == [capture.pushed_message] * 3
    assert [events[0]['hostname'] for _, _, events in seen] == ['w@push'] * 3
    debug_lines = [record.getMessage() for record in caplog.records
                   if record.name == 'push_response']
    assert len(debug_lines) >= 2 and debug_lines[0].startswith('Push response: [')
