"""Several Flower replicas on one PostgreSQL history (see docs/replicas.rst).

Every replica is a real ``celery flower`` process on the same broker and database,
with a real worker; the database is a private PostgreSQL cluster of the tests.
"""
import asyncio
import concurrent.futures
import http.client
import json
import os
import signal
import time

import celery
import psycopg
import pytest
from tornado.ioloop import IOLoop

from flower.events import Events
from flower.leadership import FOLLOWER, LEADER, Leadership
from flower.metrics import PrometheusMetrics
from flower.security import Sessions
from tests.support.command import CELERY, http_get, wait_until
from tests.support.processes import EXAMPLES_DIR, free_port
from tests.support.sse import SseClient

TASKS_APP = ['-A', 'tasks', '--workdir', EXAMPLES_DIR]


class Replica:
    """One ``celery flower`` process on ``db``, with its port."""

    def __init__(self, start_flower, broker_url, db, *options):
        self.port = free_port()
        self.process = start_flower(
            CELERY + TASKS_APP + ['flower', f'--port={self.port}', '--address=127.0.0.1',
                                  f'--db={db}', *options],
            env={'CELERY_BROKER_URL': broker_url, 'CELERY_RESULT_BACKEND': broker_url,
                 'FLOWER_UNAUTHENTICATED_API': 'true'})
        self.process.wait_http(self.port)

    def status(self):
        status, body = http_get(self.port, '/healthcheck?verbose=1')
        assert status == 200, body
        return json.loads(body)

    def role(self):
        return self.status()['replica']['role']

    def tasks(self):
        """``{uuid: state}`` of ``/api/tasks``."""
        status, body = http_get(self.port, '/api/tasks')
        assert status == 200, body
        return {uuid: task['state'] for uuid, task in json.loads(body).items()}

    def leader_gauge(self):
        status, body = http_get(self.port, '/metrics')
        assert status == 200, body
        return [line for line in body.splitlines() if line.startswith('flower_leader ')]

    def kill(self):
        os.killpg(self.process.process.pid, signal.SIGKILL)
        self.process.process.wait()


def start_pair(start_flower, broker_url, db, *options):
    """Two replicas, once one of them leads: ``(leader, follower)``."""
    replicas = [Replica(start_flower, broker_url, db, *options) for _ in range(2)]
    wait_until(lambda: sorted(replica.role() for replica in replicas) == [FOLLOWER, LEADER],
               timeout=20, message='one leader and one follower')
    replicas.sort(key=lambda replica: replica.role() != LEADER)
    return replicas


def run_tasks(client, count, first=0):
    """Send ``tasks.add`` ``count`` times and wait for every result: their ids."""
    results = [client.send_task('tasks.add', (number, 1)) for number in range(first, first + count)]
    assert [result.get(timeout=30) for result in results] == list(range(first + 1,
                                                                        first + count + 1))
    return {result.id for result in results}


def wait_succeeded(replica, uuids, timeout=20):
    def all_there():
        listed = replica.tasks()
        return all(listed.get(uuid) == 'SUCCESS' for uuid in uuids)
    wait_until(all_there, timeout=timeout,
               message=f'{len(uuids)} tasks listed as SUCCESS on port {replica.port}')


def test_two_replicas_serve_the_same_tasks_workers_and_counters_and_one_leads(
        postgres_url, broker_url, worker_factory, celery_client, start_flower):
    worker = worker_factory(broker_url, pool='threads', concurrency=2)
    leader, follower = start_pair(start_flower, broker_url, postgres_url)
    stream = SseClient(follower.port, '/api/events?types=task-succeeded')
    client = celery_client(broker_url)
    uuids = run_tasks(client, 12)

    wait_succeeded(leader, uuids)
    wait_succeeded(follower, uuids)
    # The follower's event stream carries what it reads from the leader's writes.
    streamed = {}  # task id -> event type
    while not uuids <= streamed.keys():
        message = stream.next_event()
        streamed[message['data'].get('task-id')] = message['event']
    assert set(streamed.values()) == {'task-succeeded'}
    stream.close()
    assert follower.tasks() == leader.tasks()
    for path in (f'/api/task/info/{sorted(uuids)[0]}', '/api/tasks?state=SUCCESS&limit=5',
                 '/api/tasks?sort_by=-received&limit=3'):
        status_l, body_l = http_get(leader.port, path)
        status_f, body_f = http_get(follower.port, path)
        assert (status_l, status_f) == (200, 200)
        assert json.loads(body_f) == json.loads(body_l), path

    def worker_online(replica):
        status, body = http_get(replica.port, '/workers?json=1')
        rows = {row['hostname']: row for row in json.loads(body)['data']}
        return worker.hostname in rows and rows[worker.hostname]['status'] is True
    wait_until(lambda: worker_online(follower), message='the worker online on the follower')

    def succeeded_count(replica):
        status, body = http_get(replica.port, '/workers?json=1')
        return {row['hostname']: row['succeeded'] for row in json.loads(body)['data']}
    wait_until(lambda: succeeded_count(follower) == succeeded_count(leader)
               == {worker.hostname: 12}, message='the same counters on both')

    assert leader.leader_gauge() == ['flower_leader 1.0']
    assert follower.leader_gauge() == ['flower_leader 0.0']
    assert leader.status()['replica']['database_connected'] is True
    # Only the leader captures: the follower received no event from the broker.
    assert 'flower_ingest_events_received_total 0.0' in http_get(follower.port, '/metrics')[1]


