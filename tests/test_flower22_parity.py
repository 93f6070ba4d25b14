"""Our HTTP API next to Flower 2.2.0's, on one cluster: same requests, same answers.

One private Redis, two real workers (``p1``: prefork, ``p2``: threads, which
refuses pool resizing), our flower and a Flower 2.2.0 (installed in a venv of
its own by :mod:`tests.support.flower22`), both started as users start them
with ``-A tasks`` and the API open. Tasks are brought to every state first
(received only, started, succeeded, failed, retried, revoked, rejected, a
parent and its child); then every endpoint of docs/api.rst is asked the same
thing of both, and the JSON answers are compared: the same keys, recursively,
and the same types; values too where they do not depend on when they were
read.

Where we differ on purpose, the tests assert our documented behaviour:

====================================== ============================= ==============================
Case                                   Flower 2.2.0                  flower
====================================== ============================= ==============================
Body of an error                       The message as plain text     ``{"error": message}`` (JSON)
Worker refused a command               ``Failed to grow 'w' ...:``   ``Worker 'w' refused
                                       and the worker's message      'pool_grow':`` and the
                                                                     worker's message
Rate or time limit of a task the       ``Unknown task 'x'``          ``Unknown task 'x' (worker
worker does not have (404)                                           'w' answered: unknown task)``
``/api/workers?refresh=1`` with the    ``200``, the cached replies   ``503`` saying why
broker down
``/api/queues/length``, broker down    ``500``, empty body           ``503`` saying why
A URL's password in ``conf``           ``********``                  ``****``
Remote control with the broker down    ``503`` or ``500``            ``503`` saying why
Shut down a worker that is gone        ``200`` "Shutting down!"      ``503``: it did not answer
                                                                     the ping sent first
``/api/tasks`` order by default        Latest event first            Newest task first (pages stay
                                                                     stable as tasks progress)
Tasks with equal ``sort_by`` values    By id                         Newest first
``sort_by`` other than ``name``,       ``400``                       Sorted by that field
``received``, ``started``, ``state``
====================================== ============================= ==============================
"""
import json
import os
import signal
import sys
import time
import uuid

import pytest
import requests

from tests.support.api_cluster import Cluster
from tests.support.command import FlowerProcess
from tests.support.flower22 import launch_flower22
from tests.support.processes import EXAMPLES_DIR, REPO_DIR, free_port
from tests.support.waiting import wait_for

LOG_DIR = os.path.join(REPO_DIR, 'test-artifacts', 'flower22-parity')
#: Options both flowers get.
FLOWER_OPTIONS = ('--inspect_timeout=1500',)
P1, P2 = 'p1@parity', 'p2@parity'
TASK_LISTS = {'active', 'reserved', 'revoked', 'scheduled'}


class Flowers:
    """The cluster, both flowers, and the ids of the tasks made for the comparison."""

    def __init__(self, cluster, ours, theirs):
        self.cluster = cluster
        self.ours = ours
        self.theirs = theirs
        self.ids = {}
        self.session = requests.Session()

    def ask(self, flower, method, path, **kwargs):
        """``(status, JSON or text body)`` of one request to one flower."""
        response = self.session.request(method, f'http://127.0.0.1:{flower.port}{path}',
                                        timeout=60, **kwargs)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def both(self, method, path, **kwargs):
        """``((our status, our body), (Flower's status, Flower's body))``."""
        return (self.ask(self.ours, method, path, **kwargs),
                self.ask(self.theirs, method, path, **kwargs))


def start_ours(broker_url):
    port = free_port()
    argv = [sys.executable, '-m', 'celery', '-A', 'tasks', '--workdir', EXAMPLES_DIR, 'flower',
            f'--port={port}', '--address=127.0.0.1', *FLOWER_OPTIONS]
    process = FlowerProcess(argv, os.path.join(LOG_DIR, 'ours.log'), env={
        'FLOWER_UNAUTHENTICATED_API': 'true', 'CELERY_BROKER_URL': broker_url,
        'PYTHONPATH': REPO_DIR})
    process.port = port
    process.wait_http(port)
    return process


