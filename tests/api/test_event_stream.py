"""``GET /api/events``: the task and worker changes as Server-Sent Events.

Events come from a real worker, or from Celery's own event dispatcher over a
real Redis when a test needs an exact, known stream.
"""
import base64
import subprocess
import sys
import time

import pytest

from flower.api.stream import EventStream
from tests.support.processes import REPO_DIR
from tests.support.publisher import Publisher, subscribed
from tests.support.sse import SseClient
from tests.support.waiting import wait_for


@pytest.fixture
def publisher(broker_url):
    publisher = Publisher(broker_url)
    yield publisher
    publisher.close()


@pytest.fixture
def stream(request):
    opened = []

    def connect(flower, path='/api/events', headers=None):
        client = SseClient(flower.options.port, path, headers=headers)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


def task_events(messages, prefix=''):
    return [(message['event'], message['data']['task-id']) for message in messages
            if message['event'].startswith('task-')
            and message['data']['task-id'].startswith(prefix)]


def test_a_real_workers_task_streams_received_started_succeeded(
        broker_url, flower_factory, worker_factory, celery_client, stream):
    worker = worker_factory(broker_url, pool='threads', concurrency=1)
    flower = flower_factory(broker_url)
    wait_for(lambda: worker.hostname in flower.app.events.state.workers, timeout=30,
             what='the worker seen through its events')
    client = stream(flower)
    assert client.status == 200
    assert client.headers['content-type'].startswith('text/event-stream')

    result = celery_client(broker_url).send_task('tasks.add', (2, 40))
    messages = client.events_until(
        lambda m: m['event'] == 'task-succeeded' and m['data']['task-id'] == result.id)
    mine = [m for m in messages if m['event'].startswith('task-')
            and m['data']['task-id'] == result.id]
    # The client's task-sent event comes on a connection of its own: on a busy machine it
    # may arrive after the worker's first events. The worker's come in order.
    assert [m['event'] for m in mine if m['event'] != 'task-sent'] == [
        'task-received', 'task-started', 'task-succeeded']
    done = mine[-1]['data']
    assert (done['state'], done['result'], done['name'], done['worker']) == (
        'SUCCESS', '42', 'tasks.add', worker.hostname)
    ids = [m['id'] for m in messages]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    # The worker's own events carry its dashboard row.
    heartbeat = client.events_until(lambda m: m['event'] == 'worker-heartbeat', timeout=10)[-1]
    assert heartbeat['data']['hostname'] == worker.hostname
    assert heartbeat['data']['status'] is True


def test_a_worker_that_dies_without_a_goodbye_is_streamed_offline(
        broker_url, flower_factory, worker_factory, stream):
    worker = worker_factory(broker_url, pool='solo')
    flower = flower_factory(broker_url)
    client = stream(flower, '/api/events?types=worker-heartbeat,worker-offline')
    client.events_until(lambda m: m['data']['hostname'] == worker.hostname, timeout=30)

    worker.kill()  # no worker-offline of its own: its heartbeats stop
    offline = client.events_until(lambda m: m['event'] == 'worker-offline', timeout=30)[-1]
    assert offline['data']['hostname'] == worker.hostname
    assert offline['data']['status'] is False
    with pytest.raises(TimeoutError):  # said once
        client.events_until(lambda m: m['event'] == 'worker-offline', timeout=5)