def test_killing_the_leader_hands_capture_to_a_follower_and_loses_nothing_written(
        postgres_url, broker_url, worker_factory, celery_client, start_flower):
    worker_factory(broker_url, pool='threads', concurrency=2)
    leader, follower = start_pair(start_flower, broker_url, postgres_url)
    client = celery_client(broker_url)
    before = run_tasks(client, 20)
    wait_succeeded(leader, before)
    time.sleep(1.0)  # the promise: what finished a second before the kill is kept

    leader.kill()
    killed_at = time.monotonic()
    wait_until(lambda: follower.role() == LEADER, timeout=5,
               message='the follower to lead within 5 s of the kill')
    took_over_in = time.monotonic() - killed_at
    print(f"took over {took_over_in:.1f} s after the kill")
    wait_succeeded(follower, before, timeout=5)

    # It captures now: new tasks appear there, and in the database.
    after = run_tasks(client, 5, first=100)
    wait_succeeded(follower, after)
    with psycopg.connect(postgres_url) as connection:
        def stored():
            rows = connection.execute('SELECT uuid, state FROM tasks').fetchall()
            connection.commit()
            return {uuid for uuid, state in rows if state == 'SUCCESS'}
        wait_until(lambda: before | after <= stored(), message='every task in the database')

    # A replica started now follows the new leader and serves the same tasks.
    third = Replica(start_flower, broker_url, postgres_url)
    assert third.role() == FOLLOWER
    wait_succeeded(third, before | after)


def test_a_database_restart_is_survived_by_every_replica(
        postgres_cluster, broker_url, worker_factory, celery_client, start_flower):
    postgres_cluster.create_database('flower')
    db = postgres_cluster.url('flower')
    worker_factory(broker_url, pool='threads', concurrency=2)
    leader, follower = start_pair(start_flower, broker_url, db)
    client = celery_client(broker_url)
    before = run_tasks(client, 5)
    wait_succeeded(follower, before)

    postgres_cluster.kill()
    during = run_tasks(client, 5, first=50)
    wait_succeeded(leader, during)  # captured into memory, written later
    for replica in (leader, follower):
        def says_unavailable():
            connection = http.client.HTTPConnection('127.0.0.1', replica.port, timeout=5)
            connection.request('GET', '/api/tasks')
            answer = connection.getresponse()
            body = answer.read()
            assert answer.status == 200, body
            assert before <= set(json.loads(body))
            return answer.getheader('X-Flower-History') == 'unavailable'
        wait_until(says_unavailable, message='the API to say the history is unavailable')
        status, page = http_get(replica.port, '/tasks')
        assert status == 200
        assert 'Task history unavailable: showing only the tasks in memory.' in page
    wait_until(lambda: follower.status()['replica']['database_connected'] is False,
               message='the follower to notice the outage')

    postgres_cluster.start()
    wait_until(lambda: sorted(replica.role() for replica in (leader, follower))
               == [FOLLOWER, LEADER], timeout=30, message='one leader again')
    assert leader.role() == LEADER  # the one that captured during the outage keeps leading
    wait_succeeded(follower, during, timeout=30)
    with psycopg.connect(db) as connection:
        stored = {uuid for (uuid,) in connection.execute(
            "SELECT uuid FROM tasks WHERE state = 'SUCCESS'")}
    assert before | during <= stored


