"""The PostgreSQL history keeps unfinished tasks in ``live_tasks`` and moves each to
``tasks`` once it finishes (see :mod:`flower.store_postgres_schema`): every read
still sees the two tables as one history, and a database of schema version 2,
whose ``tasks`` holds unfinished tasks too, keeps working."""
import time

import psycopg

from flower.store import TASK_COLUMNS
from flower.store_postgres import PostgresTaskStore
from flower.store_postgres_schema import SCHEMA_VERSION

NOW = time.time()


def row(uuid, seq, state, **fields):
    fields.update(uuid=uuid, seq=seq, state=state)
    return [fields.get(column) for column in TASK_COLUMNS]


def placed(url):
    """``{uuid: table}`` of the stored tasks."""
    with psycopg.connect(url, autocommit=True) as connection:
        return dict(connection.execute(
            "SELECT uuid, 'tasks' FROM tasks UNION ALL SELECT uuid, 'live' FROM live_tasks"))


def uuids(rows):
    return [found[0] for found in rows]


def test_a_task_is_live_until_it_finishes_then_moves_whole_and_reads_see_both(postgres_url):
    store = PostgresTaskStore(postgres_url)
    received = dict(name='tasks.add', worker='w1@h', args='(1, 2)', received=NOW, timestamp=NOW)
    store.write(tasks=[row('old', 1, 'RECEIVED', **received),
                       row('done', 2, 'RECEIVED', **received, root_id='old'),
                       row('new', 3, 'STARTED', **received)])
    assert placed(postgres_url) == {'old': 'live', 'done': 'live', 'new': 'live'}
    version = store.latest_version()

    # The last write of a task carries every field, but one missing from it is taken
    # from the live row: the task moves with both.
    store.write(tasks=[row('done', 2, 'SUCCESS', result='3', runtime=0.5, timestamp=NOW + 1)])
    assert placed(postgres_url) == {'old': 'live', 'done': 'tasks', 'new': 'live'}
    [(moved_version, moved)] = store.changes_since(version, 10)
    assert moved_version > version and moved_version == store.latest_version()
    done = dict(zip(TASK_COLUMNS, moved))
    assert (done['state'], done['args'], done['name'], done['root_id'], done['result']) == \
        ('SUCCESS', '(1, 2)', 'tasks.add', 'old', '3')
    assert store.get_task('done') == moved and store.get_task('old')[3] == 'RECEIVED'

    assert store.count_tasks() == 3 and store.next_seq() == 4
    assert uuids(store.older_tasks(10)) == ['new', 'done', 'old']
    assert uuids(store.older_tasks(3)) == ['done', 'old']  # older than memory's oldest
    assert uuids(store.older_tasks(10, state='RECEIVED')) == ['old']
    assert uuids(store.older_tasks(10, order_by='-runtime', limit=2)) == ['done', 'new']
    assert uuids(store.older_tasks(10, order_by='state')) == ['old', 'new', 'done']
    assert store.count_older(10) == 3 and store.count_older(3, state='RECEIVED') == 1
    assert uuids(store.load_tasks(0).fetchmany(10)) == ['old', 'done', 'new']
    assert uuids(store.load_tasks(2).fetchmany(10)) == ['done', 'new']
    assert sorted(uuids(store.linked_tasks(['old'], 'uuid', 10))) == ['done', 'old']
    assert [uuid for _, (uuid, *_) in store.changes_since(0, 10)] == ['old', 'new', 'done']

    # Retention counts and removes the oldest of both tables.
    assert store.write(tasks=[row('newest', 4, 'RECEIVED', timestamp=NOW)], max_tasks=3) == 1
    assert placed(postgres_url) == {'done': 'tasks', 'new': 'live', 'newest': 'live'}
    assert store.write(tasks=[row('new', 3, 'STARTED', timestamp=NOW - 7200)],
                       max_tasks=3, max_age=3600) == 1
    assert placed(postgres_url) == {'done': 'tasks', 'newest': 'live'}
    assert store.count_tasks() == 2 == store.count_older(10)
    store.close()


