"""Bulk revoke, terminate and retry through the API, with real workers.

Tasks wait in the worker with an ETA an hour away, so they stay queued
while a bulk revoke picks them by search; what was revoked is read back
from the worker itself (``inspect().revoked()``), on Redis and on RabbitMQ.
"""
import uuid

import pytest
import requests
from celery import Celery

from tests.support.api_cluster import Api
from tests.support.audit import assert_audited
from tests.support.flower import FlowerServer
from tests.support.rabbitmq import amqp_url
from tests.support.waiting import wait_for


@pytest.fixture(scope='module')
def flower(cluster):
    return cluster.start_flower()


@pytest.fixture(scope='module')
def worker(cluster, flower):
    (started,) = cluster.start_workers(dict(name='bulk@localhost', concurrency=2))
    cluster.wait_known(flower, started)
    return started


@pytest.fixture
def api(flower, worker):
    return Api(flower)


@pytest.fixture
def tag():
    return uuid.uuid4().hex[:10]


def states(flower, ids):
    tasks = flower.call(lambda: {task_id: task.state for task_id, task in
                                 flower.app.events.state.tasks.items() if task_id in ids})
    return {task_id: tasks.get(task_id) for task_id in ids}


def wait_states(flower, ids, *wanted):
    return wait_for(lambda: all(state in wanted for state in states(flower, ids).values()),
                    what=f"{len(ids)} tasks in {wanted} in Flower")


def revoked(client, worker):
    replies = client.control.inspect(destination=[worker.hostname], timeout=5).revoked()
    return set((replies or {}).get(worker.hostname) or ())


def queue_echoes(client, tag, picked=3, kept=2):
    """``picked`` and ``kept`` ``tasks.echo`` tasks an hour away; their ids."""
    def send(kind, count):
        return [client.send_task('tasks.echo', (f'{tag}-{kind}-{n}',), countdown=3600).id
                for n in range(count)]
    return send('pick', picked), send('keep', kept)


def test_a_bulk_revoke_by_search_revokes_exactly_the_matching_queued_tasks(
        cluster, flower, api, worker, tag, audit_lines):
    picked, kept = queue_echoes(cluster.client, tag)
    wait_states(flower, picked + kept, 'RECEIVED')
    try:
        response = api.post('/api/tasks/revoke', json={'search': f'args:{tag}-pick'})

        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer['action'], answer['dry_run'], answer['count']) == ('revoke', False, 3)
        assert {task['task-id']: task['outcome'] for task in answer['tasks']} == dict.fromkeys(
            picked, 'revoked')
        on_worker = revoked(cluster.client, worker)
        assert set(picked) <= on_worker and not set(kept) & on_worker
        record = assert_audited(api, audit_lines, 'tasks.revoke', None, 200)
        assert sorted(record['targets']) == sorted(picked)
        assert record['outcome']['dry_run'] is False
    finally:
        cluster.client.control.revoke(picked + kept)


def test_a_dry_run_says_what_would_be_revoked_and_revokes_nothing(
        cluster, flower, api, worker, tag, audit_lines):
    picked, kept = queue_echoes(cluster.client, tag)
    wait_states(flower, picked + kept, 'RECEIVED')
    try:
        response = api.post('/api/tasks/revoke', json={
            'search': f'args:{tag}-pick', 'taskname': 'tasks.echo', 'dry_run': True})

        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer['dry_run'], answer['count']) == (True, 3)
        assert {task['task-id'] for task in answer['tasks']} == set(picked)
        assert {(task['name'], task['state'], task['outcome']) for task in answer['tasks']} == {
            ('tasks.echo', 'RECEIVED', 'would be revoked')}
        assert not set(picked + kept) & revoked(cluster.client, worker)
        record = assert_audited(api, audit_lines, 'tasks.revoke', None, 200)
        assert sorted(record['targets']) == sorted(picked) and record['outcome']['dry_run'] is True
    finally:
        cluster.client.control.revoke(picked + kept)


