"""Retrying tasks through the API, with real workers on a private Redis.

Two workers: ``extended`` keeps task names and arguments in the result
backend (``result_extended``), on the default queue; ``plain`` does not, on
the ``plain`` queue, so its tasks can only be retried from their events.
What was sent is checked through Celery and the broker, not only through
the API's answers.
"""
import json

import pytest
import redis

from flower.tasks import as_dict
from tests.support.api_cluster import Api
from tests.support.audit import assert_audited
from tests.support.waiting import wait_for

LONG_TEXT = 'x' * 3000  # longer than Celery's argsrepr_maxsize (1024): cut short in events


@pytest.fixture(scope='module')
def flower(cluster):
    return cluster.start_flower()


@pytest.fixture(scope='module')
def workers(cluster, flower):
    started = cluster.start_workers(
        dict(name='retry-extended@localhost', concurrency=2),
        dict(name='retry-plain@localhost', concurrency=2, queues=['plain'],
             env={'API_TESTS_RESULT_EXTENDED': 'off'}))
    cluster.wait_known(flower, *started)
    return dict(zip(('extended', 'plain'), started))


@pytest.fixture
def api(flower, workers):
    return Api(flower)


@pytest.fixture
def broker(cluster):
    client = redis.Redis.from_url(cluster.url)
    yield client
    client.close()


def seen(flower, task_id, *states):
    """Wait until Flower has the task in one of ``states``; return its fields."""
    def fields():
        task = flower.call(lambda: flower.app.events.state.tasks.get(task_id))
        return task is not None and task.state in states and as_dict(task)
    return wait_for(fields, what=f"task {task_id} in {states} in Flower")


def failed(cluster, flower, *args, queue=None, **kwargs):
    """A ``tasks.error`` that failed, as Flower saw it."""
    result = cluster.client.send_task('tasks.error', args, kwargs, queue=queue)
    seen(flower, result.id, 'FAILURE')
    return result.id


def flower_task_ids(flower):
    return flower.call(lambda: set(flower.app.events.state.tasks))


def assert_nothing_sent(cluster, flower, before):
    """No task was published since ``before`` (Flower's task ids then): a task sent
    afterwards shows up alone, and events of one client arrive in order."""
    marker = cluster.client.send_task('tasks.add', (0, 0))
    seen(flower, marker.id, 'SUCCESS')
    assert flower_task_ids(flower) - before == {marker.id}


def test_a_failed_task_is_retried_with_the_arguments_the_backend_kept(
        cluster, flower, api, audit_lines):
    original = failed(cluster, flower, LONG_TEXT)
    assert flower.call(lambda: flower.app.events.state.tasks[original].args).endswith("...',)")

    response = api.post(f'/api/task/retry/{original}')

    assert response.status_code == 200, response.text
    new_id = response.json()['task-id']
    assert response.json() == {'task-id': new_id, 'retry-of': original}
    assert_audited(api, audit_lines, 'task.retry', [original], 200, outcome={'retry': new_id})
    retried = cluster.client.AsyncResult(new_id)
    wait_for(lambda: retried.state == 'FAILURE', what='the retry to fail like the original')
    assert retried.args == [LONG_TEXT] and retried.name == 'tasks.error'
    assert str(retried.result) == LONG_TEXT


def test_a_task_is_retried_from_its_events_on_its_own_queue(cluster, flower, api, workers):
    message = "it's \"quoted\", [1, 2] and {'a': None}"
    original = failed(cluster, flower, queue='plain', message=message)
    assert cluster.client.AsyncResult(original).args is None  # not kept by the backend

    response = api.post(f'/api/task/retry/{original}')

    assert response.status_code == 200, response.text
    fields = seen(flower, response.json()['task-id'], 'FAILURE')
    assert fields['worker'] == workers['plain'].hostname
    assert (fields['name'], fields['kwargs']) == ('tasks.error', repr({'message': message}))
    assert str(cluster.client.AsyncResult(fields['uuid']).result) == message


def test_a_task_whose_args_celery_truncated_is_refused_and_nothing_is_sent(
        cluster, flower, api, broker, audit_lines):
    original = failed(cluster, flower, LONG_TEXT, queue='plain')
    before = flower_task_ids(flower)

    response = api.post(f'/api/task/retry/{original}')

    assert response.status_code == 409
    assert 'truncated' in response.json()['error']
    record = assert_audited(api, audit_lines, 'task.retry', [original], 409)
    assert 'truncated' in record['outcome']['error']
    assert broker.llen('plain') == 0
    assert_nothing_sent(cluster, flower, before)