def test_a_finished_task_written_again_stays_where_it_is(postgres_url):
    """A late event or a task back in memory rewrites a finished task: it is updated in
    ``tasks`` whatever its state, never put in both tables."""
    store = PostgresTaskStore(postgres_url)
    store.write(tasks=[row('t', 1, 'SUCCESS', name='tasks.add', result='3')])
    store.write(tasks=[row('t', 5, 'STARTED')])
    assert placed(postgres_url) == {'t': 'tasks'}
    found = dict(zip(TASK_COLUMNS, store.get_task('t')))
    assert (found['seq'], found['state'], found['name'], found['result']) == \
        (5, 'STARTED', 'tasks.add', '3')
    assert store.count_tasks() == 1 and uuids(store.older_tasks(10)) == ['t']
    store.close()


def test_a_database_of_schema_version_2_is_upgraded_and_keeps_its_unfinished_tasks(
        postgres_url):
    store = PostgresTaskStore(postgres_url)
    store.write(tasks=[row('finished', 1, 'SUCCESS', name='tasks.add'),
                       row('running', 2, 'STARTED', name='tasks.add', args='(7,)')])
    store.close()
    # Version 2 had one table for all tasks, and neither live_tasks nor the view.
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute('INSERT INTO tasks SELECT * FROM live_tasks')
        connection.execute('DROP VIEW all_tasks')
        connection.execute('DROP TABLE live_tasks')
        connection.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")

    store = PostgresTaskStore(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                                  ).fetchone() == (str(SCHEMA_VERSION),)
    assert placed(postgres_url) == {'finished': 'tasks', 'running': 'tasks'}
    assert uuids(store.older_tasks(10, state='STARTED')) == ['running']
    version = store.latest_version()
    store.write(tasks=[row('running', 2, 'SUCCESS', result='7'),
                       row('later', 3, 'RECEIVED', name='tasks.add')])
    assert placed(postgres_url) == {'finished': 'tasks', 'running': 'tasks', 'later': 'live'}
    running = dict(zip(TASK_COLUMNS, store.get_task('running')))
    assert (running['state'], running['args'], running['result']) == ('SUCCESS', '(7,)', '7')
    assert sorted(uuid for _, (uuid, *_) in store.changes_since(version, 10)) == \
        ['later', 'running']
    assert store.count_tasks() == 3 and uuids(store.older_tasks(10)) == \
        ['later', 'running', 'finished']
    store.close()


def test_an_unfinished_task_older_than_memory_is_listed_and_followed(postgres_url):
    from flower.utils.tasks import count_tasks, iter_tasks
    from tests.test_persistence import NOW as AT, Worker, make_events, run, written

    async def scenario():
        events = make_events(postgres_url, max_tasks=3)
        events.open_history()
        worker = Worker(events.state)
        worker.send('task-received', uuid='stuck', name='tasks.slow', args='()', kwargs='{}',
                    retries=0, timestamp=AT)
        worker.send('task-started', uuid='stuck', timestamp=AT + 0.5)
        for number in range(5):
            worker.run(f'task-{number}', at=AT + 1 + number)
        await written(events)
        in_memory = set(events.state.tasks.data)
        listings = ([uuid for uuid, _ in iter_tasks(events)],
                    [uuid for uuid, _ in iter_tasks(events, state='STARTED')],
                    [uuid for uuid, _ in iter_tasks(events, sort_by='-name', limit=1)])
        counts = count_tasks(events), count_tasks(events, state='STARTED')
        events.stop()
        return in_memory, listings, counts

    in_memory, (newest_first, started, by_name), counts = run(scenario)
    assert 'stuck' not in in_memory and placed(postgres_url)['stuck'] == 'live'
    assert newest_first == ['task-4', 'task-3', 'task-2', 'task-1', 'task-0', 'stuck']
    assert started == ['stuck'] and by_name == ['stuck']  # tasks.slow
    assert counts == ((6, 6), (6, 1))
    # A follower reads every change from version 0: the unfinished task among them.
    follower_store = PostgresTaskStore(postgres_url)
    followed = {uuid: state for _, (uuid, _seq, _name, state, *_)
                in follower_store.changes_since(0, 100)}
    assert followed == {'stuck': 'STARTED', **{f'task-{number}': 'SUCCESS' for number in range(5)}}
    follower_store.close()