def test_more_tasks_than_the_limit_is_400_and_nothing_is_revoked(cluster, worker, tag):
    limited = Api(cluster.start_flower(bulk_action_limit=2))
    cluster.wait_known(limited.server, worker)
    picked, kept = queue_echoes(cluster.client, tag)
    wait_states(limited.server, picked, 'RECEIVED')
    try:
        by_search = limited.post('/api/tasks/revoke', json={'search': f'args:{tag}-pick'})
        by_ids = limited.post('/api/tasks/terminate', json={'ids': picked})

        assert by_search.status_code == by_ids.status_code == 400
        assert '3 tasks match' in by_search.json()['error']
        assert '3 task ids given' in by_ids.json()['error']
        assert 'bulk_action_limit' in by_ids.json()['error']
        assert not set(picked) & revoked(cluster.client, worker)
    finally:
        cluster.client.control.revoke(picked + kept)


def test_a_bulk_terminate_kills_the_running_tasks(cluster, flower, api, worker):
    running = [cluster.client.send_task('tasks.sleep', (60,)).id for _ in range(2)]
    wait_states(flower, running, 'STARTED')

    response = api.post('/api/tasks/terminate', json={'ids': running, 'signal': 'KILL'})

    assert response.status_code == 200, response.text
    assert [task['outcome'] for task in response.json()['tasks']] == ['terminated'] * 2
    wait_states(flower, running, 'REVOKED', 'FAILURE')
    active = cluster.client.control.inspect(destination=[worker.hostname], timeout=5).active()
    assert not set(running) & {entry['id'] for entry in active[worker.hostname]}


def test_a_bulk_retry_retries_the_failed_tasks_and_refuses_the_others(
        cluster, flower, api, tag):
    failures = [cluster.client.send_task('tasks.error', (f'{tag}-{n}',)).id for n in range(2)]
    success = cluster.client.send_task('tasks.echo', (f'{tag}-ok',)).id
    wait_states(flower, failures, 'FAILURE')
    wait_states(flower, [success], 'SUCCESS')

    response = api.post('/api/tasks/retry', json={'search': f'args:{tag}'})

    assert response.status_code == 200, response.text
    outcomes = {task['task-id']: task for task in response.json()['tasks']}
    assert set(outcomes) == {*failures, success}
    assert outcomes[success]['outcome'] == 'refused' and 'SUCCESS' in outcomes[success]['error']
    retries = [outcomes[task_id]['retry'] for task_id in failures]
    assert [outcomes[task_id]['outcome'] for task_id in failures] == ['retried'] * 2
    wait_states(flower, retries, 'FAILURE')
    assert [cluster.client.AsyncResult(task_id).args for task_id in retries] == [
        [f'{tag}-0'], [f'{tag}-1']]


def test_the_pages_twins_want_the_xsrf_token(cluster, flower, worker, tag):
    queued = cluster.client.send_task('tasks.echo', (tag,), countdown=3600).id
    url = f'{flower.base_url}/control/tasks/revoke'
    try:
        refused = requests.post(url, json={'ids': [queued]}, timeout=30)

        assert refused.status_code == 403 and '_xsrf' in refused.json()['error']
        assert queued not in revoked(cluster.client, worker)
        accepted = requests.post(url, json={'ids': [queued]}, timeout=30,
                                 headers={'X-XSRFToken': 'token-of-the-page'},
                                 cookies={'_xsrf': 'token-of-the-page'})
        assert accepted.status_code == 200, accepted.text
        assert queued in revoked(cluster.client, worker)
    finally:
        cluster.client.control.revoke(queued)


def test_a_bulk_revoke_by_search_on_rabbitmq(vhost, worker_factory, tag):
    url = amqp_url(vhost)
    client = Celery('bulk-client', broker=url, backend='rpc://', set_as_current=False)
    server = FlowerServer(url, capp=Celery('bulk-flower', broker=url, backend='rpc://',
                                           set_as_current=False),
                          inspect_timeout=3000).start()
    try:
        worker = worker_factory(url, result_backend='rpc://')
        wait_for(lambda: worker.hostname in server.call(
            lambda: set(server.app.events.state.workers)), what='Flower to see the worker')
        picked, kept = queue_echoes(client, tag, picked=2, kept=1)
        wait_states(server, picked + kept, 'RECEIVED')

        response = Api(server).post('/api/tasks/revoke', json={'search': f'args:{tag}-pick'})

        assert response.status_code == 200, response.text
        assert response.json()['count'] == 2
        on_worker = revoked(client, worker)
        assert set(picked) <= on_worker and not set(kept) & on_worker
    finally:
        server.stop()
        client.close()
