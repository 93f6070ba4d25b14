"""Purging a queue and the audit trail, against a real Redis and a real worker.

Each action is checked on the broker or the worker itself, and its audit
record twice: at ``/api/audit`` and as the line the ``flower.audit`` logger
wrote. Purging on RabbitMQ is in ``tests/test_broker_rabbitmq.py``.
"""
import json
import uuid

import pytest
import redis
from kombu import Queue

from tests.support.api_cluster import Api
from tests.support.audit import assert_audited
from tests.support.flower import FlowerServer
from tests.support.processes import celery_client
from tests.support.waiting import wait_for

BACKLOG = 'backlog'
#: The lists kombu's Redis transport keeps a queue's messages in, by priority step.
BACKLOG_KEYS = [BACKLOG, f'{BACKLOG}\x06\x163', f'{BACKLOG}\x06\x166', f'{BACKLOG}\x06\x169']


def monitored_app(cluster):
    """Flower's Celery app: ``backlog`` is configured, and no worker consumes from it."""
    return cluster.make_app(task_queues=[Queue('celery'), Queue(BACKLOG)])


@pytest.fixture(scope='module')
def flower(cluster):
    return cluster.start_flower(capp=monitored_app(cluster))


@pytest.fixture(scope='module')
def worker(cluster, flower):
    (worker,) = cluster.start_workers(dict(name='audit-a@localhost', concurrency=1,
                                           queues=['celery']))
    cluster.wait_known(flower, worker)
    return worker


@pytest.fixture
def api(flower):
    return Api(flower)


@pytest.fixture
def broker(cluster):
    client = redis.Redis.from_url(cluster.url)
    yield client
    client.close()


def publish(cluster, queue, priorities):
    for priority in priorities:
        cluster.client.send_task('tasks.add', (1, 1), queue=queue, priority=priority)


# -- purge -------------------------------------------------------------------------------

def test_purge_empties_a_queue_and_its_priority_sub_queues(cluster, api, broker, audit_lines):
    publish(cluster, BACKLOG, [None, 0, 2, 4, 4, 7, 9])
    lengths = [broker.llen(key) for key in BACKLOG_KEYS]
    assert sum(lengths) == 7 and sum(1 for length in lengths if length) == 4

    response = api.post(f'/api/queues/purge/{BACKLOG}')

    assert response.status_code == 200, response.text
    assert response.json() == {'queue': BACKLOG, 'purged': 7}
    assert [broker.llen(key) for key in BACKLOG_KEYS] == [0, 0, 0, 0]
    assert api.get('/api/queues/length').json()['active_queues'] == [
        {'name': BACKLOG, 'messages': 0}, {'name': 'celery', 'messages': 0}]
    assert_audited(api, audit_lines, 'queue.purge', [BACKLOG], 200,
                   {'queue': BACKLOG, 'purged': 7})


def test_purging_an_empty_queue_removes_nothing(api, audit_lines):
    response = api.post(f'/api/queues/purge/{BACKLOG}')

    assert response.json() == {'queue': BACKLOG, 'purged': 0}
    assert_audited(api, audit_lines, 'queue.purge', [BACKLOG], 200)


def test_purging_an_unknown_queue_is_404_and_audited(cluster, api, broker, audit_lines):
    publish(cluster, 'elsewhere', [None])

    response = api.post('/api/queues/purge/elsewhere')

    assert response.status_code == 404
    assert "Unknown queue 'elsewhere'" in response.json()['error']
    assert broker.llen('elsewhere') == 1
    record = assert_audited(api, audit_lines, 'queue.purge', ['elsewhere'], 404)
    assert "Unknown queue 'elsewhere'" in record['outcome']['error']


def test_read_only_refuses_a_purge_and_the_refusal_is_audited(
        cluster, api, flower, broker, audit_lines, monkeypatch):
    broker.delete(*BACKLOG_KEYS)
    publish(cluster, BACKLOG, [None, 9])
    monkeypatch.setattr(flower.options, 'read_only', True)

    response = api.post(f'/api/queues/purge/{BACKLOG}')

    assert response.status_code == 403
    assert 'read-only' in response.json()['error']
    assert broker.llen(BACKLOG) + broker.llen(BACKLOG_KEYS[-1]) == 2
    record = assert_audited(api, audit_lines, 'queue.purge', [BACKLOG], 403)
    assert 'read-only' in record['outcome']['error']
    broker.delete(*BACKLOG_KEYS)


# -- the existing control endpoints ------------------------------------------------------

def test_a_pool_grow_on_a_worker_is_audited(cluster, api, worker, audit_lines):
    before = len(cluster.stats(worker)['pool']['processes'])

    response = api.post(f'/api/worker/pool/grow/{worker.hostname}?n=1')

    assert response.status_code == 200
    wait_for(lambda: len(cluster.stats(worker)['pool']['processes']) == before + 1,
             what='one more pool process')
    assert_audited(api, audit_lines, 'worker.pool.grow', [worker.hostname], 200,
                   {'message': f"Growing '{worker.hostname}' worker's pool by 1"})


def test_a_revoke_is_audited(cluster, api, worker, audit_lines):
    task_id = str(uuid.uuid4())

    response = api.post(f'/api/task/revoke/{task_id}')

    assert response.status_code == 200
    revoked = cluster.client.control.inspect(destination=[worker.hostname], timeout=5).revoked()
    assert task_id in revoked[worker.hostname]
    assert_audited(api, audit_lines, 'task.revoke', [task_id], 200,
                   {'message': f"Revoked '{task_id}'"})