def make_tasks(client):
    """Send one task per state; return their ids by name and the states to wait for."""
    revoked_id = str(uuid.uuid4())
    client.control.revoke(revoked_id)
    sent = {
        'succeeded': (client.send_task('tasks.add', (1, 2)), 'SUCCESS'),
        'failed': (client.send_task('tasks.error', ('bad',)), 'FAILURE'),
        'retried': (client.send_task('tasks.always_fails_with_retries'), 'FAILURE'),
        'retried-then-succeeded': (client.send_task('tasks.retry_then_succeed'), 'SUCCESS'),
        'received': (client.send_task('tasks.add', (5, 5), countdown=600), 'RECEIVED'),
        # Started until test_revoke_and_abort aborts it, however long a busy machine
        # makes the wait below.
        'started': (client.send_task('tasks.abortable_sleep', (600,)), 'STARTED'),
        'revoked': (client.send_task('tasks.add', (2, 2), task_id=revoked_id), 'REVOKED'),
        'rejected': (client.send_task('worker_only.reject'), 'FAILURE'),
        'parent': (client.send_task('worker_only.spawn'), 'SUCCESS'),
    }
    return ({name: result.id for name, (result, _) in sent.items()},
            {result.id: state for result, state in sent.values()})


@pytest.fixture(scope='module')
def flowers(flower22_celery):
    with Cluster(LOG_DIR) as cluster:
        cluster.start_workers(dict(name=P1, concurrency=2),
                              dict(name=P2, pool='threads', concurrency=2))
        ours = start_ours(cluster.url)
        theirs = launch_flower22(flower22_celery, cluster.url,
                                 os.path.join(LOG_DIR, 'flower22.log'), *FLOWER_OPTIONS,
                                 celery_args=('-A', 'tasks', '--workdir', EXAMPLES_DIR))
        try:
            both = Flowers(cluster, ours, theirs)
            wait_for(lambda: all(both.ask(flower, 'GET', '/api/workers?status=1')[1] == {
                P1: True, P2: True} for flower in (ours, theirs)), what='both to see the workers')
            # Each flower inspects the workers once at start; on a loaded machine the
            # replies may come after that inspection gave up. Both then refresh, so that
            # '/api/workers' compares what each knows of the same workers.
            wait_for(lambda: all(set(both.ask(flower, 'GET', '/api/workers?refresh=1')[1]) ==
                                 {P1, P2} for flower in (ours, theirs)),
                     what='both to have inspected the workers')
            both.ids, expected = make_tasks(cluster.client)

            def settled():
                children = [task_id for flower in (ours, theirs)
                            for task_id, task in both.ask(flower, 'GET', '/api/tasks')[1].items()
                            if task['parent_id'] == both.ids['parent']]
                states = [{task_id: task['state'] for task_id, task
                           in both.ask(flower, 'GET', '/api/tasks')[1].items()}
                          for flower in (ours, theirs)]
                return len(children) == 2 and all(
                    {task_id: seen.get(task_id) for task_id in expected} == expected
                    and all(state == 'SUCCESS' for task_id, state in seen.items()
                            if task_id not in expected) for seen in states)

            wait_for(settled, timeout=120, what='both flowers to see every task settle')
            yield both
        finally:
            ours.stop(signal.SIGKILL)
            theirs.stop(signal.SIGKILL)
            # After the broker outage a warm shutdown waits for reconnection: nothing
            # here is about how workers stop.
            for worker in cluster.workers:
                worker.kill()


# -- comparing ----------------------------------------------------------------

def kind(value):
    """The JSON type of ``value`` (ints and floats are both numbers)."""
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    return 'number' if isinstance(value, (int, float)) else type(value).__name__


