"""A listing larger than one chunk: ``/api/tasks`` writes it piece by piece, and the
pieces make one JSON object with every task, in order."""
import json

import pytest
from celery.events import Event

T0 = 1_714_564_800.0
COUNT = 1234  # several chunks of ListTasks.chunk_size


@pytest.fixture(scope='module')
def flower(session_redis):
    from tests.support.flower import FlowerServer
    server = FlowerServer(session_redis.url_for(15), enable_events=False).start()
    yield server
    server.stop()


def feed(state, first, count):
    for number in range(first, first + count):
        uuid = f'task-{number:05d}'
        state.event(Event('task-received', uuid=uuid, hostname='w@h', timestamp=T0 + number,
                          local_received=T0 + number, clock=number, name='tasks.add',
                          args=f'({number},)', kwargs='{}', retries=0))


def test_a_large_listing_is_one_json_object_in_order(flower, monkeypatch):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    flower.call(feed, flower.app.events.state, 0, COUNT)

    status, headers, body = flower.fetch('/api/tasks')

    assert status == 200 and headers['Content-Type'].startswith('application/json')
    tasks = json.loads(body)
    assert list(tasks) == [f'task-{number:05d}' for number in reversed(range(COUNT))]
    assert tasks['task-00007']['args'] == '(7,)'
    status, _, body = flower.fetch('/api/tasks?taskname=tasks.nothing')
    assert (status, json.loads(body)) == (200, {})