def test_filters_are_those_of_api_tasks(broker_url, flower_factory, publisher, stream):
    flower = flower_factory(broker_url, enable_events=False)
    subscribed(flower, publisher)
    by_name = stream(flower, '/api/events?taskname=tasks.mul')
    by_search = stream(flower, '/api/events?search=state:FAILURE')
    everything = stream(flower)

    publisher.tasks('plain', 2)  # tasks.add, succeeded
    publisher.dispatcher.send('task-received', uuid='mul-1', name='tasks.mul', args='(2, 3)',
                              kwargs='{}', retries=0)
    publisher.dispatcher.send('task-failed', uuid='bad-1', exception="ValueError('x')",
                              traceback='Traceback', name='tasks.add')
    publisher.dispatcher.send('task-succeeded', uuid='mul-1', result='6', runtime=0.1)
    publisher.dispatcher.flush()

    assert task_events(by_name.events_until(
        lambda m: m['event'] == 'task-succeeded')) == [
        ('task-received', 'mul-1'), ('task-succeeded', 'mul-1')]
    assert task_events(by_search.events_until(lambda m: m['event'] == 'task-failed')) == [
        ('task-failed', 'bad-1')]
    seen = everything.events_until(lambda m: m['data'].get('task-id') == 'mul-1'
                                   and m['event'] == 'task-succeeded')
    assert task_events(seen, 'plain-') == [
        ('task-received', 'plain-00000'), ('task-succeeded', 'plain-00000'),
        ('task-received', 'plain-00001'), ('task-succeeded', 'plain-00001')]


def test_task_id_follows_one_task_and_its_children_and_types_keep_some_events(
        broker_url, flower_factory, publisher, stream):
    flower = flower_factory(broker_url, enable_events=False)
    subscribed(flower, publisher)
    family = stream(flower, '/api/events?task_id=parent-1')
    outcomes = stream(flower, '/api/events?types=task-failed,worker-heartbeat')
    send = publisher.dispatcher.send

    send('task-received', uuid='parent-1', name='worker_only.spawn', args='()', kwargs='{}')
    send('task-received', uuid='other-1', name='tasks.add', args='(1, 1)', kwargs='{}')
    send('task-received', uuid='child-1', name='tasks.add', args='(1, 1)', kwargs='{}',
         parent_id='parent-1', root_id='parent-1')
    send('task-failed', uuid='other-1', exception="ValueError('x')", traceback='Traceback')
    send('task-succeeded', uuid='parent-1', result="'child-1'", runtime=0.1)
    publisher.dispatcher.flush()

    followed = family.events_until(lambda m: m['event'] == 'task-succeeded')
    assert [(m['event'], m['data']['task-id']) for m in followed] == [
        ('task-received', 'parent-1'), ('task-received', 'child-1'),
        ('task-succeeded', 'parent-1')]
    assert followed[-1]['data']['children'] == ['child-1']
    assert not [m for m in followed if m['event'].startswith('worker-')]
    failed = outcomes.events_until(lambda m: m['event'] == 'task-failed')
    assert [(m['event'], m['data'].get('task-id')) for m in failed] == [('task-failed', 'other-1')]


@pytest.mark.parametrize('types', ['task-failed,bogus', 'heartbeat', ','])
def test_types_that_are_not_event_types_are_a_400(broker_url, flower_factory, stream, types):
    flower = flower_factory(broker_url, enable_events=False)
    answer = stream(flower, f'/api/events?types={types}')
    assert answer.status == 400
    assert "'types'" in answer.read_rest()


def test_the_pages_stream_stays_open_to_a_read_only_flower(broker_url, flower_factory, stream):
    flower = flower_factory(broker_url, enable_events=False, read_only=True)
    assert stream(flower, '/tasks/live?types=worker-heartbeat').status == 200


def test_a_client_reconnecting_with_last_event_id_gets_exactly_what_it_missed(
        broker_url, flower_factory, publisher, stream):
    flower = flower_factory(broker_url, enable_events=False)
    subscribed(flower, publisher)
    first = stream(flower)
    publisher.tasks('before', 3)
    before = first.events_until(lambda m: m['data'].get('task-id') == 'before-00002'
                                and m['event'] == 'task-succeeded')
    last_id = before[-1]['id']
    first.close()

    publisher.tasks('missed', 5)
    feed = flower.app.events.changes
    wait_for(lambda: feed.last_id >= last_id + 10, what='the missed events applied')
    expected = list(range(last_id + 1, feed.last_id + 1))

    again = stream(flower, headers={'Last-Event-ID': str(last_id)})
    replayed = [again.next_event() for _ in expected]
    assert [m['id'] for m in replayed] == expected
    assert task_events(replayed) == [
        (kind, f'missed-{number:05d}') for number in range(5)
        for kind in ('task-received', 'task-succeeded')]


