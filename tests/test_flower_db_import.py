"""The original Flower's ``--persistent --db`` shelve comes along (issue 16).

One real Flower 2.2.0 per module, on a private Redis with a real worker
running a few tasks, is stopped with SIGTERM so that it saves its shelve;
each test copies its files and starts our Flower on the same ``--db`` path.
Here Flower 2.2.0 runs on a Python with ``dbm.dumb`` only, so it writes
``<db>.dat``, ``<db>.dir`` and ``<db>.bak``.
"""
import asyncio
import concurrent.futures
import dbm.dumb
import glob
import logging
import os
import pickle
import shutil
import signal
import sqlite3

import celery
import pytest
import requests
from tornado.ioloop import IOLoop
from tornado.options import options

from flower.command_history import check_history_options
from flower.events import Events
from flower.flower_db_import import check_shelve, history_file, shelve_kind
from flower.metrics import PrometheusMetrics
from flower.history_file import NotAHistory
from flower.utils.tasks import count_tasks
from tests.support.api_cluster import Api, Cluster
from tests.support.artifacts import ARTIFACTS_ROOT
from tests.support.flower22 import launch_flower22
from tests.support.waiting import wait_for

SHELVE_FILES = ('flower.db.bak', 'flower.db.dat', 'flower.db.dir')
#: The task fields both Flowers answer, compared value for value.
COMPARED_FIELDS = ('name', 'state', 'received', 'sent', 'started', 'succeeded', 'failed',
                   'args', 'kwargs', 'result', 'exception', 'traceback', 'timestamp', 'runtime',
                   'retries', 'worker', 'client', 'exchange', 'routing_key', 'root_id',
                   'parent_id', 'clock', 'eta', 'expires')


class Flower22Run:
    """What the module's Flower 2.2.0 left: its shelve files and what it answered."""

    def __init__(self, directory, cluster, worker, tasks, infos):
        self.directory = directory
        self.cluster = cluster
        self.worker = worker
        self.tasks = tasks
        self.infos = infos

    def copy_to(self, path):
        """The shelve's files copied into ``path``; returns the ``--db`` to give."""
        for name in SHELVE_FILES:
            shutil.copy2(os.path.join(self.directory, name), path / name)
        return str(path / 'flower.db')


class Flower22Api:
    """GETs against Flower 2.2.0 (its answers are its own: not checked against our API's
    OpenAPI document as :class:`Api` does)."""

    def __init__(self, port):
        self.base_url = f'http://127.0.0.1:{port}'

    def get(self, path):
        return requests.get(self.base_url + path, timeout=30)


def run_tasks_until_flower_sees_them(cluster, api):
    """Send tasks once Flower 2.2.0 receives events (it may connect after it answers HTTP)."""
    def probe_seen():
        probe = cluster.client.send_task('tasks.add', (0, 0))
        probe.get(timeout=10)
        return probe.id in api.get('/api/tasks').json()

    wait_for(probe_seen, timeout=30, what="Flower 2.2.0 to receive task events")
    sent = [cluster.client.send_task('tasks.add', (2, 3)),
            cluster.client.send_task('tasks.error', ('bad input',)),
            cluster.client.send_task('worker_only.repeat', ('ab', 3)),
            cluster.client.send_task('tasks.echo', ({'key': [1, 2]},), kwargs={})]
    for result in sent:
        result.get(timeout=10, propagate=False)
    done = {'SUCCESS', 'FAILURE'}
    wait_for(lambda: all(api.get('/api/tasks').json().get(result.id, {}).get('state') in done
                         for result in sent), what="Flower 2.2.0 to see every task finish")


