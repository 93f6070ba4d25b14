"""The keys of a task in ``/api/tasks`` and ``/api/task/info``: Flower 2.2's, whatever
the task's state (tests/test_flower22_parity.py compares with a running Flower 2.2)."""
import json

import pytest
from celery.events import Event

#: Every key Flower 2.2 gives a task, in both answers (seen on a running Flower 2.2.0).
FLOWER22_TASK_KEYS = {
    'args', 'children', 'client', 'clock', 'eta', 'exception', 'exchange', 'expires', 'failed',
    'kwargs', 'name', 'parent', 'parent_id', 'received', 'rejected', 'result', 'retried',
    'retries', 'revoked', 'root', 'root_id', 'routing_key', 'runtime', 'sent', 'started', 'state',
    'succeeded', 'timestamp', 'traceback', 'uuid', 'worker',
}
T0 = 1_700_000_000.0

#: Per task, the events that bring it to its state (after a task-received).
LIVES = {
    'received-only': [],
    'started': ['started'],
    'succeeded': ['started', ('succeeded', {'result': '3', 'runtime': 0.5})],
    'failed': ['started', ('failed', {'exception': "ValueError('x')", 'traceback': 'tb'})],
    'retried': ['started', ('retried', {'exception': "RuntimeError('again')", 'traceback': 'tb'})],
    'revoked': [('revoked', {'terminated': False, 'expired': False})],
    # What a worker sends for a task raising Reject(requeue=False): it failed, then rejected.
    'rejected': ['started', ('failed', {'exception': "Reject('no')", 'traceback': None}),
                 ('rejected', {'requeue': False})],
}
STATES = {'received-only': 'RECEIVED', 'started': 'STARTED', 'succeeded': 'SUCCESS',
          'failed': 'FAILURE', 'retried': 'RETRY', 'revoked': 'REVOKED', 'rejected': 'FAILURE'}


def feed(state):
    clock = 0
    for uuid, life in LIVES.items():
        received = {'name': 'tasks.add', 'args': '(1, 2)', 'kwargs': '{}', 'retries': 0,
                    'root_id': 'root-task', 'parent_id': 'parent-task'}
        for step in [('received', received), *life]:
            kind, fields = step if isinstance(step, tuple) else (step, {})
            clock += 1
            state.event(Event(f'task-{kind}', uuid=uuid, hostname='w@h', timestamp=T0 + clock,
                              local_received=T0 + clock, clock=clock, **fields))


@pytest.fixture(scope='module')
def flower(broker_url_for_module, flower_factory_for_module):
    server = flower_factory_for_module(broker_url_for_module, enable_events=False)
    server.call(feed, server.app.events.state)
    return server


@pytest.fixture(scope='module')
def broker_url_for_module(session_redis):
    return session_redis.url_for(15)


@pytest.fixture(scope='module')
def flower_factory_for_module():
    from tests.support.flower import FlowerServer
    servers = []

    def start(broker_url, **options):
        servers.append(FlowerServer(broker_url, **options).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def get(flower, path):
    status, body = flower.get(path)
    assert status == 200, body
    return json.loads(body)


def test_listed_tasks_have_flower22s_keys_in_every_state(flower):
    listed = get(flower, '/api/tasks')

    assert set(listed) == set(LIVES)
    for uuid, task in listed.items():
        assert set(task) == FLOWER22_TASK_KEYS, uuid
        assert task['state'] == STATES[uuid]


@pytest.mark.parametrize('uuid', list(LIVES))
def test_task_info_has_flower22s_keys_and_its_id_as_uuid(flower, uuid):
    info = get(flower, f'/api/task/info/{uuid}')

    assert set(info) == FLOWER22_TASK_KEYS
    assert info['uuid'] == uuid and info['state'] == STATES[uuid]
    assert (info['parent'], info['root']) == ('parent-task', 'root-task')
    assert (info['parent_id'], info['root_id']) == ('parent-task', 'root-task')


def test_a_rejected_task_says_when(flower):
    info = get(flower, '/api/task/info/rejected')

    assert info['rejected'] is not None and info['rejected'] == info['timestamp']
    assert get(flower, '/api/task/info/succeeded')['rejected'] is None
