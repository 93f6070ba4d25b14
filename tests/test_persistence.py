"""The ``--persistent`` task history (flower.store, flower.events.Events).

These tests drive a real :class:`Events` on a real SQLite file, feeding its
state the events a worker sends; some do the same to a real Flower
app and read its API, its tasks page's data and the file itself. The kill -9
test, with real workers, is in ``test_persistence_kill.py``.
"""
import asyncio
import concurrent.futures
import glob
import json
import logging
import os
import sqlite3
import threading
import time
import urllib.parse

import celery
import pytest
from celery.events import Event
from tornado.ioloop import IOLoop

from flower.events import Events
from flower.metrics import PrometheusMetrics
from flower.store import TaskStore
from flower.store_open import open_store
from flower.utils.tasks import (
    SORT_FIELDS, as_dict, count_tasks, get_task_by_id, iter_tasks, sort_tasks,
)
from tests.support.flower import FlowerServer
from tests.support.history_stores import StoredHistory
from tests.support.waiting import wait_for

NOW = time.time()


def make_events(path, max_tasks=10_000, **options):
    return Events(celery.Celery(broker='memory://'), IOLoop.current(), db=str(path),
                  persistent=True, enable_events=False, max_tasks_in_memory=max_tasks,
                  metrics=PrometheusMetrics(), **options)


class Worker:
    """Sends the events of a worker named ``hostname`` running tasks."""

    def __init__(self, state, hostname='w1@h'):
        self.state = state
        self.hostname = hostname
        self.clock = 0

    def send(self, kind, **fields):
        self.clock += 1
        fields.setdefault('timestamp', NOW)
        self.state.event(Event(kind, hostname=self.hostname, local_received=fields['timestamp'],
                               clock=self.clock, **fields))

    def run(self, uuid, name='tasks.add', args='(1, 2)', fail=False, at=NOW, runtime=0.5):
        self.send('task-received', uuid=uuid, name=name, args=args, kwargs="{'x': 1}",
                  retries=0, eta=None, expires=None, root_id=uuid, parent_id=None, timestamp=at)
        self.send('task-started', uuid=uuid, timestamp=at + 0.5)
        if fail:
            self.send('task-failed', uuid=uuid, exception="ValueError('boom')",
                      traceback='Traceback (most recent call last):\n ValueError: boom',
                      timestamp=at + 1)
        else:
            self.send('task-succeeded', uuid=uuid, result='3', runtime=runtime, timestamp=at + 1)


async def written(events):
    """Flush and wait until the writer thread is done."""
    events.flush_state()
    while events.history._writing:
        await asyncio.sleep(0.01)