def test_a_refused_input_and_an_unknown_api_url_are_audited(api, audit_lines):
    response = api.post('/api/worker/pool/grow/nobody@nowhere?n=zero')
    assert response.status_code == 400
    record = assert_audited(api, audit_lines, 'worker.pool.grow', ['nobody@nowhere'], 400)
    assert "'n'" in record['outcome']['error']

    assert api.post('/api/no/such/thing').status_code == 404
    assert_audited(api, audit_lines, 'api.not-found', ['/api/no/such/thing'], 404)


def test_a_page_button_without_its_xsrf_token_is_refused_and_audited(flower, broker,
                                                                    cluster, audit_lines):
    publish(cluster, BACKLOG, [None])
    api = Api(flower)
    api.session.cookies.set('_xsrf', 'made-up')

    response = api.post(f'/control/queues/purge/{BACKLOG}')

    assert response.status_code == 403
    assert broker.llen(BACKLOG) == 1
    record = assert_audited(api, audit_lines, 'queue.purge', [BACKLOG], 403)
    assert '_xsrf' in record['outcome']['error']
    broker.delete(BACKLOG)


def test_reading_is_not_audited(api, audit_lines):
    before = api.get('/api/audit').json()['total']

    api.get('/api/workers')
    api.get('/api/queues/length')

    assert api.get('/api/audit').json()['total'] == before
    assert audit_lines == []


def test_the_trail_is_paged_newest_first_and_filtered(api):
    for name in ('first', 'second', 'third'):
        api.post(f'/api/task/timeout/tasks.{name}?workername=nobody@nowhere&soft=1')

    page = api.get('/api/audit', params={'action': 'task.timeout', 'limit': 2}).json()
    assert page['total'] >= 3 and page['limit'] == 2 and page['offset'] == 0
    assert [record['targets'] for record in page['records']] == [
        ['tasks.third', 'nobody@nowhere'], ['tasks.second', 'nobody@nowhere']]
    older = api.get('/api/audit', params={'action': 'task.timeout', 'limit': 2,
                                          'offset': 2}).json()
    assert older['records'][0]['targets'][0] == 'tasks.first'
    assert api.get('/api/audit', params={'user': 'nobody'}).json() == {
        'total': 0, 'offset': 0, 'limit': 100, 'records': []}
    assert api.get('/api/audit?limit=0').status_code == 400
    assert api.get('/api/audit?limit=1001').status_code == 400


# -- who -------------------------------------------------------------------------------

def test_the_authenticated_user_is_recorded_and_no_credentials(cluster, monkeypatch, audit_lines):
    monkeypatch.delenv('FLOWER_UNAUTHENTICATED_API')
    with FlowerServer(cluster.url, capp=monitored_app(cluster),
                      basic_auth=['alice:s3cret-pass']) as flower:
        api = Api(flower)
        assert api.post(f'/api/queues/purge/{BACKLOG}').status_code == 401
        assert audit_lines == []  # a 401 names no one: not recorded

        api.session.auth = ('alice', 's3cret-pass')
        response = api.post(f'/api/queues/purge/{BACKLOG}')

        assert response.status_code == 200
        listing = api.get('/api/audit')
        assert listing.json()['total'] == 1
        assert_audited(api, audit_lines, 'queue.purge', [BACKLOG], 200, user='alice')
        assert 's3cret' not in listing.text and 's3cret' not in json.dumps(audit_lines)


# -- persistence -----------------------------------------------------------------------

def test_the_trail_outlives_a_restart_with_persistent(cluster, history_db):
    db = history_db.db
    with FlowerServer(cluster.url, capp=monitored_app(cluster), persistent=True, db=db) as flower:
        assert Api(flower).post(f'/api/queues/purge/{BACKLOG}').status_code == 200
        assert Api(flower).post('/api/queues/purge/nowhere').status_code == 404
        before = Api(flower).get('/api/audit').json()
    assert [record['status'] for record in before['records']] == [404, 200]

    with FlowerServer(cluster.url, capp=monitored_app(cluster), persistent=True, db=db) as flower:
        api = Api(flower)
        after = api.get('/api/audit').json()
        assert after == before
        assert api.post(f'/api/queues/purge/{BACKLOG}').status_code == 200
        newest = api.get('/api/audit?limit=1').json()
        assert newest['total'] == 3
        assert newest['records'][0]['targets'] == [BACKLOG]
        purges = api.get('/api/audit?action=queue.purge&offset=1').json()
        assert purges['total'] == 3 and purges['records'] == before['records']


# -- an unreachable broker ---------------------------------------------------------------

def test_a_purge_with_the_broker_down_is_503_and_audited(redis_server, audit_lines):
    capp = celery_client(redis_server.url)
    capp.conf.task_queues = [Queue(BACKLOG)]
    with FlowerServer(redis_server.url, capp=capp, enable_events=False) as flower:
        redis_server.stop()

        response = Api(flower).post(f'/api/queues/purge/{BACKLOG}')

        assert response.status_code == 503
        assert f"Cannot purge queue '{BACKLOG}'" in response.json()['error']
        # The record is made once the answer is out: wait for the line, not the answer.
        wait_for(lambda: any(line['action'] == 'queue.purge' for line in audit_lines),
                 what='the audit line of the purge')
        [record] = [line for line in audit_lines if line['action'] == 'queue.purge']
        assert record['status'] == 503 and record['targets'] == [BACKLOG]
