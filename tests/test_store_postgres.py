"""``celery flower --db=postgresql://...`` as a user runs it: real workers, a private
Redis, a private PostgreSQL (tests/support/postgres.py), a fresh database per test.

The store-level behaviours both stores share (restart, retention, listings, search)
are tested on both in test_persistence.py (the ``history_db`` fixture).
"""
import concurrent.futures
import http.client
import json
import subprocess
import sys
import urllib.request
import time
import uuid

import psycopg

from flower.store import TASK_COLUMNS
from flower.store import sorted_parts
from flower.store_postgres import PostgresTaskStore, _where
from flower.store_postgres_schema import FEW_VALUES_COLUMNS, SCHEMA_VERSION, SORTED_COLUMNS, key
from flower.store_reachability import Reachability
from tests.support.command import CELERY, FlowerProcess, get_json, wait_until
from tests.support.processes import free_port

PASSWORD = 'pg-s3cret-word'
#: (task name, args) sent to the worker; ``tasks.error`` fails.
TASKS = [('tasks.add', (number, number)) for number in range(6)] + [
    ('tasks.error', ('boom',)), ('tasks.echo', ('needle',))]
UNAVAILABLE_NOTICE = 'Task history unavailable: showing only the tasks in memory'


def with_password(url):
    """``url`` with a password (the test server trusts every local connection)."""
    return url.replace('postgresql://postgres@', f'postgresql://postgres:{PASSWORD}@')


