"""``/api/tasks`` filters and order, ``/api/task/types`` and ``/api/task/info``.

The module runs a known set of tasks once, one after the other, on two real
workers; every test then asks Flower for a subset and expects exactly the
matching tasks, in order.
"""
import time

import pytest

from flower.utils.tasks import TASK_FIELDS
from tests.support.api_cluster import Api
from tests.support.waiting import wait_for

#: (key, task name, args, kwargs, queue), run in this order.
TASKS = [
    ('add12', 'tasks.add', (1, 2), {}, 'celery'),
    ('add34', 'tasks.add', (3, 4), {}, 'celery'),
    ('mul23', 'tasks.mul', (2, 3), {}, 'celery'),
    ('hello', 'tasks.echo', ('hello world',), {}, 'celery'),
    ('needle', 'tasks.echo', (), {'value': 'needle'}, 'celery'),
    ('boom', 'tasks.error', ('boom',), {}, 'celery'),
    ('add55', 'tasks.add', (5, 5), {}, 'second'),
]
KEYS = [key for key, *_ in TASKS]


@pytest.fixture(scope='module')
def setup(cluster):
    flower = cluster.start_flower()
    first, second = cluster.start_workers(
        dict(name='api-list1@localhost', pool='threads', concurrency=1),
        dict(name='api-list2@localhost', pool='threads', concurrency=1, queues=['second']),
    )
    cluster.wait_known(flower, first, second)
    ids = {}
    for key, name, args, kwargs, queue in TASKS:
        result = cluster.client.send_task(name, args, kwargs, queue=queue)
        result.get(timeout=20, propagate=False)
        ids[key] = result.id

    def all_done():
        tasks = flower.call(lambda: {task_id: task.state for task_id, task
                                     in flower.app.events.state.tasks.items()})
        return all(tasks.get(task_id) in ('SUCCESS', 'FAILURE') for task_id in ids.values())

    wait_for(all_done, what='Flower to see every task finish')
    return flower, ids, first, second


@pytest.fixture
def api(setup):
    return Api(setup[0])


@pytest.fixture
def ids(setup):
    return setup[1]


def listed(api, query=''):
    response = api.get('/api/tasks' + query)
    assert response.status_code == 200, response.text
    return list(response.json())


def keys_of(ids, task_ids):
    by_id = {task_id: key for key, task_id in ids.items()}
    return [by_id[task_id] for task_id in task_ids]


def minute(timestamp):
    return time.strftime('%Y-%m-%d %H:%M', time.gmtime(timestamp))


def test_every_task_is_listed_with_the_documented_fields(api, ids, setup):
    tasks = api.get('/api/tasks').json()

    assert set(tasks) == set(ids.values())
    task = tasks[ids['add34']]
    assert list(task) == list(TASK_FIELDS)
    assert task['uuid'] == ids['add34']
    assert (task['name'], task['args'], task['kwargs']) == ('tasks.add', '(3, 4)', '{}')
    assert (task['state'], task['result']) == ('SUCCESS', '7')
    assert task['worker'] == setup[2].hostname
    assert task['received'] <= task['started'] <= task['succeeded'] == task['timestamp']
    assert task['runtime'] >= 0 and task['retries'] == 0
    assert task['failed'] is None and task['exception'] is None and task['children'] == []
    failed = tasks[ids['boom']]
    assert failed['state'] == 'FAILURE' and failed['exception'] == "ValueError('boom')"
    assert 'ValueError' in failed['traceback']


def test_default_order_is_newest_first(api, ids):
    assert keys_of(ids, listed(api)) == KEYS[::-1]


@pytest.mark.parametrize('query, expected', [
    ('?taskname=tasks.add', ['add55', 'add34', 'add12']),
    ('?state=FAILURE', ['boom']),
    ('?workername=api-list2@localhost', ['add55']),
    ('?workername=api-list1@localhost&taskname=tasks.echo', ['needle', 'hello']),
    ('?taskname=tasks.nothing', []),
])
def test_filters(api, ids, query, expected):
    assert keys_of(ids, listed(api, query)) == expected