#: Keys whose values each program makes up on its own: only their types are compared.
#: A task's ``clock`` is its last event's; Celery's receiver gives a client's
#: ``task-sent`` event the receiving program's own Lamport clock, and that event may
#: come after the worker's (when the sending client is slow to publish it).
LOCAL_VALUES = {'clock'}


def differences(ours, theirs, path='', values=False):
    """Where two JSON documents differ in keys or types (and values, if ``values``)."""
    found = []
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(set(ours) | set(theirs)):
            if key not in theirs:
                found.append(f'{path}/{key}: only ours')
            elif key not in ours:
                found.append(f'{path}/{key}: only Flower 2.2')
            else:
                found += differences(ours[key], theirs[key], f'{path}/{key}',
                                     values and key not in LOCAL_VALUES)
    elif isinstance(ours, list) and isinstance(theirs, list):
        if values and len(ours) != len(theirs):
            found.append(f'{path}: {len(ours)} items, Flower 2.2 {len(theirs)}')
        for index, (mine, other) in enumerate(zip(ours, theirs)):
            found += differences(mine, other, f'{path}[{index}]', values)
    elif kind(ours) != kind(theirs):
        found.append(f'{path}: {kind(ours)} {ours!r:.60}, Flower 2.2 {kind(theirs)} {theirs!r:.60}')
    elif values and ours != theirs:
        found.append(f'{path}: {ours!r:.60}, Flower 2.2 {theirs!r:.60}')
    return found


def assert_same(answers, values=True):
    """Same status, same keys and types; the same values too unless ``values`` is False."""
    (status, ours), (their_status, theirs) = answers
    assert status == their_status, (ours, theirs)
    assert differences(ours, theirs, values=values) == []
    return ours


def assert_same_error(answers, status, message=None):
    """Both answer ``status``; ours is a JSON error, Flower's the message as text."""
    (our_status, ours), (their_status, theirs) = answers
    assert (our_status, their_status) == (status, status), (ours, theirs)
    assert isinstance(ours, dict) and set(ours) == {'error'}, ours
    if message is not None:
        assert ours['error'] == theirs == message
    return ours['error'], theirs


# -- tasks --------------------------------------------------------------------

@pytest.mark.parametrize('query', [
    '', '?state=FAILURE', '?taskname=tasks.add', f'?workername={P1}', '?sort_by=name',
])
def test_task_listings(flowers, query):
    # The same tasks, each the same; their order is one of the documented differences.
    ours = assert_same(flowers.both('GET', '/api/tasks' + query))
    assert ours, 'an empty listing proves nothing'


@pytest.mark.parametrize('query', [
    '?state=SUCCESS&sort_by=-received&limit=3', '?state=SUCCESS&sort_by=received&limit=2&offset=1',
    '?taskname=tasks.add&state=SUCCESS&sort_by=-started&limit=2',
])
def test_task_pages_in_an_order_without_ties(flowers, query):
    (status, ours), theirs = flowers.both('GET', '/api/tasks' + query)
    assert_same(((status, ours), theirs))
    assert list(ours) == list(theirs[1]) and ours


@pytest.mark.parametrize('name', ['succeeded', 'failed', 'retried', 'retried-then-succeeded',
                                  'received', 'started', 'revoked', 'rejected', 'parent'])
def test_task_info_in_every_state(flowers, name):
    info = assert_same(flowers.both('GET', f'/api/task/info/{flowers.ids[name]}'))
    assert info['uuid'] == flowers.ids[name]
    if name == 'rejected':
        assert info['rejected'] is not None
    if name == 'parent':
        (child,) = info['children']
        assert assert_same(flowers.both('GET', f'/api/task/info/{child}'))['parent'] == \
            flowers.ids['parent']


def test_we_sort_by_more_fields(flowers):
    (status, ours), (their_status, theirs) = flowers.both('GET', '/api/tasks?sort_by=-timestamp')
    assert (status, their_status) == (200, 400), theirs
    assert list(ours)[0] == max(ours, key=lambda task_id: ours[task_id]['timestamp'])