@pytest.fixture(scope='module')
def flower22_run(flower22_celery):
    log_dir = os.path.join(ARTIFACTS_ROOT, 'flower-db-import')
    with Cluster(log_dir) as cluster:
        [worker] = cluster.start_workers({'name': 'import@localhost', 'concurrency': 1})
        directory = os.path.join(log_dir, 'flower22')
        os.makedirs(directory)
        flower = launch_flower22(flower22_celery, cluster.url,
                                 os.path.join(log_dir, 'flower22.log'), '--persistent=True',
                                 f'--db={directory}/flower.db')
        try:
            api = Flower22Api(flower.port)
            run_tasks_until_flower_sees_them(cluster, api)
            tasks = api.get('/api/tasks').json()
            infos = {uuid: api.get(f'/api/task/info/{uuid}').json() for uuid in tasks}
        finally:
            assert flower.stop(signal.SIGTERM) == 0, flower.log()
        worker.stop()  # nothing may change the counters Flower 2.2.0 saved
        yield Flower22Run(directory, cluster, worker, tasks, infos)


def test_flower_2_2_0_saves_a_dumb_dbm_shelve_beside_the_db_path(flower22_run):
    names = sorted(name for name in os.listdir(flower22_run.directory))
    assert names == list(SHELVE_FILES)
    assert shelve_kind(os.path.join(flower22_run.directory, 'flower.db')) == 'dbm.dumb'


def file_bytes(directory):
    return {name: (directory / name).read_bytes() for name in SHELVE_FILES
            if (directory / name).exists()}


def test_the_first_start_imports_what_flower_2_2_0_showed_and_keeps_the_shelve(
        flower22_run, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    db = flower22_run.copy_to(tmp_path)
    original = file_bytes(tmp_path)
    cluster = flower22_run.cluster
    with caplog.at_level(logging.INFO, logger='flower'):
        flower = cluster.start_flower(persistent=True, db=db, enable_events=False)
    try:
        api = Api(flower)
        listed = api.get('/api/tasks').json()
        assert set(listed) == set(flower22_run.tasks)
        for uuid, shown in flower22_run.infos.items():
            ours = api.get(f'/api/task/info/{uuid}').json()
            assert {field: ours.get(field) for field in COMPARED_FIELDS} == \
                {field: shown.get(field) for field in COMPARED_FIELDS}, uuid
            assert {field: listed[uuid].get(field) for field in COMPARED_FIELDS} == \
                {field: shown.get(field) for field in COMPARED_FIELDS}, uuid
        hostname = flower22_run.worker.hostname
        counter = flower.call(lambda: dict(flower.app.events.state.counter[hostname]))
        states = [task['state'] for task in flower22_run.tasks.values()]
        assert (counter['task-succeeded'], counter['task-failed']) == \
            (states.count('SUCCESS'), states.count('FAILURE')) and states.count('FAILURE') == 1
        assert flower.call(lambda: hostname in flower.app.events.state.workers)
    finally:
        flower.stop()
        cluster.flowers.remove(flower)
    assert file_bytes(tmp_path) == original, "the shelve was changed"
    assert history_file(db) == db  # the history took the free --db path itself
    imported = [record.getMessage() for record in caplog.records if 'Imported' in record.getMessage()]
    assert imported == [f"Imported {len(states)} tasks and 1 workers from the Flower shelve {db} into "
                        f"the task history {db}; the shelve is left as it was"]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def make_events(db):
    return Events(celery.Celery(broker='memory://'), IOLoop.current(), db=db, persistent=True,
                  enable_events=False, max_tasks_in_memory=10_000, metrics=PrometheusMetrics())


def start_and_stop(db):
    """Open ``db`` as our Flower does; return the tasks and counters it then holds."""
    async def scenario():
        events = make_events(db)
        events.open_history()
        found = (count_tasks(events)[0],
                 {host: dict(counts) for host, counts in events.state.counter.items()})
        events.stop()
        return found

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario()).result()


