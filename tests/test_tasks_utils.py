"""Selecting, sorting and serializing tasks of the events state (flower.utils.tasks,
the functions kept for users' imports, over flower.tasks).

The state is Flower's, fed with the events a worker would send; there is no history.
"""
import asyncio
import concurrent.futures
import dataclasses
import datetime
import types

import pytest
from celery.events import Event

from flower.metrics import PrometheusMetrics
from flower.state import EventsState
from flower.tasks import TaskFilter, Tasks

from flower.utils.tasks import (
    TASK_FIELDS, as_dict, count_tasks, get_task_by_id, iter_tasks, parse_date, parse_sort_by, shallow_copy,
    sort_tasks,
)

T0 = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc).timestamp()


def feed(state, clock, kind, uuid, hostname, at, **fields):
    state.event(Event(f'task-{kind}', uuid=uuid, hostname=hostname, timestamp=at,
                      local_received=at, clock=clock, **fields))


@pytest.fixture
def events():
    """add (w1, done), mul (w2, failed) and echo (w1, only received), a minute apart."""
    state = EventsState(metrics=PrometheusMetrics())
    feed(state, 1, 'received', 'add', 'w1@h', T0, name='tasks.add', args='(1, 2)', kwargs='{}',
         retries=0)
    feed(state, 2, 'started', 'add', 'w1@h', T0 + 1)
    feed(state, 3, 'succeeded', 'add', 'w1@h', T0 + 2, result='3', runtime=1.0)
    feed(state, 4, 'received', 'mul', 'w2@h', T0 + 60, name='tasks.mul', args='(2, 3)',
         kwargs="{'z': 1}", retries=0, parent_id='add', root_id='add')
    feed(state, 5, 'started', 'mul', 'w2@h', T0 + 61)
    feed(state, 6, 'failed', 'mul', 'w2@h', T0 + 62, exception="ValueError('x')", traceback='tb')
    feed(state, 7, 'received', 'echo', 'w1@h', T0 + 120, name='tasks.echo',
         args="('hello world',)", kwargs='{}', retries=0)
    return types.SimpleNamespace(state=state, store=None)


def ids(pairs):
    return [uuid for uuid, _ in pairs]


def test_all_tasks_newest_first(events):
    assert ids(iter_tasks(events)) == ['echo', 'mul', 'add']


@pytest.mark.parametrize('filters, expected', [
    (dict(type='tasks.add'), ['add']),
    (dict(worker='w1@h'), ['echo', 'add']),
    (dict(worker='w3@h'), []),
    (dict(state='FAILURE'), ['mul']),
    (dict(state='RECEIVED', worker='w1@h'), ['echo']),
    (dict(limit=2), ['echo', 'mul']),
    (dict(offset=1), ['mul', 'add']),
    (dict(limit=1, offset=1), ['mul']),
    (dict(limit=0), []),
    (dict(search='args:"hello world"'), ['echo']),
    (dict(search='kwargs:z=1'), ['mul']),
    (dict(search='state:SUCCESS state:FAILURE', sort_by='name'), ['add', 'mul']),
])
def test_filters(events, filters, expected):
    assert ids(iter_tasks(events, **filters)) == expected


@pytest.mark.parametrize('sort_by, expected', [
    ('name', ['add', 'echo', 'mul']),
    ('-name', ['mul', 'echo', 'add']),
    ('received', ['add', 'mul', 'echo']),
    ('-received', ['echo', 'mul', 'add']),
    ('worker', ['echo', 'add', 'mul']),
    ('started', ['add', 'mul', 'echo']),
    ('-started', ['mul', 'add', 'echo']),
])
def test_sort_keeps_tasks_without_the_field_last(events, sort_by, expected):
    assert ids(iter_tasks(events, sort_by=sort_by)) == expected


def test_sort_then_page(events):
    assert ids(iter_tasks(events, sort_by='received', offset=1, limit=1)) == ['mul']


def test_sort_tasks_directly():
    a = types.SimpleNamespace(runtime=2.0, worker=None)
    b = types.SimpleNamespace(runtime=None, worker=None)
    c = types.SimpleNamespace(runtime=0.5, worker=None)

    assert ids(sort_tasks([('a', a), ('b', b), ('c', c)], '-runtime')) == ['a', 'c', 'b']