def test_task_types(flowers):
    assert 'worker_only.spawn' in assert_same(flowers.both('GET', '/api/task/types'))['task-types']


@pytest.mark.parametrize('name', ['succeeded', 'failed', 'revoked', 'rejected', 'received'])
def test_task_results(flowers, name):
    assert_same(flowers.both('GET', f'/api/task/result/{flowers.ids[name]}'))


def test_result_of_a_task_nobody_knows(flowers):
    assert assert_same(flowers.both('GET', '/api/task/result/no-such-task')) == {
        'task-id': 'no-such-task', 'state': 'PENDING'}


def test_queue_lengths(flowers):
    assert_same(flowers.both('GET', '/api/queues/length'))


def test_unknown_task_and_worker(flowers):
    assert_same_error(flowers.both('GET', '/api/task/info/no-such-task'), 404,
                      "Unknown task 'no-such-task'")
    assert_same_error(flowers.both('GET', '/api/workers?workername=nobody@nowhere'), 404,
                      "Unknown worker 'nobody@nowhere'")
    assert_same_error(flowers.both('POST', '/api/worker/pool/grow/nobody@nowhere'), 404,
                      "Unknown worker 'nobody@nowhere'")
    assert_same_error(flowers.both('POST', '/api/task/async-apply/tasks.nope', json={}), 404,
                      "Unknown task 'tasks.nope'")


# -- workers ------------------------------------------------------------------

def worker_values(answer):
    """What two inspections made a moment apart agree on (URL passwords masked alike)."""
    values = {name: {'registered': info.get('registered'), 'conf': info.get('conf'),
                     'active_queues': info.get('active_queues')}
              for name, info in answer.items()}
    return json.loads(json.dumps(values).replace(':********@', ':****@'))


@pytest.mark.parametrize('query', ['', '?refresh=1', f'?workername={P1}',
                                   f'?refresh=1&workername={P2}', f'?refresh=1&workername={P1}',
                                   '?refresh=1'])
def test_workers(flowers, query):
    (status, ours), theirs = flowers.both('GET', '/api/workers' + query)
    assert_same(((status, ours), theirs), values=False)
    assert differences(worker_values(ours), worker_values(theirs[1]), values=True) == []
    if 'refresh=1&workername' in query:
        assert TASK_LISTS <= set(ours[query.rpartition('=')[2]])


def test_worker_status(flowers):
    assert assert_same(flowers.both('GET', '/api/workers?status=1')) == {P1: True, P2: True}


# -- submitting ---------------------------------------------------------------

def without_id(answer):
    return {key: value for key, value in answer.items() if key != 'task-id'}


@pytest.mark.parametrize('path, body', [
    ('/api/task/apply/tasks.add', {'args': [1, 2]}),
    ('/api/task/apply/tasks.error', {'args': ['x']}),
])
def test_apply(flowers, path, body):
    (status, ours), (their_status, theirs) = flowers.both('POST', path, json=body)
    assert status == their_status == 200
    assert differences(without_id(ours), without_id(theirs), values=True) == []


@pytest.mark.parametrize('path', ['/api/task/async-apply/tasks.add',
                                  '/api/task/send-task/tasks.add',
                                  '/api/task/send-task/tasks.unknown'])
def test_sending_answers_at_once(flowers, path):
    # The state depends on how far the task got before the answer: keys and types only.
    assert_same(flowers.both('POST', path, json={'args': [1, 2]}), values=False)


# -- remote control -----------------------------------------------------------

@pytest.mark.parametrize('path, data', [
    (f'/api/worker/pool/grow/{P1}', {'n': 1}),
    (f'/api/worker/pool/shrink/{P1}', {'n': 1}),
    (f'/api/worker/pool/restart/{P1}', {}),
    (f'/api/worker/queue/add-consumer/{P1}', {'queue': 'extra'}),
    (f'/api/worker/queue/cancel-consumer/{P1}', {'queue': 'extra'}),
    ('/api/task/rate-limit/tasks.add', {'workername': P1, 'ratelimit': '100/m'}),
    ('/api/task/timeout/tasks.add', {'workername': P1, 'soft': 10, 'hard': 20}),
])
def test_control_commands(flowers, path, data):
    assert_same(flowers.both('POST', path, data=data))