def test_a_second_start_does_not_import_again(flower22_run, tmp_path, caplog):
    db = flower22_run.copy_to(tmp_path)
    assert start_and_stop(db)[0] == len(flower22_run.tasks)
    forgotten = next(iter(flower22_run.tasks))
    with sqlite3.connect(db) as connection:
        connection.execute('DELETE FROM tasks WHERE uuid = ?', (forgotten,))
    connection.close()
    with caplog.at_level(logging.INFO, logger='flower'):
        assert start_and_stop(db)[0] == len(flower22_run.tasks) - 1
    assert not [record for record in caplog.records if 'Imported' in record.getMessage()]


def test_a_shelve_without_counters_or_backup_file_imports_its_tasks(flower22_run, tmp_path):
    db = flower22_run.copy_to(tmp_path)
    shelve = dbm.dumb.open(db, 'w')
    del shelve[b'counter']
    shelve.close()
    os.remove(db + '.bak')
    count, counters = start_and_stop(db)
    assert count == len(flower22_run.tasks)
    assert counters == {}
    assert sorted(os.listdir(tmp_path)) == ['flower.db', 'flower.db.dat', 'flower.db.dir']


class RunsACommand:
    """A pickle that would run a shell command if unpickled without restrictions."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


@pytest.mark.parametrize('damage', ['truncated', 'garbled-index', 'foreign-pickle'])
def test_a_damaged_shelve_is_moved_aside_with_one_warning(flower22_run, tmp_path, caplog, damage):
    db = flower22_run.copy_to(tmp_path)
    marker = tmp_path / 'command-ran'
    if damage == 'truncated':
        os.truncate(db + '.dat', os.path.getsize(db + '.dat') // 2)
    elif damage == 'garbled-index':
        with open(db + '.dir', 'wb') as index:
            index.write(b"'events', (0, \x07\x13 not an index\n")
    else:
        shelve = dbm.dumb.open(db, 'w')
        shelve[b'events'] = pickle.dumps(RunsACommand(marker))
        shelve.close()
    damaged = file_bytes(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert start_and_stop(db) == (0, {})
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno >= logging.WARNING]
    assert len(warnings) == 1 and 'moved to' in warnings[0] and db in warnings[0], warnings
    [aside] = {path.rpartition('.')[0] for path in glob.glob(f'{db}.unreadable-*.dat')}
    moved = {name.replace(os.path.basename(aside), 'flower.db'): (tmp_path / name).read_bytes()
             for name in os.listdir(tmp_path) if name.startswith(os.path.basename(aside))}
    assert moved == damaged
    assert not marker.exists(), "unpickling ran a command the file named"
    assert start_and_stop(db) == (0, {})  # the new history stays; nothing to import


def test_a_shelve_this_python_cannot_open_is_refused_and_left_alone(tmp_path, monkeypatch):
    db = tmp_path / 'flower.db'
    db.write_bytes(bytes.fromhex('cd9a5713') + os.urandom(1000))  # what dbm.gnu files start with
    before = db.read_bytes()
    assert shelve_kind(str(db)) == 'dbm.gnu'
    assert history_file(str(db)) == f'{db}.sqlite'  # the shelve holds the --db path itself
    monkeypatch.setattr('flower.flower_db_import.backend_available', lambda kind: False)
    with pytest.raises(NotAHistory, match='dbm.gnu'):
        check_shelve(str(db))
    monkeypatch.setattr(options.mockable(), 'persistent', True)
    monkeypatch.setattr(options.mockable(), 'db', str(db))
    with pytest.raises(ValueError, match='--db: .*Flower shelve'):
        check_history_options(options)
    assert db.read_bytes() == before and os.listdir(tmp_path) == ['flower.db']


def test_a_history_named_like_a_dbm_file_is_not_taken_for_a_shelve(tmp_path):
    """The default ``--db=flower`` beside a ``flower.db`` history (or any SQLite file)."""
    sqlite3.connect(tmp_path / 'flower.db').execute('CREATE TABLE notes (text)').connection.close()
    db = str(tmp_path / 'flower')
    assert shelve_kind(db) is None
    check_shelve(db)
    assert history_file(db) == db
