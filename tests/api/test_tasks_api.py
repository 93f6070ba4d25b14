"""Task submission, results, abort and revoke through the API, run by a real worker.

Results are read back with Celery (``AsyncResult``, ``inspect``), not only
from the API's own answers.
"""
import datetime
import os
import uuid

import pytest
import redis
from celery.contrib.abortable import AbortableAsyncResult

from tests.support.api_cluster import Api
from tests.support.processes import free_port
from tests.support.waiting import wait_for


@pytest.fixture(scope='module')
def flower(cluster):
    return cluster.start_flower()


@pytest.fixture(scope='module')
def worker(cluster, flower):
    (started,) = cluster.start_workers(dict(name='api-tasks@localhost', concurrency=2))
    cluster.wait_known(flower, started)
    return started


@pytest.fixture
def api(flower, worker):
    return Api(flower)


def active_task(cluster, worker, task_id):
    """The worker's ``inspect active`` entry for ``task_id``, if it is running."""
    replies = cluster.client.control.inspect(destination=[worker.hostname], timeout=5).active()
    for entry in (replies or {}).get(worker.hostname, []):
        if entry['id'] == task_id:
            return entry
    return None


def test_apply_waits_for_and_returns_the_result(cluster, api):
    response = api.post('/api/task/apply/tasks.add', json={'args': [1, 2]})

    assert response.status_code == 200
    body = response.json()
    assert body == {'task-id': body['task-id'], 'state': 'SUCCESS', 'result': 3}
    assert cluster.client.AsyncResult(body['task-id']).get(timeout=5) == 3


def test_apply_with_keyword_arguments(api):
    response = api.post('/api/task/apply/tasks.mul', json={'kwargs': {'x': 6, 'y': 7}})

    assert response.json()['result'] == 42


def test_apply_of_a_failing_task_reports_the_exception(api):
    response = api.post('/api/task/apply/tasks.error', json={'args': ['kaput']})

    assert response.status_code == 200
    body = response.json()
    assert body['state'] == 'FAILURE'
    assert body['result'] == "ValueError('kaput')"
    assert 'ValueError' in body['traceback']


def test_async_apply_answers_at_once_and_the_task_runs(cluster, api):
    # The countdown keeps the task from finishing before the answer is read.
    response = api.post('/api/task/async-apply/tasks.echo',
                        json={'args': [{'k': [1, 'two']}], 'countdown': 2})

    assert response.status_code == 200
    body = response.json()
    assert body['state'] == 'PENDING'
    assert cluster.client.AsyncResult(body['task-id']).get(timeout=10) == {'k': [1, 'two']}


def test_async_apply_passes_scheduling_options(cluster, api, worker):
    eta = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5))
    with_countdown = api.post('/api/task/async-apply/tasks.add',
                              json={'args': [1, 1], 'options': {'countdown': 300}}).json()
    with_eta = api.post('/api/task/async-apply/tasks.add',
                        json={'args': [2, 2], 'eta': eta.isoformat(), 'expires': 600}).json()
    ids = {with_countdown['task-id'], with_eta['task-id']}
    try:
        def scheduled():
            replies = cluster.client.control.inspect(
                destination=[worker.hostname], timeout=5).scheduled()
            return {entry['request']['id']: entry for entry in replies[worker.hostname]}

        entries = wait_for(lambda: ids <= set(scheduled()) and scheduled(),
                           what='both tasks to be scheduled')
        scheduled_eta = datetime.datetime.fromisoformat(entries[with_eta['task-id']]['eta'])
        assert abs((scheduled_eta - eta).total_seconds()) < 1
    finally:
        cluster.client.control.revoke(list(ids))


def test_async_apply_routes_to_the_requested_queue(cluster, api):
    client = redis.Redis.from_url(cluster.url)
    try:
        response = api.post('/api/task/async-apply/tasks.add',
                            json={'args': [3, 3], 'options': {'queue': 'parked'}})
        assert response.status_code == 200
        assert client.llen('parked') == 1
    finally:
        client.delete('parked')
        client.close()