def leadership(url, io_loop_calls):
    """A :class:`Leadership` on ``url`` whose role changes are recorded, not run."""
    class Recorder:
        def add_callback(self, callback):
            io_loop_calls.append(callback)

    return Leadership(lambda: psycopg.connect(url, autocommit=True, connect_timeout=2),
                      Recorder(), on_lead=lambda: LEADER, on_follow=lambda: FOLLOWER,
                      interval=0.1)


def leader_then_follower(url):
    """Two started :class:`Leadership` s on ``url``, the first leading, the second (started
    once it leads) following: ``(first, its calls), (second, its calls)``."""
    first_calls, second_calls = [], []
    first = leadership(url, first_calls)
    first.start()
    wait_until(lambda: first.role == LEADER, message='the first to lead')
    second = leadership(url, second_calls)
    second.start()
    time.sleep(0.5)
    assert second.role == FOLLOWER
    return (first, first_calls), (second, second_calls)


def test_the_lock_has_one_holder_and_passes_on_when_its_session_ends(postgres_url):
    (first, first_calls), (second, second_calls) = leader_then_follower(postgres_url)
    assert second_calls == []
    assert [call() for call in first_calls] == [LEADER]

    first.stop()  # closes its session: PostgreSQL frees the lock
    wait_until(lambda: second.role == LEADER, message='the second to lead')
    assert [call() for call in second_calls] == [LEADER]
    second.stop()


def test_a_leader_cut_off_while_another_took_the_lock_steps_down(postgres_url):
    (first, first_calls), (second, second_calls) = leader_then_follower(postgres_url)

    # Only the leader's session ends (as a network cut would end it); the follower's lives.
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        [(ended,)] = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted").fetchall()
    assert ended is True
    wait_until(lambda: second.role == LEADER, message='the follower to take the lock')
    wait_until(lambda: first.role == FOLLOWER, message='the cut-off leader to step down')
    assert [call() for call in first_calls] == [LEADER, FOLLOWER]
    assert [call() for call in second_calls] == [LEADER]
    assert first.status()['database_connected'] is True
    first.stop()
    second.stop()


@pytest.mark.parametrize('scheme', ['postgresql', 'postgres'])
def test_a_postgresql_url_is_a_replica(scheme, postgres_url, broker_url, start_flower):
    url = postgres_url.replace('postgresql://', f'{scheme}://', 1)
    replica = Replica(start_flower, broker_url, url)
    wait_until(lambda: replica.role() == LEADER, message='a lone replica to lead')
    assert replica.status()['history'] is not None


class SettingsStore:
    """The settings a history keeps, as replicas sharing it see them."""

    def __init__(self):
        self.settings = {}

    def load_setting(self, key):
        return self.settings.get(key)

    def save_setting(self, key, value):
        self.settings[key] = value


def test_a_logout_on_one_replica_ends_the_session_on_the_other():
    shared = SettingsStore()
    first, second = Sessions(lambda: shared), Sessions(lambda: shared)
    alice, bob = first.token('alice@example.com'), first.token('bob@example.com')
    assert second.email(alice) == 'alice@example.com'

    second.end('alice@example.com')  # /logout on the second replica
    first.end('bob@example.com')  # and on the first, before it read the shared ones
    second.load()  # every poll reads them
    for replica in (first, second):
        assert replica.email(alice) is None and replica.email(bob) is None
    carol = first.token('carol@example.com')
    assert second.email(carol) == 'carol@example.com'

    second.revoke_all()  # --revoke_sessions on the second
    first.load()
    assert first.email(carol) is None
    assert first.everyone == second.everyone == 1
    assert first.email(first.token('carol@example.com')) == 'carol@example.com'
    assert second.email(first.token('carol@example.com')) == 'carol@example.com'


def test_a_replica_stopped_before_its_history_is_loaded_stops_cleanly(postgres_url):
    async def start_and_stop():
        events = Events(celery.Celery(broker='memory://'), IOLoop.current(), db=postgres_url,
                        persistent=True, enable_events=False, metrics=PrometheusMetrics())
        events.start()
        events.stop()  # before the IO loop ran the load, so before any election
        return events.is_alive(), events.replica_status()['role']

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        alive, role = pool.submit(asyncio.run, start_and_stop()).result()
    assert (alive, role) == (False, FOLLOWER)