@pytest.mark.parametrize('query, expected', [
    ('?sort_by=received', KEYS),
    ('?sort_by=-received', KEYS[::-1]),
    ('?sort_by=name', ['add55', 'add34', 'add12', 'needle', 'hello', 'boom', 'mul23']),
    ('?sort_by=-name', ['mul23', 'boom', 'needle', 'hello', 'add55', 'add34', 'add12']),
    ('?sort_by=state&taskname=tasks.error', ['boom']),
    ('?sort_by=received&limit=2', ['add12', 'add34']),
    ('?sort_by=received&limit=2&offset=1', ['add34', 'mul23']),
    ('?sort_by=received&offset=6', ['add55']),
    ('?limit=0', []),
])
def test_sort_limit_and_offset(api, ids, query, expected):
    assert keys_of(ids, listed(api, query)) == expected


@pytest.mark.parametrize('search, expected', [
    ('args:"hello world"', ['hello']),
    ('result:7', ['add34']),
    ('kwargs:value=needle', ['needle']),
    ('boom', ['boom']),
    ('state:FAILURE', ['boom']),
    ('state:SUCCESS state:FAILURE', KEYS[::-1]),
    ('args:1 result:3', ['add12']),
    ('HELLO', ['hello']),
    ('"hello world" state:FAILURE', []),
])
def test_search(api, ids, search, expected):
    response = api.get('/api/tasks', params={'search': search})

    assert keys_of(ids, list(response.json())) == expected


@pytest.mark.parametrize('path, argument', [
    ('/api/tasks', 'search'), ('/tasks/datatable', 'search[value]'), ('/api/events', 'search'),
])
def test_a_search_that_cannot_be_parsed_is_a_400_saying_where(api, path, argument):
    """Issue 16, item 3: the same answer wherever a search is taken."""
    response = api.get(path, params={argument: 'state:FAILURE args:"unclosed'})

    assert response.status_code == 400, response.text[:300]
    assert response.json()['error'] == (
        f"Invalid value for argument '{argument}': the quote at character 20 is never "
        "closed (near '\"unclosed')")
    with api.get(path, params={argument: 'args:"closed"', 'limit': 1}, stream=True) as answer:
        assert answer.status_code == 200


def test_received_and_started_date_ranges(api, ids):
    tasks = api.get('/api/tasks').json()
    first_received = min(task['received'] for task in tasks.values())
    last_started = max(task['started'] for task in tasks.values())
    before, after = minute(first_received - 60), minute(last_started + 60)

    everything = set(ids.values())
    assert set(listed(api, f'?received_start={before}&received_end={after}')) == everything
    assert set(listed(api, f'?started_start={before}&started_end={after}')) == everything
    assert listed(api, f'?received_start={after}') == []
    assert listed(api, f'?started_end={before}') == []


def test_task_types(api):
    response = api.get('/api/task/types')

    assert response.json() == {'task-types': ['tasks.add', 'tasks.echo', 'tasks.error',
                                              'tasks.mul']}


def test_task_info(api, ids, setup):
    response = api.get(f"/api/task/info/{ids['mul23']}")

    assert response.status_code == 200
    info = response.json()
    assert list(info) == list(TASK_FIELDS)
    assert info['uuid'] == ids['mul23']
    assert (info['name'], info['state'], info['result']) == ('tasks.mul', 'SUCCESS', '6')
    assert info['worker'] == setup[2].hostname


def test_format_task_from_the_configuration_is_applied(api, ids, setup, monkeypatch):
    def hide_args(task):
        task.args = 'hidden'
        return task

    monkeypatch.setattr(setup[0].options, 'format_task', hide_args)

    assert {task['args'] for task in api.get('/api/tasks').json().values()} == {'hidden'}
    assert api.get(f"/api/task/info/{ids['add12']}").json()['args'] == 'hidden'
    monkeypatch.setattr(setup[0].options, 'format_task', None)
    assert api.get(f"/api/task/info/{ids['add12']}").json()['args'] == '(1, 2)'