@pytest.mark.parametrize('endpoint', ['apply', 'async-apply'])
def test_arguments_that_do_not_fit_the_task_are_a_400_and_nothing_is_sent(cluster, api, endpoint):
    client = redis.Redis.from_url(cluster.url)
    try:
        response = api.post(f'/api/task/{endpoint}/tasks.add',
                            json={'args': [1], 'options': {'queue': 'misfits'}})
        assert response.status_code == 400, response.text
        assert response.json()['error'].startswith("Invalid arguments for task 'tasks.add': ")
        assert 'missing' in response.json()['error']
        assert client.llen('misfits') == 0
    finally:
        client.delete('misfits')
        client.close()


def test_send_task_runs_a_task_flower_has_no_code_for(cluster, api, flower):
    assert 'worker_only.repeat' not in flower.capp.tasks
    assert api.post('/api/task/async-apply/worker_only.repeat', json={}).status_code == 404

    response = api.post('/api/task/send-task/worker_only.repeat', json={'args': ['ab', 3]})

    assert response.status_code == 200
    task_id = response.json()['task-id']
    assert cluster.client.AsyncResult(task_id).get(timeout=10) == 'ababab'


def test_result_of_a_finished_task(cluster, api):
    task_id = cluster.client.send_task('tasks.add', (20, 22)).id
    cluster.client.AsyncResult(task_id).get(timeout=10)

    response = api.get(f'/api/task/result/{task_id}')

    assert response.status_code == 200
    assert response.json() == {'task-id': task_id, 'state': 'SUCCESS', 'result': 42}


def test_result_waits_up_to_the_timeout(cluster, api):
    task_id = cluster.client.send_task('tasks.sleep', (0.5,)).id

    response = api.get(f'/api/task/result/{task_id}?timeout=20')

    assert response.json() == {'task-id': task_id, 'state': 'SUCCESS', 'result': 0.5}


def test_result_of_a_task_not_ready_within_the_timeout(cluster, api):
    task_id = cluster.client.send_task('tasks.add', (1, 1), queue='nobody-consumes').id

    response = api.get(f'/api/task/result/{task_id}?timeout=0.3')

    assert response.status_code == 200
    # No 'result' key until there is one, as Flower answers.
    assert response.json() == {'task-id': task_id, 'state': 'PENDING'}


def test_abort_stops_an_abortable_task(cluster, api, worker):
    task_id = cluster.client.send_task('tasks.abortable_sleep', (30,)).id
    wait_for(lambda: active_task(cluster, worker, task_id), what='the task to start')

    response = api.post(f'/api/task/abort/{task_id}')

    assert response.status_code == 200
    assert response.json() == {'message': f"Aborted '{task_id}'"}
    # The task notices the abort and returns early, instead of sleeping 30 s.
    assert cluster.client.AsyncResult(task_id).get(timeout=10) == 'aborted'


def test_abort_marks_the_result_aborted(cluster, api):
    task_id = str(uuid.uuid4())

    assert api.post(f'/api/task/abort/{task_id}').status_code == 200

    assert AbortableAsyncResult(task_id, app=cluster.client).is_aborted()


def test_revoke_puts_the_task_in_the_revoked_list_and_it_never_runs(cluster, api, worker):
    task_id = str(uuid.uuid4())

    response = api.post(f'/api/task/revoke/{task_id}')

    assert response.status_code == 200
    assert response.json() == {'message': f"Revoked '{task_id}'"}
    revoked = cluster.client.control.inspect(destination=[worker.hostname], timeout=5).revoked()
    assert task_id in revoked[worker.hostname]
    result = cluster.client.send_task('tasks.add', (1, 1), task_id=task_id)
    wait_for(lambda: result.state == 'REVOKED', what='the task to be REVOKED')
    wait_for(lambda: api.get(f'/api/task/info/{task_id}').json().get('state') == 'REVOKED',
             what='Flower to see the revocation')
    # As in Flower 2.2: the exception as the result, but no traceback (a failure has one).
    assert api.get(f'/api/task/result/{task_id}').json() == {
        'task-id': task_id, 'state': 'REVOKED', 'result': "TaskRevokedError('revoked')"}