def run(coroutine_function, *args):
    """Run the scenario on an event loop of its own thread (the test session's thread
    may already run one, e.g. for browser tests)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine_function(*args)).result()


def tasks_of(events):
    return {uuid: as_dict(task) for uuid, task in iter_tasks(events)}


def test_restart_restores_tasks_workers_and_counters(history_db):
    path = history_db.db

    async def first_life():
        events = make_events(path)
        events.open_history()
        worker = Worker(events.state)
        worker.send('worker-online', freq=2.0, sw_ident='py-celery', sw_ver='5.4', sw_sys='Linux')
        for number in range(30):
            worker.run(f'task-{number}', fail=number % 7 == 0, at=NOW + number)
        worker.run('child', name='tasks.mul')
        events.state.event(Event('task-received', uuid='child2', hostname='w1@h', clock=999,
                                 timestamp=NOW, local_received=NOW, name='tasks.mul',
                                 parent_id='task-3', root_id='task-3'))
        await written(events)
        snapshot = tasks_of(events), dict(events.state.counter['w1@h'])
        events.stop()
        return snapshot

    async def second_life():
        events = make_events(path)
        events.open_history()
        restored = tasks_of(events), dict(events.state.counter['w1@h'])
        worker = events.state.workers['w1@h']
        info = (worker.sw_ident, worker.freq)
        Worker(events.state).run('after-restart', at=NOW + 100)
        order = [uuid for uuid, _ in iter_tasks(events, limit=2)]
        events.stop()
        return restored, info, order

    before = run(first_life)
    after, worker_info, order = run(second_life)

    assert after == before
    assert after[0]['task-0']['state'] == 'FAILURE' and 'ValueError' in after[0]['task-0'][
        'traceback']
    assert after[0]['task-3']['children'] == ['child2']
    assert after[1]['task-received'] == 32 and after[1]['task-failed'] == 5
    assert worker_info == ('py-celery', 2.0)
    assert order == ['after-restart', 'child2']  # new tasks still list first


def test_a_purged_worker_stays_forgotten_after_a_restart(broker_url, history_db):
    with persistent_flower(broker_url, history_db.db) as flower:
        wait_for(lambda: flower.call(lambda: flower.app.events.history.writes_changes),
                 what='the history written by this Flower')

        def two_workers():
            for hostname in ('kept@h', 'purged@h'):
                Worker(flower.app.events.state, hostname).run(f'task-of-{hostname}')
        flower.call(two_workers)
        wait_for(lambda: {name for (name,) in history_db.query('SELECT hostname FROM workers')}
                 == {'kept@h', 'purged@h'}, what='both workers written')
        flower.call(flower.app.forget_worker, 'purged@h')
        wait_for(lambda: history_db.query('SELECT hostname FROM workers') == [('kept@h',)],
                 what='the purged worker deleted from the history')
        assert history_db.query('SELECT DISTINCT hostname FROM counters') == [('kept@h',)]

    async def restarted():
        events = make_events(history_db.db)
        events.open_history()
        known = set(events.state.workers), set(events.state.counter)
        events.stop()
        return known

    assert run(restarted) == ({'kept@h'}, {'kept@h'})


@pytest.mark.parametrize('damage', ['truncated', 'garbage', 'foreign'])
def test_a_damaged_or_foreign_file_is_moved_aside_with_one_warning(tmp_path, caplog, damage):
    path = tmp_path / 'history.db'
    if damage == 'garbage':
        path.write_bytes(os.urandom(20_000))
    elif damage == 'foreign':
        connection = sqlite3.connect(path)
        connection.execute('CREATE TABLE invoices (id INTEGER, total REAL)')
        connection.commit()
        connection.close()
    else:
        async def fill():
            events = make_events(path)
            events.open_history()
            worker = Worker(events.state)
            for number in range(3000):
                worker.run(f'task-{number}', args='(' + 'x' * 200 + ',)')
            await written(events)
            events.stop()
        run(fill)
        size = path.stat().st_size
        with open(path, 'r+b') as history:
            history.truncate(size // 2)
    original = path.read_bytes()
    caplog.clear()  # a slow write while filling may have warned: only the start again counts

    async def start_again():
        events = make_events(path)
        with caplog.at_level(logging.WARNING):
            events.open_history()
        count = count_tasks(events)
        Worker(events.state).run('fresh')
        await written(events)
        events.stop()
        return count

    assert run(start_again) == (0, 0)
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1, [record.getMessage() for record in warnings]
    assert 'moved to' in warnings[0].getMessage() and str(path) in warnings[0].getMessage()
    [aside] = glob.glob(f'{path}.unreadable-*[0-9]')
    with open(aside, 'rb') as moved:
        assert moved.read() == original
    assert TaskStore(str(path)).get_task('fresh') is not None


def test_a_missing_file_starts_a_new_history_without_warning(tmp_path, caplog):
    path = tmp_path / 'new' / 'history.db'
    path.parent.mkdir()

    async def start():
        events = make_events(path)
        with caplog.at_level(logging.WARNING):
            events.open_history()
        events.stop()

    run(start)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert path.exists()


def test_events_during_a_write_are_neither_lost_nor_applied_twice(history_db):
    path = history_db.db
    write_started, release = threading.Event(), threading.Event()

    async def scenario():
        events = make_events(path)
        events.open_history()
        real_write = events.store.write

        def slow_write(**batch):
            write_started.set()
            release.wait(10)
            return real_write(**batch)

        events.store.write = slow_write
        worker = Worker(events.state)
        for number in range(50):
            worker.run(f'first-{number}')
        worker.send('task-received', uuid='waiting', name='tasks.add', args='()', kwargs='{}')
        events.flush_state()
        await asyncio.get_running_loop().run_in_executor(None, write_started.wait, 10)
        # While the first batch is being written: new tasks, and old ones changing.
        for number in range(50):
            worker.run(f'second-{number}')
        worker.send('task-revoked', uuid='waiting', terminated=False)
        events.flush_state()  # skipped: a write is in progress; nothing is lost
        release.set()
        while events.history._writing:
            await asyncio.sleep(0.01)
        events.store.write = real_write
        await written(events)
        expected = tasks_of(events), dict(events.state.counter['w1@h'])
        events.stop()
        return expected

    expected_tasks, expected_counter = run(scenario)
    assert expected_counter == {'task-received': 101, 'task-started': 100,
                                'task-succeeded': 100, 'task-revoked': 1}

    async def reopen():
        events = make_events(path)
        events.open_history()
        restored = tasks_of(events), dict(events.state.counter['w1@h'])
        events.stop()
        return restored

    restored_tasks, restored_counter = run(reopen)
    assert restored_tasks == expected_tasks
    assert restored_tasks['waiting']['state'] == 'REVOKED'
    assert restored_counter == expected_counter
    assert history_db.query('SELECT count(*), count(DISTINCT uuid) FROM tasks') == [(101, 101)]


def retained(history_db, first, then, **options):
    """Run ``first(worker)``, write, ``then(worker)``, write (retention applies to
    memory before each write, to the file during it); return the uuids kept in
    memory and in the file."""
    async def scenario():
        events = make_events(history_db.db, **options)
        events.open_history()
        worker = Worker(events.state)
        first(worker)
        await written(events)
        then(worker)
        await written(events)
        in_memory = {uuid for uuid, _ in iter_tasks(events)}
        events.stop()
        return in_memory

    in_memory = run(scenario)
    return in_memory, history_db.stored_uuids()


def test_retention_by_count_keeps_the_newest(history_db):
    def hundred(worker):
        for number in range(100):
            worker.run(f'task-{number:03d}', at=NOW + number)

    in_memory, stored = retained(history_db, hundred,
                                 lambda worker: worker.run('task-100', at=NOW + 100),
                                 db_max_tasks=40)

    newest = {f'task-{number:03d}' for number in range(61, 101)}
    assert stored == newest
    assert in_memory == newest


def test_retention_by_age_forgets_old_tasks_and_keeps_new_ones(history_db):
    def old_and_new(worker):
        for number in range(20):
            worker.run(f'old-{number}', at=time.time() - 7200 - number)
        for number in range(20):
            worker.run(f'new-{number}', at=time.time() - 60)

    in_memory, stored = retained(history_db, old_and_new,
                                 lambda worker: worker.run('newest', at=time.time()),
                                 db_max_age=3600)

    expected = {f'new-{number}' for number in range(20)} | {'newest'}
    assert stored == expected
    assert in_memory == expected


def test_search_and_lookup_reach_tasks_no_longer_in_memory(history_db):
    path = history_db.db

    async def scenario():
        events = make_events(path, max_tasks=10)
        events.open_history()
        worker = Worker(events.state)
        worker.run('needle-task', args="('needle',)", at=NOW)
        for number in range(50):
            worker.run(f'task-{number:02d}', name='tasks.mul' if number % 2 else 'tasks.add',
                       at=NOW + 1 + number)
        await written(events)
        assert 'needle-task' not in events.state.tasks.data
        found = [uuid for uuid, _ in iter_tasks(events, search='needle')]
        looked_up = as_dict(get_task_by_id(events, 'needle-task'))
        counts = count_tasks(events), count_tasks(events, search='needle'), \
            count_tasks(events, type='tasks.mul')
        listing = [uuid for uuid, _ in iter_tasks(events, type='tasks.add', offset=3, limit=4)]
        events.stop()
        return found, looked_up, counts, listing

    found, looked_up, counts, listing = run(scenario)
    assert found == ['needle-task']
    assert (looked_up['args'], looked_up['state'], looked_up['worker']) == \
        ("('needle',)", 'SUCCESS', 'w1@h')
    assert looked_up['received'] == NOW and looked_up['result'] == '3'
    assert counts == ((51, 51), (51, 1), (51, 25))
    # tasks.add: task-48, -46, ... newest first; memory holds task-40..49 only.
    assert listing == ['task-42', 'task-40', 'task-38', 'task-36']


def test_a_task_back_in_memory_is_listed_and_counted_once(history_db):
    """A late event for a task that left memory brings it back as the newest task,
    with its stored fields; its stored row must not be listed or counted a second time."""
    path = history_db.db

    async def scenario():
        events = make_events(path, max_tasks=3)
        events.open_history()
        worker = Worker(events.state)
        for number in range(6):
            worker.send('task-received', uuid=f'task-{number}', name='tasks.add',
                        args='()', kwargs='{}', retries=0, timestamp=NOW + number)
        await written(events)
        assert 'task-0' not in events.state.tasks.data
        worker.send('task-succeeded', uuid='task-0', result='3', runtime=1.0,
                    timestamp=NOW + 10)
        await written(events)
        listings = ([uuid for uuid, _ in iter_tasks(events)],
                    [uuid for uuid, _ in iter_tasks(events, sort_by='-received')],
                    [uuid for uuid, _ in iter_tasks(events, state='SUCCESS', type='tasks.add')])
        counts = count_tasks(events), count_tasks(events, state='SUCCESS')
        back = as_dict(events.state.tasks.data['task-0'])
        events.stop()
        return listings, counts, back

    (newest_first, by_received, succeeded), counts, back = run(scenario)
    assert newest_first == ['task-0', 'task-5', 'task-4', 'task-3', 'task-2', 'task-1']
    assert by_received == ['task-5', 'task-4', 'task-3', 'task-2', 'task-1', 'task-0']
    assert succeeded == ['task-0']
    assert counts == ((6, 6), (6, 1))
    # What the late event lacked comes from the history; what it carried wins.
    assert (back['name'], back['args'], back['received']) == ('tasks.add', '()', NOW)
    assert (back['state'], back['result'], back['runtime']) == ('SUCCESS', '3', 1.0)


@pytest.mark.parametrize('write_before_it_comes_back', ['nothing', 'a write under way'])
def test_a_task_that_left_memory_before_it_was_written_comes_back_whole(
        history_db, write_before_it_comes_back):
    async def scenario():
        events = make_events(history_db.db, max_tasks=3)
        events.open_history()
        worker = Worker(events.state)
        for number in range(6):
            worker.send('task-received', uuid=f'task-{number}', name='tasks.add',
                        args=f'({number},)', kwargs='{}', retries=0, timestamp=NOW + number)
        assert 'task-0' not in events.state.tasks.data
        if write_before_it_comes_back != 'nothing':
            events.flush_state()  # the event below comes while the batch is written
        worker.send('task-succeeded', uuid='task-0', result='3', runtime=1.0,
                    timestamp=NOW + 10)
        await written(events)
        await written(events)
        back = as_dict(events.state.tasks.data['task-0'])
        events.stop()
        return back, history_db.query('SELECT name, args, state FROM tasks WHERE uuid = ?',
                                      ('task-0',))

    back, stored = run(scenario)
    assert (back['name'], back['args'], back['received']) == ('tasks.add', '(0,)', NOW)
    assert (back['state'], back['result']) == ('SUCCESS', '3')
    assert stored == [('tasks.add', '(0,)', 'SUCCESS')]


def test_a_task_that_left_memory_is_found_before_and_while_it_is_written(history_db):
    """Between leaving memory and its row being written, a task is still found: in the
    next batch, then in the one being written."""
    from flower.tasks import Tasks

    async def scenario():
        events = make_events(history_db.db, max_tasks=2)
        events.open_history()
        worker = Worker(events.state)
        for number in range(4):
            worker.run(f'task-{number}', args=f'({number},)')
        tasks = Tasks(events.state, events.store)
        assert 'task-0' not in events.state.tasks.data
        found = [tasks.get('task-0')]
        events.flush_state()  # now in the batch being written
        found.append(tasks.get('task-0'))
        await written(events)
        found.append(tasks.get('task-0'))
        events.stop()
        return [(task.uuid, task.args, task.state) for task in found]

    assert run(scenario) == [('task-0', '(0,)', 'SUCCESS')] * 3


def test_stopping_during_a_background_restore_keeps_the_history(history_db):
    path = history_db.db

    async def fill():
        events = make_events(path)
        events.open_history()
        worker = Worker(events.state)
        for number in range(30):
            worker.run(f'task-{number}')
        await written(events)
        events.stop()

    async def stop_early():
        events = make_events(path)
        events.history.restore_chunk_size = 10
        events.open_history(in_background=True)
        events.on_event(Event('task-received', uuid='late', hostname='w1@h', clock=1,
                              timestamp=NOW, local_received=NOW, name='tasks.add'))
        events.stop()  # before the IO loop ran a single restore chunk
        return events.ingest_stats()

    async def reopen():
        events = make_events(path)
        events.open_history()
        kept = len(events.state.tasks)
        events.stop()
        return kept

    run(fill)
    stats = run(stop_early)
    assert (stats['received'], stats['applied'], stats['dropped']) == (1, 0, 1)
    assert run(reopen) == 30


def test_text_utf_8_cannot_carry_does_not_stop_the_history(history_db):
    path = history_db.db
    odd = os.fsdecode(b'caf\xe9.txt')  # a lone surrogate, as Python decodes such a file name

    async def first_life():
        events = make_events(path)
        events.open_history()
        worker = Worker(events.state)
        worker.run('odd', args=f"('{odd}',)", fail=True)
        await written(events)
        worker.run('after', at=NOW + 5)
        await written(events)
        events.stop()

    async def second_life():
        events = make_events(path)
        events.open_history()
        restored = tasks_of(events)
        events.stop()
        return restored

    run(first_life)
    restored = run(second_life)
    assert set(restored) == {'odd', 'after'}
    assert restored['odd']['args'] == "('caf\\udce9.txt',)"
    assert restored['after']['state'] == 'SUCCESS'


def persistent_flower(broker_url, path, **options):
    """A real Flower app with ``--persistent --db=path``; the test feeds its events."""
    return FlowerServer(broker_url, persistent=True, db=str(path), enable_events=False,
                        **options)


def stored_uuids(path):
    """The uuids in the history file, read through a connection of our own."""
    return StoredHistory('sqlite', str(path)).stored_uuids()


def timed_tasks():
    """``{uuid: runtime}``, oldest task first: distinct runtimes in no creation order,
    one tie (an old and a new task), and four failed tasks without a runtime."""
    runtimes = {f'task-{number:02d}': round(0.1 + (number * 7 % 24) / 10, 1)
                for number in range(24)}
    runtimes['task-21'] = runtimes['task-02']
    for number in (3, 11, 17, 22):
        runtimes[f'task-{number:02d}'] = None
    return runtimes


def documented_order(runtimes, descending=False):
    """By runtime, equal runtimes newest first, tasks without a runtime last (newest first)."""
    newest_first = list(reversed(runtimes))
    timed = sorted((uuid for uuid in newest_first if runtimes[uuid] is not None),
                   key=runtimes.get, reverse=descending)
    return timed + [uuid for uuid in newest_first if runtimes[uuid] is None]


def feed_timed_tasks(state, runtimes):
    worker = Worker(state)
    for number, (uuid, runtime) in enumerate(runtimes.items()):
        marked = "'marked', " if number % 3 == 0 else ''
        worker.run(uuid, args=f'({marked}{number})', fail=runtime is None, runtime=runtime,
                   at=NOW + number)


def api_listing(flower, **params):
    status, body = flower.get('/api/tasks?' + urllib.parse.urlencode(params))
    assert status == 200, body
    return list(json.loads(body))


def datatable_page(flower, start, direction):
    params = {'draw': 1, 'start': start, 'length': 10, 'order[0][column]': 0,
              'order[0][dir]': direction, 'columns[0][data]': 'runtime'}
    status, body = flower.get('/tasks/datatable?' + urllib.parse.urlencode(params))
    assert status == 200, body
    return json.loads(body)


def every_datatable_row(flower, direction):
    """Page through the table as the browser does, up to ``recordsFiltered``."""
    first = datatable_page(flower, 0, direction)
    pages = [first] + [datatable_page(flower, start, direction)
                       for start in range(10, first['recordsFiltered'], 10)]
    return first['recordsFiltered'], [task['uuid'] for page in pages for task in page['data']]


def test_sorted_listings_cover_the_stored_history(broker_url, history_db, monkeypatch):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    runtimes = timed_tasks()
    with persistent_flower(broker_url, history_db.db, max_tasks=5) as flower:
        # On PostgreSQL a Flower writes once it leads (see docs/replicas.rst); alone, at once.
        wait_for(lambda: flower.call(lambda: flower.app.events.history.writes_changes),
                 what='the history written by this Flower')
        flower.call(feed_timed_tasks, flower.app.events.state, runtimes)
        wait_for(lambda: history_db.stored_uuids() == set(runtimes), what='every task written')
        assert len(flower.call(lambda: flower.app.events.state.tasks)) == 5

        ascending, descending = documented_order(runtimes), documented_order(runtimes, True)
        assert api_listing(flower, sort_by='runtime') == ascending
        assert api_listing(flower, sort_by='-runtime') == descending
        pages = [api_listing(flower, sort_by='-runtime', offset=offset, limit=7)
                 for offset in range(0, 28, 7)]
        assert sum(pages, []) == descending
        succeeded = [uuid for uuid in ascending if runtimes[uuid] is not None]
        assert api_listing(flower, sort_by='runtime', state='SUCCESS') == succeeded
        marked = [uuid for uuid in descending if int(uuid[-2:]) % 3 == 0]
        assert api_listing(flower, sort_by='-runtime', search='args:marked') == marked
        assert every_datatable_row(flower, 'asc') == (24, ascending)
        assert every_datatable_row(flower, 'desc') == (24, descending)


def test_every_sort_field_orders_memory_and_history_as_one_listing(history_db):
    async def scenario():
        events = make_events(history_db.db, max_tasks=6)
        events.open_history()
        events.store.sorted_chunk_size = 4  # the 18 stored tasks are read in several chunks
        feed_timed_tasks(events.state, timed_tasks())
        await written(events)
        newest_first = list(iter_tasks(events))
        listings = {}
        for sort_by in [*SORT_FIELDS, *(f'-{field}' for field in SORT_FIELDS)]:
            expected = [uuid for uuid, _ in sort_tasks(newest_first, sort_by)]
            listings[sort_by] = (expected,
                                 [uuid for uuid, _ in iter_tasks(events, sort_by=sort_by)],
                                 [uuid for uuid, _ in iter_tasks(events, sort_by=sort_by,
                                                                 offset=4, limit=5)])
        events.stop()
        return listings

    for sort_by, (expected, listed, page) in run(scenario).items():
        assert (listed, page) == (expected, expected[4:9]), sort_by


def test_stored_tasks_are_ordered_by_known_columns_only(history_db):
    store = open_store(history_db.db)
    with pytest.raises(ValueError, match='cannot be ordered'):
        list(store.older_tasks(1, order_by='runtime; DROP TABLE tasks'))
    store.close()


def feed_just_after_a_write(flower, path):
    """Feed a task, wait for the write that stores it, then at once feed ``probe``: the
    next write, which stores the probe, is a whole flush interval away."""
    worker = Worker(flower.app.events.state)
    flower.call(worker.run, 'first')
    wait_for(lambda: 'first' in stored_uuids(path), timeout=15, interval=0.05,
             what='the first write')
    flower.call(worker.run, 'probe')


def test_state_save_interval_sets_how_often_the_history_is_written(broker_url, tmp_path):
    path = tmp_path / 'history.db'
    with persistent_flower(broker_url, path, state_save_interval=4000) as flower:
        feed_just_after_a_write(flower, path)
        with pytest.raises(AssertionError, match='timed out'):
            wait_for(lambda: 'probe' in stored_uuids(path), timeout=1, interval=0.05)
        wait_for(lambda: 'probe' in stored_uuids(path), timeout=6, interval=0.05,
                 what='the next write, one interval later')


def test_the_history_is_written_every_second_by_default(broker_url, tmp_path):
    path = tmp_path / 'history.db'
    with persistent_flower(broker_url, path) as flower:
        feed_just_after_a_write(flower, path)
        wait_for(lambda: 'probe' in stored_uuids(path), timeout=2, interval=0.05,
                 what='the next write, a second later')


def test_a_write_slower_than_the_flush_interval_is_warned_about_once_a_minute(tmp_path, caplog):
    path = tmp_path / 'history.db'

    async def scenario():
        events = make_events(path, state_save_interval=50)
        events.open_history()
        real_write = events.store.write

        def slow_write(**batch):
            time.sleep(0.2)
            return real_write(**batch)

        events.store.write = slow_write
        worker = Worker(events.state)
        for round_number in range(3):
            worker.run(f'slow-{round_number}')
            await written(events)
        events.store.write = real_write
        events.stop()

    with caplog.at_level(logging.WARNING, logger='flower.history'):
        run(scenario)
    warnings = [record.getMessage() for record in caplog.records
                if 'longer than the flush interval' in record.getMessage()]
    assert len(warnings) == 1, warnings
    assert 'state_save_interval, 50 ms' in warnings[0]