@pytest.mark.parametrize('bounds, expected', [
    (dict(received_start='2024-05-01 12:00'), ['echo', 'mul', 'add']),
    (dict(received_start='2024-05-01 12:01'), ['echo', 'mul']),
    (dict(received_end='2024-05-01 12:01'), ['add']),
    (dict(received_start='2024-05-01 12:01', received_end='2024-05-01 12:02'), ['mul']),
    (dict(received_start=datetime.datetime(2024, 5, 1, 12, 2)), ['echo']),
    (dict(received_end=datetime.datetime(2024, 5, 1, 14, 1, tzinfo=datetime.timezone(
        datetime.timedelta(hours=2)))), ['add']),
    (dict(started_start='2024-05-01 11:00'), ['mul', 'add']),
    (dict(started_end='2024-05-01 12:01'), ['add']),
])
def test_date_bounds(events, bounds, expected):
    assert ids(iter_tasks(events, **bounds)) == expected


def test_get_task_by_id(events):
    assert get_task_by_id(events, 'mul').name == 'tasks.mul'
    assert get_task_by_id(events, 'nope') is None


def test_as_dict_has_every_field_ready_for_json(events):
    data = as_dict(get_task_by_id(events, 'add'))

    assert list(data) == list(TASK_FIELDS)
    assert data['uuid'] == 'add' and data['name'] == 'tasks.add'
    assert data['worker'] == 'w1@h'
    assert data['children'] == ['mul']
    assert (data['state'], data['result'], data['runtime']) == ('SUCCESS', '3', 1.0)
    assert (data['received'], data['started'], data['succeeded']) == (T0, T0 + 1, T0 + 2)
    child = as_dict(get_task_by_id(events, 'mul'))
    assert (child['parent_id'], child['root_id'], child['exception']) == ('add', 'add',
                                                                          "ValueError('x')")


def test_shallow_copy_can_be_changed_without_touching_the_state(events):
    task = get_task_by_id(events, 'add')
    copy = shallow_copy(task)

    copy.args = 'hidden'

    assert task.args == '(1, 2)'
    assert as_dict(copy)['children'] == ['mul']


def test_parse_date_and_sort_by():
    assert parse_date('2024-05-01 12:00').timestamp() == T0
    for bad in ('2024-05-01', 'yesterday', '2024-13-01 00:00'):
        with pytest.raises(ValueError):
            parse_date(bad)
    assert parse_sort_by('-received') == '-received'
    with pytest.raises(ValueError, match='colour'):
        parse_sort_by('colour')
    with pytest.raises(ValueError):
        parse_sort_by('children')


@pytest.mark.parametrize('filters, expected', [
    ({}, (3, 3)),
    (dict(worker='w1@h'), (3, 2)),
    (dict(state='FAILURE', type='tasks.mul'), (3, 1)),
    (dict(search='args:"hello world"'), (3, 1)),
    (dict(received_start='2024-05-01 12:01'), (3, 2)),
    (dict(type='tasks.none'), (3, 0)),
])
def test_count_tasks(events, filters, expected):
    assert count_tasks(events, **filters) == expected


def test_a_task_filter_is_a_value_made_once():
    received = datetime.datetime(2024, 5, 1, 12, 1)
    task_filter = TaskFilter(name='tasks.mul', received_start=received, search='state:failure')

    assert task_filter == TaskFilter(name='tasks.mul', received_start=received,
                                     search='state:failure')
    assert hash(task_filter) == hash(TaskFilter(name='tasks.mul', received_start=received,
                                                search='state:failure'))
    assert TaskFilter().is_empty and not task_filter.is_empty
    assert dataclasses.replace(TaskFilter(worker='w1@h'), worker=None).is_empty  # remade whole
    with pytest.raises(dataclasses.FrozenInstanceError):
        task_filter.name = 'tasks.add'


def test_tasks_select_count_and_get_take_the_filter_whole(events):
    tasks = Tasks(events.state, None)
    by_worker = TaskFilter(worker='w1@h')

    assert ids(tasks.select(by_worker)) == ['echo', 'add']
    assert ids(tasks.select(by_worker, sort_by='name', offset=1, limit=1)) == ['echo']
    assert tasks.count(by_worker) == (3, 2)
    assert tasks.get('mul').name == 'tasks.mul' and tasks.get('nope') is None


@pytest.mark.parametrize('task_filter', [TaskFilter(), TaskFilter(search='args:"hello world"'),
                                         TaskFilter(state='SUCCESS', search='tasks')])
def test_a_page_searched_off_the_loop_is_the_page_selected_on_it(events, task_filter):
    tasks = Tasks(events.state, None)
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        filtered, page = asyncio.run(tasks.page(task_filter, executor, sort_by='-received',
                                                limit=2, count=True))
        _, everything = asyncio.run(tasks.page(task_filter, executor))

    assert filtered == tasks.count(task_filter)[1]
    assert page == list(tasks.select(task_filter, sort_by='-received', limit=2))
    assert everything == list(tasks.select(task_filter))