def test_revoking_a_finished_task_says_it_had_no_effect(cluster, api):
    result = cluster.client.send_task('tasks.add', (2, 2))
    assert result.get(timeout=30) == 4
    wait_for(lambda: api.get(f'/api/task/info/{result.id}').json().get('state') == 'SUCCESS',
             what='Flower to see the task succeed')

    response = api.post(f'/api/task/revoke/{result.id}')

    assert response.status_code == 200
    assert response.json() == {
        'message': f"'{result.id}' had already finished (SUCCESS): revoking it had no effect",
        'effect': 'none'}


def test_revoke_with_terminate_kills_the_running_task(cluster, api, worker):
    task_id = cluster.client.send_task('tasks.sleep', (60,)).id
    running = wait_for(lambda: active_task(cluster, worker, task_id), what='the task to start')
    pid = running['worker_pid']

    response = api.post(f'/api/task/revoke/{task_id}?terminate=true&signal=SIGKILL')

    assert response.status_code == 200

    def process_gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(process_gone, what=f'pool process {pid} to be killed')
    wait_for(lambda: cluster.client.AsyncResult(task_id).state == 'REVOKED',
             what='the task to be REVOKED')


#: Bodies a submission refuses (with Flower's wording), each with the queue it would use.
REFUSED_BODIES = {
    'body-a-list': ('[1, 2]', 'invalid options'),
    'body-a-number': ('42', 'invalid options'),
    'body-a-string': ('"x"', 'invalid options'),
    'body-null': ('null', 'invalid options'),
    'args-null': ('{"args": null, "queue": "refused-q"}', 'args must be an array'),
    'args-false': ('{"args": false, "queue": "refused-q"}', 'args must be an array'),
    'args-42': ('{"args": 42, "queue": "refused-q"}', 'args must be an array'),
    'args-string': ('{"args": "x", "queue": "refused-q"}', 'args must be an array'),
    'args-object': ('{"args": {}, "queue": "refused-q"}', 'args must be an array'),
    'kwargs-list': ('{"kwargs": [], "queue": "refused-q"}', 'kwargs must be an object'),
    'options-list': ('{"options": [], "queue": "refused-q"}', 'invalid options'),
    'options-bad-countdown': ('{"options": {"countdown": "soon", "queue": "refused-q"}}',
                              'invalid options'),
}


@pytest.mark.parametrize('endpoint', ['apply', 'async-apply', 'send-task'])
@pytest.mark.parametrize('case', list(REFUSED_BODIES))
def test_a_malformed_submission_is_a_400_in_flowers_words_and_nothing_is_sent(
        cluster, api, endpoint, case):
    body, words = REFUSED_BODIES[case]
    response = api.post(f'/api/task/{endpoint}/tasks.add', data=body,
                        headers={'Content-Type': 'application/json'})
    assert response.status_code == 400
    assert words in response.json()['error']
    assert redis.Redis(port=cluster.redis.port).llen('refused-q') == 0


def test_an_unreachable_result_backend_is_a_503_never_a_500(cluster, worker):
    dead = f'redis://127.0.0.1:{free_port()}/0'
    capp = cluster.make_app(result_backend=dead, result_backend_transport_options={
        'retry_policy': {'max_retries': 1, 'interval_start': 0, 'interval_step': 0.1}})
    api = Api(cluster.start_flower(capp=capp, enable_events=False))
    calls = [
        ('post', '/api/task/apply/tasks.add', {'json': {'args': [1, 2]}}),
        ('post', '/api/task/async-apply/tasks.add', {'json': {'args': [1, 2]}}),
        ('post', '/api/task/send-task/tasks.add', {'json': {'args': [1, 2]}}),
        ('get', f'/api/task/result/{uuid.uuid4()}', {}),
        ('post', f'/api/task/abort/{uuid.uuid4()}', {}),
    ]
    for method, path, kwargs in calls:
        response = getattr(api, method)(path, **kwargs)

        assert response.status_code == 503, (path, response.text)
        assert 'Connection refused' in response.json()['error'], path