def test_a_client_too_far_behind_gets_reset(broker_url, flower_factory, publisher, stream):
    flower = flower_factory(broker_url, enable_events=False, stream_buffer=20)
    base = subscribed(flower, publisher)
    publisher.tasks('flood', 30)
    events = flower.app.events
    wait_for(lambda: events.applied_count == events.received_count == base + 60,
             what='the 60 flood events applied')
    client = stream(flower, headers={'Last-Event-ID': '1'})
    reset = client.next_event()
    assert reset['event'] == 'reset'
    assert reset['data'] == {'last_id': flower.app.events.changes.last_id}
    publisher.tasks('after', 1)
    assert task_events(client.events_until(lambda m: m['event'] == 'task-succeeded')) == [
        ('task-received', 'after-00000'), ('task-succeeded', 'after-00000')]


def test_a_client_that_stops_reading_is_told_it_lagged_and_ingest_keeps_up(
        broker_url, flower_factory, stream):
    flower = flower_factory(broker_url, enable_events=False, stream_buffer=200)
    events = flower.app.events
    publisher = Publisher(broker_url)
    try:
        subscribed(flower, publisher)
    finally:
        publisher.close()
    slow = stream(flower)  # and then it reads nothing for a while

    flood = subprocess.run(
        [sys.executable, '-m', 'tests.support.event_flood', broker_url, '6000', '2000'],
        cwd=REPO_DIR, capture_output=True, text=True, timeout=120, check=True)
    sent = int(flood.stdout)
    wait_for(lambda: events.applied_count - events.received_count == 0
             and events.received_count >= sent, timeout=60, what='every flood event applied')
    assert events.dropped_count == 0
    status, _, body = flower.fetch('/healthcheck')
    assert (status, body) == (200, 'OK')

    messages = slow.events_until(lambda m: m['event'] == 'lagged', timeout=60)
    skipped = messages[-1]['data']['skipped']
    assert skipped > 0
    # It goes on right after what it skipped: no change is sent twice, none is lost silently.
    last_before = max([m['id'] for m in messages[:-1]], default=0)
    after = slow.next_event()
    assert after['id'] == last_before + skipped + 1


def test_heartbeat_comments_keep_an_idle_stream_open(broker_url, flower_factory, stream,
                                                      monkeypatch):
    monkeypatch.setattr(EventStream, 'heartbeat_seconds', 0.2)
    flower = flower_factory(broker_url, enable_events=False)
    client = stream(flower, '/api/events?taskname=nothing.matches')
    with pytest.raises(TimeoutError):
        client.next_event(timeout=1.0)
    assert client.comments[0] == 'connected'
    assert client.comments.count('heartbeat') >= 2


def test_bad_last_event_id_is_a_400_and_the_stream_needs_the_apis_authentication(
        broker_url, flower_factory, stream, monkeypatch):
    open_flower = flower_factory(broker_url, enable_events=False)
    bad = stream(open_flower, headers={'Last-Event-ID': 'yesterday'})
    assert bad.status == 400
    assert 'Last-Event-ID' in bad.read_rest()

    monkeypatch.delenv('FLOWER_UNAUTHENTICATED_API')
    guarded = flower_factory(broker_url, enable_events=False, read_only=True,
                             basic_auth=['viewer:s3cret'])
    assert stream(guarded).status == 401
    token = base64.b64encode(b'viewer:s3cret').decode()
    reader = stream(guarded, headers={'Authorization': f'Basic {token}'})
    assert reader.status == 200  # read-only users may subscribe
    time.sleep(0.1)