def fetch(port, path):
    """``(status, headers, body)`` of a GET."""
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    try:
        connection.request('GET', path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def stored(url, sql):
    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(sql).fetchall()


def flower_argv(broker_url, port, *options):
    return CELERY + ['-b', broker_url, 'flower', f'--port={port}', '--address=127.0.0.1',
                     *options]


def run_flower_briefly(argv, **env):
    """Run a flower expected to refuse to start: ``(exit status, stdout, stderr)``."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                            env={'PATH': '/usr/bin:/bin', **env})
    return result.returncode, result.stdout, result.stderr


def finished(port, ids):
    tasks = get_json(port, '/api/tasks')
    return all(tasks.get(task_id, {}).get('state') in ('SUCCESS', 'FAILURE')
               for task_id in ids) and tasks


def test_history_in_postgresql_covers_evicted_tasks_and_outlives_a_restart(
        tmp_path, postgres_url, broker_url, worker_factory, celery_client):
    url = with_password(postgres_url)
    port = free_port()
    env = {'FLOWER_UNAUTHENTICATED_API': 'true'}
    # No --persistent: a PostgreSQL URL turns it on.
    argv = flower_argv(broker_url, port, f'--db={url}', '--max_tasks=3')
    flower = FlowerProcess(argv, tmp_path / 'flower-1.log', env=env)
    try:
        flower.wait_http(port)
        worker_factory(broker_url, pool='threads', concurrency=2)
        client = celery_client(broker_url)
        ids = []
        for name, args in TASKS:  # one at a time: each leaves memory finished
            ids.append(client.send_task(name, args).id)
            wait_until(lambda: finished(port, ids), timeout=30, message='the task to finish')
        before = get_json(port, '/api/tasks')
        assert list(before) == ids[::-1]
        wait_until(lambda: stored(postgres_url, 'SELECT count(*) FROM tasks') == [(len(ids),)],
                   message='every task written')

        # The first tasks left memory (--max_tasks=3): they come from PostgreSQL.
        assert list(get_json(port, '/api/tasks?state=FAILURE')) == [ids[-2]]
        added = ids[5::-1]
        assert list(get_json(port, '/api/tasks?taskname=tasks.add')) == added
        assert list(get_json(port, '/api/tasks?search=needle')) == [ids[-1]]
        by_received = sorted(ids, key=lambda task_id: before[task_id]['received'], reverse=True)
        assert list(get_json(port, '/api/tasks?sort_by=-received')) == by_received
        assert list(get_json(port, '/api/tasks?sort_by=-received&offset=5&limit=2')) == \
            by_received[5:7]
        oldest_added = added[-1]  # long out of memory
        status, _, page = fetch(port, f'/task/{oldest_added}')
        assert status == 200 and oldest_added in page and 'tasks.add' in page
        health = get_json(port, '/healthcheck?verbose=1')
        assert health['history']['available'] is True and PASSWORD not in json.dumps(health)
    finally:
        flower.stop()

    # The same database from the environment this time.
    restarted = FlowerProcess(flower_argv(broker_url, port), tmp_path / 'flower-2.log',
                              env={**env, 'FLOWER_DB': url})
    try:
        restarted.wait_http(port)
        assert get_json(port, '/api/tasks') == before
    finally:
        restarted.stop()
    for log in (flower.log(), restarted.log()):
        assert PASSWORD not in log
        assert 'Task history: postgresql://postgres:****@127.0.0.1:' in log


def test_requests_answer_from_memory_while_postgresql_is_down_and_changes_are_written_back(
        tmp_path, postgres_cluster, broker_url, worker_factory, celery_client):
    url = postgres_cluster.url(postgres_cluster.create_database())
    port = free_port()
    flower = FlowerProcess(flower_argv(broker_url, port, f'--db={url}'),
                           tmp_path / 'flower.log', env={'FLOWER_UNAUTHENTICATED_API': 'true'})
    try:
        flower.wait_http(port)
        worker_factory(broker_url, pool='threads', concurrency=2)
        client = celery_client(broker_url)
        first = [client.send_task('tasks.add', (number, 1)).id for number in range(3)]
        wait_until(lambda: stored(url, 'SELECT count(*) FROM tasks') == [(3,)],
                   message='the first tasks written')

        postgres_cluster.kill()
        during = [client.send_task('tasks.add', (number, 2)).id for number in range(3)]
        wait_until(lambda: finished(port, first + during), timeout=30,
                   message='the tasks sent during the outage')
        status, headers, body = fetch(port, '/api/tasks')
        assert status == 200 and headers.get('X-Flower-History') == 'unavailable'
        assert set(json.loads(body)) == set(first + during)
        status, _, page = fetch(port, '/tasks')
        assert status == 200 and UNAVAILABLE_NOTICE in page
        revoke = urllib.request.Request(f'http://127.0.0.1:{port}/api/task/revoke/{during[0]}',
                                        method='POST')
        assert urllib.request.urlopen(revoke, timeout=30).status == 200
        status, headers, body = fetch(port, '/api/audit')
        assert status == 200 and headers.get('X-Flower-History') == 'unavailable'
        assert json.loads(body)['records'][0]['targets'] == [during[0]]
        history = get_json(port, '/healthcheck?verbose=1')['history']
        assert history['available'] is False and history['unavailable_reason']
        wait_until(lambda: get_json(port, '/healthcheck?verbose=1')['history']['writing']
                   == 'failing', message='the failing write')

        postgres_cluster.start()
        rows = 'SELECT uuid FROM tasks ORDER BY uuid'
        wait_until(lambda: stored(url, rows) == sorted((task_id,) for task_id in first + during),
                   timeout=60, message='the changes kept meanwhile written')
        wait_until(lambda: 'X-Flower-History' not in fetch(port, '/api/tasks')[1], timeout=60,
                   message='reads to reach PostgreSQL again')
        assert UNAVAILABLE_NOTICE not in fetch(port, '/tasks')[2]
        assert get_json(port, '/healthcheck?verbose=1')['history']['available'] is True
    finally:
        flower.stop()
    assert 'The task history at postgresql://postgres@' in flower.log()


def test_an_unreachable_database_at_start_is_one_line_and_exit_status_2(broker_url):
    port = free_port()
    url = f'postgresql://flower:{PASSWORD}@127.0.0.1:{port}/flower'
    status, out, err = run_flower_briefly(flower_argv(broker_url, free_port(), f'--db={url}'))
    assert status == 2 and out == ''
    [line] = err.splitlines()
    assert line.startswith(f'flower: error: --db: cannot reach PostgreSQL at '
                           f'postgresql://flower:****@127.0.0.1:{port}/flower: ')
    assert PASSWORD not in err


def test_a_database_with_a_newer_schema_is_refused_with_exit_status_2(postgres_url, broker_url):
    PostgresTaskStore(postgres_url).close()
    stored(postgres_url, "UPDATE meta SET value = '99' WHERE key = 'schema_version' RETURNING 1")
    status, _, err = run_flower_briefly(
        flower_argv(broker_url, free_port()), FLOWER_DB=with_password(postgres_url))
    assert status == 2
    [line] = err.splitlines()
    assert f'schema version 99, newer than the version {SCHEMA_VERSION} this Flower knows' in line
    assert PASSWORD not in line and 'postgresql://postgres:****@' in line


def test_a_user_who_may_not_create_the_tables_is_refused_with_exit_status_2(
        session_postgres, postgres_url, broker_url):
    role = f'reader_{uuid.uuid4().hex[:8]}'
    session_postgres.psql(f'CREATE ROLE {role} LOGIN')
    url = postgres_url.replace('postgresql://postgres@', f'postgresql://{role}:{PASSWORD}@')
    status, _, err = run_flower_briefly(flower_argv(broker_url, free_port(), f'--db={url}'))
    assert status == 2
    [line] = err.splitlines()
    assert f'--db: the database at postgresql://{role}:****@' in line
    assert 'cannot be used: permission denied for schema public' in line
    assert PASSWORD not in line


def test_without_psycopg_a_postgresql_url_says_what_to_install(broker_url):
    hide_psycopg = ("import sys; sys.modules['psycopg'] = sys.modules['psycopg_pool'] = None; "
                    "from celery.__main__ import main; sys.argv[0] = 'celery'; main()")
    argv = [sys.executable, '-c', hide_psycopg, '-b', broker_url, 'flower',
            '--db=postgresql://flower@127.0.0.1:5/flower']
    status, _, err = run_flower_briefly(argv)
    assert status == 2
    [line] = err.splitlines()
    assert "pip install 'flower[postgresql]'" in line


def test_first_pages_of_sorted_and_filtered_listings_are_index_scans(postgres_url):
    """With sequential scans and sorts priced out, no plan reads the whole table."""
    store = PostgresTaskStore(postgres_url)
    with store.transaction() as connection:
        connection.execute('SET LOCAL enable_seqscan = off')
        connection.execute('SET LOCAL enable_sort = off')
        plans = {}
        for column in SORTED_COLUMNS:
            for order_by in (column, f'-{column}'):
                where, values = _where(10**6, state='SUCCESS' if column == 'name' else None)
                for part, order in sorted_parts(where, order_by, key):
                    sql = f'EXPLAIN SELECT * FROM tasks WHERE {part} ORDER BY {order} LIMIT 20'
                    plans[order_by, part] = '\n'.join(
                        row[0] for row in connection.execute(sql, values))
    store.close()
    for what, plan in plans.items():
        assert 'Seq Scan' not in plan, (what, plan)
        if what[0].removeprefix('-') in FEW_VALUES_COLUMNS:
            # Both directions read in order: no sort of all the rows of one value.
            assert 'Sort' not in plan.replace('Sort Key', ''), (what, plan)
        assert all(line.strip().startswith(('Incremental Sort', '->  Incremental Sort'))
                   for line in plan.splitlines() if 'Sort' in line and 'Sort Key' not in line
                   and 'Presorted Key' not in line), (what, plan)


def test_an_unreachable_database_is_tried_again_after_doubling_delays_until_it_answers():
    delays = []

    def probe():
        delays.append(reachability._delay)
        if len(delays) < 5:
            raise psycopg.OperationalError('still down')

    reachability = Reachability('postgresql://flower:****@db/flower', probe,
                                (psycopg.OperationalError,))
    reachability.first_delay, reachability.longest_delay = 0.01, 0.04
    reachability.failed(psycopg.OperationalError('server closed the connection'))
    assert not reachability.available
    assert reachability.reason == 'OperationalError: server closed the connection'
    wait_until(lambda: reachability.available, message='the probe to reach it')
    assert delays == [0.01, 0.02, 0.04, 0.04, 0.04]
    assert reachability.reason is None
    reachability.close()


def test_values_typed_columns_cannot_hold_do_not_stop_the_history(postgres_url):
    """Workers may send any text and any type: a batch still goes in whole."""
    store = PostgresTaskStore(postgres_url)
    long_name = 'tasks.' + 'x' * 10_000
    fields = {'uuid': 'odd', 'seq': 1, 'name': long_name, 'state': 'SUCCESS',
              'args': "('a\x00b',)", 'runtime': 'fast', 'retries': 2 ** 70, 'clock': 3}
    rows = [[fields.get(column) for column in TASK_COLUMNS],
            ['x' * 5000, 2] + [None] * (len(TASK_COLUMNS) - 2),
            ['plain', 3, 'tasks.add'] + [None] * (len(TASK_COLUMNS) - 3)]
    store.write(tasks=rows)
    row = dict(zip(TASK_COLUMNS, store.get_task('odd')))
    assert row['name'] == long_name and row['args'] == "('a\N{REPLACEMENT CHARACTER}b',)"
    assert (row['runtime'], row['retries'], row['clock']) == (None, None, 3)
    assert [found[0] for found in store.older_tasks(10, name=long_name)] == ['odd']
    assert [found[0] for found in store.older_tasks(10, order_by='-name')] == ['odd', 'plain']
    assert store.count_tasks() == 2  # the task whose id is too long to be a key is left out
    store.close()


def test_changes_can_be_followed_by_version(postgres_url):
    store = PostgresTaskStore(postgres_url)
    assert store.latest_version() == 0 and store.changes_since(0, 10) == []

    def row(uuid, seq, state):
        return [uuid, seq, 'tasks.add', state] + [None] * (len(TASK_COLUMNS) - 4)

    store.write(tasks=[row('a', 1, 'RECEIVED'), row('b', 2, 'RECEIVED')])
    first = store.changes_since(0, 10)
    assert [changed[1][0] for changed in first] == ['a', 'b']
    since = first[-1][0]
    store.write(tasks=[row('a', 3, 'SUCCESS')])
    [(version, changed)] = store.changes_since(since, 10)
    assert version > since and version == store.latest_version()
    assert list(changed) == row('a', 3, 'SUCCESS')
    assert len(store.changes_since(0, 1)) == 1
    store.close()


def test_flowers_starting_together_create_the_schema_once(postgres_url):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: PostgresTaskStore(postgres_url), range(4)))
    assert stored(postgres_url, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    for store in stores:
        store.close()


def test_a_search_reader_closed_early_gives_its_connections_back(postgres_url):
    store = PostgresTaskStore(postgres_url)
    store.write(tasks=[[f'task-{seq}', seq] + [None] * (len(TASK_COLUMNS) - 2)
                       for seq in range(10)])
    readers = [store.own_reader() for _ in range(store.pool_size[1])]
    listings = [reader.older_tasks(100) for reader in readers]
    assert [next(listing)[0] for listing in listings] == ['task-9'] * len(readers)
    for reader in readers:  # every connection of the pool was taken by a listing
        reader.close()
    assert store.count_tasks() == 10 and store.available
    assert all(list(listing) == [] for listing in listings)
    store.close()


def _task_row(uuid_, seq, timestamp, state='SUCCESS'):
    fields = {'uuid': uuid_, 'seq': seq, 'name': 'tasks.add', 'state': state,
              'timestamp': timestamp}
    return [fields.get(column) for column in TASK_COLUMNS]


def test_the_kept_count_follows_writes_rewrites_and_retention_and_is_taken_over_from_version_1(
        postgres_url):
    """The count kept in ``meta`` answers as counting the rows would, and a database
    written by version 1 (without it) has its rows counted when opened."""
    store = PostgresTaskStore(postgres_url)
    now = time.time()
    store.write([_task_row(f't{number}', number, now) for number in range(10)])
    store.write([_task_row('t3', 10, now, 'FAILURE'), _task_row('t10', 11, now)])
    assert store.count_tasks() == 11 == stored(postgres_url, 'SELECT count(*) FROM tasks')[0][0]
    assert store.count_older(5) == 4  # t0, t1, t2, t4: t3 was written again with seq 10
    assert store.write([_task_row('t11', 12, now)], max_tasks=8) == 4
    assert sorted(row[0] for row in store.older_tasks(100)) == sorted(
        ['t3', 't5', 't6', 't7', 't8', 't9', 't10', 't11'])
    assert store.write([_task_row('old', 13, now - 3600)], max_tasks=8, max_age=60) == 1
    assert store.count_tasks() == 8 == stored(postgres_url, 'SELECT count(*) FROM tasks')[0][0]
    assert store.count_older(12) == 7 and store.count_older(12, state='SUCCESS') == 6
    store.close()
    stored(postgres_url, "DELETE FROM meta WHERE key = 'task_count' RETURNING 1")
    stored(postgres_url, "UPDATE meta SET value = '1' WHERE key = 'schema_version' RETURNING 1")
    reopened = PostgresTaskStore(postgres_url)
    assert reopened.count_tasks() == 8
    reopened.close()