@pytest.mark.parametrize('path, data, worker_message', [
    (f'/api/worker/pool/grow/{P2}', {'n': 1}, "has no attribute 'grow'"),
    (f'/api/worker/pool/autoscale/{P1}', {'min': 1, 'max': 2}, 'Autoscale not enabled'),
])
def test_a_refused_command_is_a_403_with_the_workers_message(flowers, path, data,
                                                              worker_message):
    ours, theirs = assert_same_error(flowers.both('POST', path, data=data), 403)
    assert worker_message in ours and worker_message in theirs


@pytest.mark.parametrize('command', ['rate-limit', 'timeout'])
def test_a_command_for_a_task_the_worker_lacks_is_a_404(flowers, command):
    ours, theirs = assert_same_error(flowers.both(
        'POST', f'/api/task/{command}/tasks.nope',
        data={'workername': P1, 'ratelimit': '1/s', 'soft': 1}), 404)
    assert theirs == "Unknown task 'tasks.nope'"
    assert ours == f"{theirs} (worker '{P1}' answered: unknown task)"


def test_revoke_and_abort(flowers):
    received, started = flowers.ids['received'], flowers.ids['started']
    assert_same(flowers.both('POST', f'/api/task/revoke/{received}', data={'terminate': 'true'}))
    assert_same(flowers.both('POST', f'/api/task/abort/{started}'))
    assert flowers.cluster.client.AsyncResult(started).get(timeout=10) == 'aborted'


def test_shutdown(flowers):
    (worker,) = [worker for worker in flowers.cluster.workers if worker.hostname == P2]
    assert flowers.ask(flowers.ours, 'POST', f'/api/worker/shutdown/{P2}') == (
        200, {'message': 'Shutting down!'})
    wait_for(lambda: not worker.running, what='the worker to exit')
    # Documented difference: Flower 2.2 says it shuts a worker down that is gone.
    assert flowers.ask(flowers.theirs, 'POST', f'/api/worker/shutdown/{P2}') == (
        200, {'message': 'Shutting down!'})
    status, answer = flowers.ask(flowers.ours, 'POST', f'/api/worker/shutdown/{P2}')
    assert status == 503 and 'did not reply' in answer['error']


# -- the broker gone ----------------------------------------------------------

def test_with_the_broker_down(flowers):
    redis = flowers.cluster.redis
    redis.stop()
    try:
        started = time.monotonic()
        for method, path in [
            ('POST', f'/api/worker/pool/grow/{P1}'),
            ('POST', f'/api/task/rate-limit/tasks.add?workername={P1}&ratelimit=1/s'),
            ('POST', f'/api/task/timeout/tasks.add?workername={P1}&soft=1'),
            ('POST', f'/api/task/revoke/{flowers.ids["received"]}'),
            ('POST', f'/api/task/abort/{flowers.ids["started"]}'),
            ('GET', f'/api/task/result/{flowers.ids["succeeded"]}'),
        ]:
            (status, ours), (their_status, theirs) = flowers.both(method, path)
            assert status == 503 and their_status in (500, 503), (path, ours, theirs)
            assert 'Connection refused' in ours['error'], path
        # Documented differences: Flower 2.2 answers 200 with what it had, and 500.
        (status, ours), (their_status, _) = flowers.both('GET', '/api/workers?refresh=1')
        assert (status, their_status) == (503, 200)
        assert ours['error'].startswith('Cannot inspect workers:')
        (status, ours), (their_status, _) = flowers.both('GET', '/api/queues/length')
        assert (status, their_status) == (503, 500) and 'Connection refused' in ours['error']
        assert time.monotonic() - started < 60
    finally:
        redis.restart()
