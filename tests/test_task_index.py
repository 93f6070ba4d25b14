"""The task index of Flower's events state (flower.utils.task_index) gives the same
listings as a plain scan, stays right while tasks change, and forgets evicted tasks.

Every listing of a randomly fed :class:`EventsState` is compared with the
documented order computed from scratch: newest created first; with ``sort_by``,
by the field, ties newest first, tasks without the field last.
"""
import random
import sys
import types

import pytest
from celery.events import Event

from flower.events import EventsState
from flower.metrics import PrometheusMetrics
from flower.utils.task_index import SortedList, field_value, sort_key
from flower.utils.tasks import as_dict, count_tasks, get_task_by_id, iter_tasks

NAMES = ('tasks.add', 'tasks.mul', 'tasks.echo', 'tasks.error')
WORKERS = ('w1@h', 'w2@h', 'w3@h')
T0 = 1_714_564_800.0  # 2024-05-01 12:00 UTC


def new_state(max_tasks=10_000):
    return EventsState(max_tasks_in_memory=max_tasks, metrics=PrometheusMetrics())


class Feeder:
    def __init__(self, state):
        self.state = state
        self.clock = 0

    def send(self, kind, uuid, hostname, at, **fields):
        self.clock += 1
        self.state.event(Event(f'task-{kind}', uuid=uuid, hostname=hostname, timestamp=at,
                               local_received=at, clock=self.clock, pid=123, **fields))