def test_args_that_do_not_parse_back_exactly_are_refused(cluster, flower, api):
    # Celery writes the backslash as it is: the text reads back as another string.
    original = failed(cluster, flower, 'C:\\temp', queue='plain')

    response = api.post(f'/api/task/retry/{original}')

    assert response.status_code == 409
    assert 'do not parse back' in response.json()['error']


def test_a_task_that_did_not_fail_is_not_retried(cluster, flower, api):
    result = cluster.client.send_task('tasks.add', (2, 2))
    seen(flower, result.id, 'SUCCESS')
    before = flower_task_ids(flower)

    response = api.post(f'/api/task/retry/{result.id}')

    assert response.status_code == 409
    assert 'SUCCESS' in response.json()['error']
    assert_nothing_sent(cluster, flower, before)


def test_an_unknown_task_is_404(api):
    response = api.post('/api/task/retry/no-such-task')

    assert response.status_code == 404
    assert 'no-such-task' in response.json()['error']


def test_a_task_flower_has_no_code_for_is_sent_by_name(cluster, flower, api):
    assert 'worker_only.reject' not in flower.capp.tasks
    result = cluster.client.send_task('worker_only.reject')
    seen(flower, result.id, 'FAILURE')  # its rejection is also a failure, which prevails

    response = api.post(f'/api/task/retry/{result.id}')

    assert response.status_code == 200, response.text
    fields = seen(flower, response.json()['task-id'], 'FAILURE')
    assert fields['name'] == 'worker_only.reject'


def test_the_body_overrides_arguments_queue_and_countdown(cluster, flower, api, broker):
    original = failed(cluster, flower, 'first')
    try:
        response = api.post(f'/api/task/retry/{original}', json={
            'args': [], 'kwargs': {'message': 'second'}, 'queue': 'parked', 'countdown': 600})

        assert response.status_code == 200, response.text
        [raw] = broker.lrange('parked', 0, -1)
        message = json.loads(raw)
        assert message['headers']['id'] == response.json()['task-id']
        assert message['headers']['eta'] is not None
        assert message['headers']['kwargsrepr'] == "{'message': 'second'}"
        assert message['headers']['argsrepr'] == '()'
    finally:
        broker.delete('parked')


def test_given_arguments_retry_a_task_whose_own_cannot_be_recovered(cluster, flower, api):
    original = failed(cluster, flower, LONG_TEXT, queue='plain')

    response = api.post(f'/api/task/retry/{original}',
                        json={'args': ['short'], 'kwargs': {}})

    assert response.status_code == 200, response.text
    assert seen(flower, response.json()['task-id'], 'FAILURE')['args'] == "['short']"


@pytest.mark.parametrize('body, words', [
    ({'args': 'one'}, ["'args'", 'list']),
    ({'kwargs': [1]}, ["'kwargs'", 'object']),
    ({'queue': ''}, ["'queue'"]),
    ({'countdown': 'soon'}, ["'countdown'"]),
    ({'priority': 300}, ["'priority'"]),
    ({'colour': 'red'}, ['colour']),
])
def test_a_malformed_body_is_400_and_nothing_is_sent(cluster, flower, api, body, words):
    original = failed(cluster, flower, 'bad body')
    before = flower_task_ids(flower)

    response = api.post(f'/api/task/retry/{original}', json=body)

    assert response.status_code == 400
    for word in words:
        assert word in response.json()['error']
    assert_nothing_sent(cluster, flower, before)


def test_the_pages_link_a_retry_and_its_original(cluster, flower, api):
    original = failed(cluster, flower, 'linked')
    first = api.post(f'/api/task/retry/{original}').json()['task-id']
    second = api.post(f'/api/task/retry/{original}').json()['task-id']
    seen(flower, second, 'FAILURE')

    status, page = flower.get(f'/task/{first}')
    assert status == 200
    assert f'href="/task/{original}"' in page.split('id="field-retry-of"')[1].split('</td>')[0]
    status, page = flower.get(f'/task/{original}')
    retried_as = page.split('id="field-retried-as"')[1].split('</td>')[0]
    assert retried_as.index(first) < retried_as.index(second)


def test_with_persistent_the_links_survive_a_restart(cluster, workers, history_db):
    db = history_db.db
    first = cluster.start_flower(persistent=True, db=db)
    cluster.wait_known(first, workers['extended'])
    original = failed(cluster, first, 'kept across restarts')
    new_id = Api(first).post(f'/api/task/retry/{original}').json()['task-id']
    seen(first, new_id, 'FAILURE')
    first.stop()

    second = cluster.start_flower(persistent=True, db=db)

    status, page = second.get(f'/task/{new_id}')
    assert status == 200
    assert original in page.split('id="field-retry-of"')[1].split('</td>')[0]
    status, page = second.get(f'/task/{original}')
    assert new_id in page.split('id="field-retried-as"')[1].split('</td>')[0]