def random_cluster(seed, count=400, max_tasks=10_000):
    """Tasks received in order, then progressed in random order, some left behind."""
    rng = random.Random(seed)
    state = new_state(max_tasks)
    feeder = Feeder(state)
    uuids = []
    for number in range(count):
        uuid = f'task-{number:04d}'
        uuids.append(uuid)
        at = T0 + number * 7 + rng.random()
        feeder.send('received', uuid, rng.choice(WORKERS), at, name=rng.choice(NAMES),
                    args=f'({rng.randrange(5)},)', kwargs='{}', retries=0)
    for uuid in rng.sample(uuids, count * 3 // 4):
        task = state.tasks.data.get(uuid)
        if task is None:  # evicted: an event for it would bring it back as new
            continue
        at = task.received + rng.choice((1, 2, 2, 3))
        feeder.send('started', uuid, task.worker.hostname, at)
        if rng.random() < 0.8:
            if rng.random() < 0.7:
                feeder.send('succeeded', uuid, task.worker.hostname, at + 1,
                            result=repr(rng.randrange(3)), runtime=rng.choice((0.5, 1.0, 1.5)))
            else:
                feeder.send('failed', uuid, task.worker.hostname, at + 1,
                            exception="ValueError('x')", traceback='Traceback ...')
    return types.SimpleNamespace(state=state, store=None)


def expected_listing(events, sort_by=None, **filters):
    """The documented order, computed by brute force."""
    tasks = [task for task in reversed(list(events.state.tasks.data.values()))]
    selected = [task for task in tasks if matches(task, **filters)]
    if sort_by:
        field = sort_by.removeprefix('-')
        present = [task for task in selected if field_value(task, field) is not None]
        missing = [task for task in selected if field_value(task, field) is None]
        # Stable sort keeps newest-first among equals; for descending, sort the
        # reversed list ascending and reverse it back.
        if sort_by.startswith('-'):
            present = sorted(present[::-1], key=lambda task: sort_key(field_value(task, field)))
            present.reverse()
        else:
            present.sort(key=lambda task: sort_key(field_value(task, field)))
        selected = present + missing
    return [task.uuid for task in selected]


def matches(task, type=None, worker=None, state=None, received_start=None, received_end=None):
    return ((type is None or task.name == type)
            and (worker is None or task.worker.hostname == worker)
            and (state is None or task.state == state)
            and (received_start is None or task.received >= received_start.timestamp())
            and (received_end is None or task.received < received_end.timestamp()))


def listed(events, **query):
    return [uuid for uuid, _ in iter_tasks(events, **query)]


FILTERS = [
    {}, dict(type='tasks.add'), dict(worker='w2@h'), dict(state='FAILURE'),
    dict(state='RECEIVED', worker='w1@h'), dict(type='tasks.nothing'),
]
SORTS = [None, 'name', '-name', 'received', '-received', 'started', '-started', 'runtime',
         '-runtime', 'state', '-state', 'worker', '-worker', 'result', '-result']


@pytest.fixture(scope='module')
def cluster():
    return random_cluster(seed=8)


@pytest.mark.parametrize('sort_by', SORTS)
@pytest.mark.parametrize('filters', FILTERS)
def test_listing_matches_the_documented_order(cluster, sort_by, filters):
    expected = expected_listing(cluster, sort_by, **filters)

    assert listed(cluster, sort_by=sort_by, **filters) == expected
    assert listed(cluster, sort_by=sort_by, offset=5, limit=10, **filters) == expected[5:15]
    assert count_tasks(cluster, **filters) == (400, len(expected))


def test_date_ranges_use_the_index_and_match_a_scan(cluster):
    import datetime
    start = datetime.datetime.fromtimestamp(T0 + 700, datetime.timezone.utc)
    end = datetime.datetime.fromtimestamp(T0 + 900, datetime.timezone.utc)
    expected = expected_listing(cluster, received_start=start, received_end=end)

    assert len(expected) == 29  # 7 s apart: a narrow window, so the index path is taken
    assert listed(cluster, received_start=start, received_end=end) == expected
    assert listed(cluster, received_start=start, received_end=end, sort_by='-runtime') == \
        expected_listing(cluster, '-runtime', received_start=start, received_end=end)
    assert count_tasks(cluster, received_start=start, received_end=end) == (400, 29)


def test_index_follows_changes_after_a_sort_index_was_built():
    events = random_cluster(seed=3, count=120)
    listed(events, sort_by='runtime')
    listed(events, sort_by='-state')
    feeder = Feeder(events.state)
    feeder.clock = 10_000
    for uuid, task in list(events.state.tasks.data.items())[:40]:
        if task.state == 'RECEIVED':
            feeder.send('started', uuid, task.worker.hostname, task.received + 1)
            feeder.send('succeeded', uuid, task.worker.hostname, task.received + 2,
                        result='9', runtime=9.5)

    for sort_by in ('runtime', '-runtime', 'state', '-state'):
        assert listed(events, sort_by=sort_by) == expected_listing(events, sort_by)
    assert listed(events, state='SUCCESS') == expected_listing(events, state='SUCCESS')


def test_evicted_tasks_leave_every_index():
    events = random_cluster(seed=5, count=300, max_tasks=100)

    assert len(events.state.tasks) == 100
    kept = set(events.state.tasks.data)
    assert kept == {f'task-{number:04d}' for number in range(200, 300)}
    for sort_by in (None, 'name', '-received'):
        assert set(listed(events, sort_by=sort_by)) == kept
        assert listed(events, sort_by=sort_by) == expected_listing(events, sort_by)
    assert sum(count_tasks(events, state=state)[1]
               for state in ('RECEIVED', 'STARTED', 'SUCCESS', 'FAILURE')) == 100
    assert get_task_by_id(events, 'task-0000') is None


def test_reading_a_task_does_not_keep_it_longer():
    state = new_state(max_tasks=2)
    feeder = Feeder(state)
    feeder.send('received', 'a', 'w1@h', T0, name='tasks.add')
    feeder.send('received', 'b', 'w1@h', T0 + 1, name='tasks.add')
    assert get_task_by_id(types.SimpleNamespace(state=state, store=None), 'a').name == 'tasks.add'
    feeder.send('received', 'c', 'w1@h', T0 + 2, name='tasks.add')

    assert list(state.tasks.data) == ['b', 'c']


def test_clearing_tasks_rebuilds_the_index():
    events = random_cluster(seed=11, count=50)

    events.state.clear_tasks(ready=True)

    remaining = listed(events)
    assert remaining == expected_listing(events)
    assert all(events.state.tasks.data[uuid].state in ('RECEIVED', 'STARTED')
               for uuid in remaining)


def test_compact_task_keeps_every_shown_field_and_no_event_noise():
    state = new_state()
    feeder = Feeder(state)
    feeder.send('received', 'parent', 'w1@h', T0, name='tasks.add', args='(1, 2)',
                kwargs='{}', retries=0, eta=None, expires=None,
                root_id=''.join(('par', 'ent')))  # an equal copy, as decoded events carry
    feeder.send('received', 'child', 'w1@h', T0 + 1, name='tasks.mul', args='()', kwargs='{}',
                retries=0, parent_id='parent', root_id='parent')
    feeder.send('started', 'parent', 'w1@h', T0 + 2)
    feeder.send('succeeded', 'parent', 'w1@h', T0 + 3, result='3', runtime=1.0)
    events = types.SimpleNamespace(state=state, store=None)

    parent = as_dict(get_task_by_id(events, 'parent'))
    assert parent['children'] == ['child']
    assert (parent['name'], parent['args'], parent['result'], parent['runtime']) == \
        ('tasks.add', '(1, 2)', '3', 1.0)
    assert (parent['received'], parent['started'], parent['succeeded']) == (T0, T0 + 2, T0 + 3)
    assert parent['worker'] == 'w1@h' and parent['state'] == 'SUCCESS'
    assert as_dict(get_task_by_id(events, 'child'))['parent_id'] == 'parent'
    stored = vars(get_task_by_id(events, 'parent'))
    assert not {'pid', 'hostname', 'local_received', 'type'} & set(stored)
    assert state.tasks.data['parent'].as_dict()['children'] == ['child']
    assert state._taskheap == []  # the index replaces Celery's per-event heap
    # A root task keeps one string for its id and its root id (events carry two copies).
    assert state.tasks.data['parent'].root_id is state.tasks.data['parent'].uuid
    assert state.tasks.data['child'].root_id == 'parent'


def test_sorted_list_keeps_order_through_adds_and_removes():
    rng = random.Random(1)
    reference = []
    items = SortedList()
    items.chunk_size = 4
    for _ in range(2000):
        if reference and rng.random() < 0.4:
            item = rng.choice(reference)
            reference.remove(item)
            items.remove(item)
        else:
            item = (rng.randrange(50), rng.random())
            reference.append(item)
            items.add(item)
    reference.sort()

    assert list(items.between((0, 0), items.end())) == reference
    assert len(items) == len(reference)
    place = items.locate((25,))
    assert items.rank(place) == sum(1 for item in reference if item < (25,))
    with pytest.raises(ValueError):
        items.remove((99, 0.5))


def test_task_events_leave_the_same_state_as_celerys_own():
    """Flower applies task events with its own code: the tasks, workers and counts it
    ends with must be the ones Celery's state has after the same stream."""
    from celery.events.state import State
    rng = random.Random(7)
    stream = []
    for number in range(300):
        uuid, worker = f'task-{number:04d}', rng.choice(WORKERS)
        at = T0 + number
        parent = f'task-{number - 1:04d}' if number % 5 == 4 else None
        kinds = [('sent', 'client@h', dict(name=rng.choice(NAMES), args='(1,)', kwargs='{}'))
                 if number % 7 == 0 else
                 ('received', worker, dict(name=rng.choice(NAMES), args=f'({number},)',
                                           kwargs='{}', retries=0, parent_id=parent,
                                           root_id=parent or uuid))]
        kinds.append(('started', worker, {}))
        if number % 3 == 0:
            kinds.append(('retried', worker, dict(exception='Retry()', traceback='tb')))
            kinds.append(('started', worker, {}))
        kinds.append(rng.choice([('succeeded', worker, dict(result='1', runtime=0.5)),
                                 ('failed', worker, dict(exception='E()', traceback='tb')),
                                 ('revoked', worker, dict(terminated=True))]))
        if number % 4 == 1:  # the worker's events arrive out of order
            kinds[-1], kinds[-2] = kinds[-2], kinds[-1]
        stream.extend((kind, uuid, host, at + step, fields)
                      for step, (kind, host, fields) in enumerate(kinds))
    stream.insert(40, ('received', 'orphan-child', 'w1@h', T0, dict(
        name='tasks.add', parent_id='late-parent', root_id='late-parent')))
    stream.append(('received', 'late-parent', 'w1@h', T0 + 400, dict(name='tasks.add')))

    ours, celerys = new_state(), State(max_tasks_in_memory=10_000)
    for state in (ours, celerys):
        for clock, (kind, uuid, host, at, fields) in enumerate(stream):
            state.event(Event(f'task-{kind}', uuid=uuid, hostname=host, timestamp=at,
                              local_received=at + 0.25, clock=clock, pid=123, **fields))

    def summary(state):
        tasks = {uuid: (task.name, task.state, task.worker and task.worker.hostname,
                        task.client, task.received, task.started, task.succeeded,
                        task.failed, task.retried, task.revoked, task.timestamp, task.args,
                        task.result, task.exception, task.parent_id, task.root_id,
                        sorted(child.uuid for child in task.children))
                 for uuid, task in state.tasks.items()}
        workers = {name: list(worker.heartbeats) for name, worker in state.workers.items()}
        by_type = {name: sorted(task.uuid for task in state.tasks_by_type[name])
                   for name in state.task_types()}
        by_worker = {name: sorted(task.uuid for task in state.tasks_by_worker[name])
                     for name in workers}
        return (tasks, workers, by_type, by_worker, sorted(state.task_types()),
                state.task_count, state.event_count)

    assert summary(ours) == summary(celerys)
    assert ours.tasks.data['late-parent'].child_ids == ['orphan-child']


def test_celerys_task_listings_by_type_and_worker_follow_the_tasks_in_memory():
    """``tasks_by_type`` and ``tasks_by_worker`` keep Celery's interface (a set by key,
    the time-ordered call form) without keeping references of their own."""
    state = new_state(max_tasks=3)
    feeder = Feeder(state)
    for number, worker in enumerate(('w1@h', 'w2@h', 'w1@h', 'w2@h')):
        feeder.send('received', f't{number}', worker, T0 + number, name='tasks.add',
                    args='()', kwargs='{}', retries=0)
    feeder.send('started', 'anonymous', 'w1@h', T0 + 9)  # no name: listed nowhere
    # t0 and t1 left memory (three tasks kept); 'anonymous' is the newest.
    assert {task.uuid for task in state.tasks_by_type['tasks.add']} == {'t2', 't3'}
    assert {task.uuid for task in state.tasks_by_worker['w1@h']} == {'t2'}
    assert state.tasks_by_type['tasks.mul'] == set()
    assert 'w2@h' in state.tasks_by_worker and 'w3@h' not in state.tasks_by_worker
    assert sorted(state.tasks_by_worker.keys()) == ['w1@h', 'w2@h']
    assert [uuid for uuid, _ in state.tasks_by_type('tasks.add', limit=1)] == ['t3']
    assert dict(state.tasks_by_type.items()).keys() == {'tasks.add'}


def test_equal_short_texts_of_tasks_are_one_string():
    """Decoding makes a new string for every event: tasks with equal short args,
    kwargs or results keep one (memory), long ones keep their own."""
    state = new_state()
    feeder = Feeder(state)
    long_args = '(' + 'x' * 300 + ',)'
    for number in range(3):
        uuid = f't{number}'
        feeder.send('received', uuid, 'w1@h', T0 + number, name='tasks.add',
                    args=''.join(['(', ')']), kwargs=''.join(['{', '}']), retries=0)
        feeder.send('succeeded', uuid, 'w1@h', T0 + number, result=''.join(['No', 'ne']),
                    runtime=0.1)
        feeder.send('received', f'long{number}', 'w1@h', T0 + number, name='tasks.add',
                    args=''.join(long_args), kwargs='{}', retries=0)
    tasks = [state.tasks.data[f't{number}'] for number in range(3)]
    assert all(task.args is tasks[0].args == '()' for task in tasks)
    assert all(task.kwargs is tasks[0].kwargs == '{}' for task in tasks)
    assert all(task.result is tasks[0].result == 'None' for task in tasks)
    longs = [state.tasks.data[f'long{number}'].args for number in range(3)]
    assert longs[0] == longs[1] and longs[0] is not longs[1]


def test_every_kept_field_ends_as_celerys_task_has_it_whatever_the_order_of_events():
    """Events in every order, custom types and stray keys: each field Flower keeps of a
    task ends with the value Celery's own task has after the same events."""
    from celery.events.state import State
    rng = random.Random(11)
    kinds = [('sent', dict(name='tasks.add', args='(1,)', exchange='ex', routing_key='rk')),
             ('received', dict(name='tasks.add', args='(1,)', kwargs='{}', retries=0,
                               eta=None, root_id=None, parent_id=None, routing_key='rk')),
             ('started', dict(pid=42)), ('progress', dict(done=3, state='ODD')),
             ('retried', dict(exception='Retry()', traceback='tb')),
             ('succeeded', dict(result='2', runtime=0.25, state='STARTED')),
             ('failed', dict(exception='E()', traceback='tb')), ('revoked', dict(expired=True)),
             ('rejected', dict(requeue=False))]
    stream = []
    for number in range(400):
        uuid = f'task-{number:04d}'
        picked = rng.sample(kinds, rng.randint(1, 5))
        if number % 2:
            picked[0] = (picked[0][0], dict(picked[0][1], root_id=uuid))
        stream.extend((kind, uuid, T0 + rng.randint(0, 3), fields) for kind, fields in picked)
    ours, celerys = new_state(), State(max_tasks_in_memory=10_000)
    for state in (ours, celerys):
        for clock, (kind, uuid, at, fields) in enumerate(stream):
            state.event(Event(f'task-{kind}', uuid=uuid, hostname='w1@h', timestamp=at,
                              local_received=at + 0.5, clock=clock, **fields))
    kept = sorted(ours.Task.kept_fields)
    for uuid, task in celerys.tasks.items():
        mine = ours.tasks.data[uuid]
        assert {name: getattr(mine, name) for name in kept} == \
            {name: getattr(task, name) for name in kept}, uuid
        if mine.root_id == uuid:
            assert mine.root_id is mine.uuid


def test_events_of_many_shapes_keep_what_celery_keeps_and_names_are_interned(monkeypatch):
    """Which keys of an event a task keeps is worked out once per shape of event
    (its keys, in order); shapes beyond the limit are forgotten and worked out again."""
    from celery.events.state import State

    from flower.utils import task_event
    monkeypatch.setattr(task_event, 'SHAPES_KEPT', 2)
    monkeypatch.setattr(task_event, '_shapes', {})
    ours, celerys = new_state(), State(max_tasks_in_memory=10_000)
    for state in (ours, celerys):
        for number in range(30):
            stray = {f'stray{number % 7}': number, 'exchange': ''.join(['e', 'x'])}
            if number % 3:
                stray['result'] = str(number)
            state.event(Event('task-received', uuid=f'u{number}', hostname='w1@h',
                              timestamp=T0 + number, local_received=T0 + number, clock=number,
                              name=''.join(['tasks.', 'add']), retries=number, **stray))
    for uuid, task in celerys.tasks.items():
        mine = ours.tasks.data[uuid]
        assert {name: getattr(mine, name) for name in ours.Task.kept_fields} == \
            {name: getattr(task, name) for name in ours.Task.kept_fields}, uuid
        assert mine.name is sys.intern('tasks.add') and mine.exchange is sys.intern('ex')
        assert not hasattr(mine, 'stray1')
    assert all(len(shapes) <= 2 for shapes in task_event._shapes.values())


def test_a_task_event_from_a_drifting_clock_is_warned_about_as_celery_does(caplog):
    """Celery's state warns once per worker whose event times are far from the times
    they arrived at; flower applies task events with its own code and warns alike."""
    state = new_state()
    hostname = f'drifting-{random.random()}@h'  # Celery warns once per host name
    state.event(Event('task-received', uuid='d1', hostname=hostname, timestamp=T0,
                      local_received=T0 + 60.4, clock=1, name='tasks.add'))
    assert f'Substantial drift from {hostname}' in caplog.text
    assert 'Current drift is 60 seconds' in caplog.text
    assert state.workers[hostname].heartbeats == [T0]
