"""``/api/workers`` and ``/api/worker/...`` against real workers.

Worker ``a`` is a plain prefork worker; worker ``b`` autoscales and has pool
restarts turned off, so it refuses the commands ``a`` accepts. Every effect is
read back from the worker with Celery's own inspect commands.
"""
import uuid

import pytest

from tests.support.api_cluster import Api
from tests.support.waiting import wait_for


@pytest.fixture(scope='module')
def flower(cluster):
    return cluster.start_flower()


@pytest.fixture(scope='module')
def workers(cluster, flower):
    a, b = cluster.start_workers(
        dict(name='api-a@localhost', concurrency=1, queues=['celery', 'only-a']),
        dict(name='api-b@localhost', concurrency=1, extra_args=['--autoscale=3,1'],
             env={'API_TESTS_POOL_RESTARTS': 'off'}),
    )
    cluster.wait_known(flower, a, b)
    return a, b


@pytest.fixture
def a(workers):
    return workers[0]


@pytest.fixture
def b(workers):
    return workers[1]


@pytest.fixture
def api(flower):
    return Api(flower)


def processes(cluster, worker):
    return cluster.stats(worker)['pool']['processes']


def active_queues(cluster, worker):
    replies = cluster.client.control.inspect(destination=[worker.hostname], timeout=5).active_queues()
    return {queue['name'] for queue in replies[worker.hostname]}


def registered(cluster, worker, *attributes):
    replies = cluster.client.control.inspect(
        destination=[worker.hostname], timeout=5).registered(*attributes)
    return replies[worker.hostname]


def test_list_workers_refreshes_inspect_data(cluster, api, a, b):
    response = api.get('/api/workers?refresh=true')

    assert response.status_code == 200
    listed = response.json()
    assert {a.hostname, b.hostname} <= set(listed)
    info = listed[a.hostname]
    assert info['stats']['pid'] == a.pid
    assert 'tasks.add' in info['registered']
    assert {queue['name'] for queue in info['active_queues']} == {'celery', 'only-a'}
    assert info['conf']['worker_pool_restarts'] is True
    assert info['timestamp'] > 0


def test_list_workers_of_one_worker_and_status_only(api, a, b):
    one = api.get(f'/api/workers?workername={a.hostname}&refresh=1').json()
    status = api.get('/api/workers?status=true').json()

    assert list(one) == [a.hostname]
    assert one[a.hostname]['stats']['pid'] == a.pid
    assert status[a.hostname] is True and status[b.hostname] is True
    assert api.get(f'/api/workers?workername={b.hostname}&status=1').json() == {b.hostname: True}


TASK_LISTS = {'active', 'reserved', 'revoked', 'scheduled'}


def test_task_lists_come_only_with_a_refresh_of_one_worker(cluster, a, b):
    api = Api(cluster.start_flower(enable_events=False))

    everyone = api.get('/api/workers?refresh=1').json()
    cached = api.get('/api/workers').json()
    one = api.get(f'/api/workers?refresh=1&workername={a.hostname}').json()

    for answer in (everyone, cached):
        assert {a.hostname, b.hostname} <= set(answer)
        assert set(answer[a.hostname]) == {'stats', 'active_queues', 'registered', 'conf',
                                           'timestamp'}
    assert set(one[a.hostname]) == {'stats', 'active_queues', 'registered', 'conf',
                                    'timestamp'} | TASK_LISTS
    assert one[a.hostname]['active'] == []
    # Kept afterwards, as the latest reply of that worker.
    assert TASK_LISTS <= set(api.get('/api/workers?refresh=1').json()[a.hostname])
    assert not TASK_LISTS & set(api.get('/api/workers').json()[b.hostname])


def test_worker_stats_show_the_broker_without_its_alternates(cluster, api, a):
    assert 'alternates' in cluster.stats(a)['broker']

    for path in ('/api/workers?refresh=1', f'/api/workers?refresh=1&workername={a.hostname}'):
        broker = api.get(path).json()[a.hostname]['stats']['broker']
        assert 'alternates' not in broker
        assert broker['transport'] == 'redis' and broker['hostname'] == '127.0.0.1'


def test_pool_grow_adds_processes(cluster, api, a):
    before = len(processes(cluster, a))

    response = api.post(f'/api/worker/pool/grow/{a.hostname}?n=2')

    assert response.status_code == 200
    assert response.json() == {'message': f"Growing '{a.hostname}' worker's pool by 2"}
    wait_for(lambda: len(processes(cluster, a)) == before + 2, what='two more pool processes')


def test_pool_shrink_removes_a_process(cluster, api, a):
    before = len(processes(cluster, a))
    cluster.client.control.pool_grow(1, destination=[a.hostname], reply=True, timeout=5)
    wait_for(lambda: len(processes(cluster, a)) == before + 1, what='a process to shrink')

    response = api.post(f'/api/worker/pool/shrink/{a.hostname}')

    assert response.status_code == 200
    assert response.json() == {'message': f"Shrinking '{a.hostname}' worker's pool by 1"}
    wait_for(lambda: len(processes(cluster, a)) == before, what='one pool process less')


def test_pool_grow_refused_by_an_autoscaling_worker_is_403(cluster, api, b):
    before = processes(cluster, b)

    response = api.post(f'/api/worker/pool/grow/{b.hostname}?n=1')

    assert response.status_code == 403
    assert 'not supported with autoscale' in response.json()['error']
    assert b.hostname in response.json()['error']
    assert len(processes(cluster, b)) == len(before)


def test_pool_restart_replaces_the_processes(cluster, api, a):
    before = set(processes(cluster, a))

    response = api.post(f'/api/worker/pool/restart/{a.hostname}')

    assert response.status_code == 200
    assert response.json() == {'message': f"Restarting '{a.hostname}' worker's pool"}
    # Each process exits at its next task (Celery sends one no-op task right away).
    wait_for(lambda: not before <= set(processes(cluster, a)), what='a new pool process')


def test_pool_restart_refused_when_not_enabled_is_403(cluster, api, b):
    before = set(processes(cluster, b))

    response = api.post(f'/api/worker/pool/restart/{b.hostname}')

    assert response.status_code == 403
    assert 'Pool restarts not enabled' in response.json()['error']
    assert set(processes(cluster, b)) == before


def test_autoscale_changes_the_bounds(cluster, api, b):
    response = api.post(f'/api/worker/pool/autoscale/{b.hostname}?min=2&max=5')

    assert response.status_code == 200
    assert response.json() == {'message': f"Autoscaling '{b.hostname}' worker (min=2, max=5)"}
    autoscaler = cluster.stats(b)['autoscaler']
    assert (autoscaler['min'], autoscaler['max']) == (2, 5)


def test_autoscale_refused_without_autoscaler_is_403(api, a):
    response = api.post(f'/api/worker/pool/autoscale/{a.hostname}?min=1&max=2')

    assert response.status_code == 403
    assert 'Autoscale not enabled' in response.json()['error']


def test_add_consumer_makes_the_worker_consume_the_queue(cluster, api, a):
    response = api.post(f'/api/worker/queue/add-consumer/{a.hostname}?queue=api-added')

    assert response.status_code == 200
    assert response.json() == {'message': 'add consumer api-added'}
    wait_for(lambda: 'api-added' in active_queues(cluster, a), what='the new queue')


def test_cancel_consumer_stops_consuming_the_queue(cluster, api, a):
    cluster.client.control.add_consumer('api-cancelled', destination=[a.hostname], reply=True)
    wait_for(lambda: 'api-cancelled' in active_queues(cluster, a))

    response = api.post(f'/api/worker/queue/cancel-consumer/{a.hostname}?queue=api-cancelled')

    assert response.status_code == 200
    assert response.json() == {'message': 'no longer consuming from api-cancelled'}
    wait_for(lambda: 'api-cancelled' not in active_queues(cluster, a), what='the queue to go')


def test_rate_limit_is_applied_by_the_worker(cluster, api, a):
    response = api.post('/api/task/rate-limit/tasks.add',
                        data={'ratelimit': '200/m', 'workername': a.hostname})

    assert response.status_code == 200
    assert response.json() == {'message': 'new rate limit set successfully'}
    assert 'tasks.add [rate_limit=200/m]' in registered(cluster, a, 'rate_limit')


def test_rate_limit_of_a_task_the_worker_does_not_have_is_404(api, a):
    response = api.post('/api/task/rate-limit/tasks.nope',
                        data={'ratelimit': '5/s', 'workername': a.hostname})

    assert response.status_code == 404
    assert 'tasks.nope' in response.json()['error']


@pytest.mark.parametrize('path, data', [
    ('/api/task/rate-limit/tasks.nope', {'ratelimit': '5/s'}),
    ('/api/task/timeout/tasks.nope', {'soft': '1'}),
])
def test_the_error_of_a_task_command_carries_the_workers_own_answer(api, a, path, data):
    response = api.post(path, data=dict(data, workername=a.hostname))

    assert response.status_code == 404
    assert response.json() == {
        'error': f"Unknown task 'tasks.nope' (worker '{a.hostname}' answered: unknown task)"}


def test_time_limits_are_applied_by_the_worker(cluster, api, a):
    response = api.post('/api/task/timeout/tasks.sleep',
                        data={'soft': '0.5', 'hard': '30', 'workername': a.hostname})
    try:
        assert response.status_code == 200
        assert response.json() == {'message': 'time limits set successfully'}
        assert 'tasks.sleep [soft_time_limit=0.5 time_limit=30.0]' in registered(
            cluster, a, 'soft_time_limit', 'time_limit')
        # Celery's prefork worker reads a task's limits when it (re)builds its
        # task strategies, which a pool restart does.
        cluster.client.control.pool_restart(destination=[a.hostname], reply=True, timeout=5)
        result = cluster.client.send_task('tasks.sleep', (5,), queue='only-a')
        result.get(timeout=20, propagate=False)
        assert result.state == 'FAILURE'
        assert type(result.result).__name__ == 'SoftTimeLimitExceeded'
    finally:
        reset = api.post('/api/task/timeout/tasks.sleep', data={'workername': a.hostname})
        cluster.client.control.pool_restart(destination=[a.hostname], reply=True, timeout=5)
    assert reset.status_code == 200
    assert 'tasks.sleep' in registered(cluster, a, 'soft_time_limit', 'time_limit')


def test_time_limit_of_a_task_the_worker_does_not_have_is_404(api, a):
    response = api.post('/api/task/timeout/tasks.nope',
                        data={'soft': '1', 'workername': a.hostname})

    assert response.status_code == 404
    assert 'tasks.nope' in response.json()['error']


def test_shutdown_stops_the_worker_process(cluster, flower, api):
    (worker,) = cluster.start_workers(
        dict(name=f'api-s-{uuid.uuid4().hex[:6]}@localhost', pool='threads', concurrency=1))
    cluster.wait_known(flower, worker)

    response = api.post(f'/api/worker/shutdown/{worker.hostname}')

    assert response.status_code == 200
    assert response.json() == {'message': 'Shutting down!'}
    wait_for(lambda: not worker.running, timeout=30, what='the worker process to exit')
    assert worker.process.returncode == 0


def test_command_to_a_worker_that_does_not_answer_is_503(cluster, flower, api):
    (worker,) = cluster.start_workers(
        dict(name=f'api-gone-{uuid.uuid4().hex[:6]}@localhost', pool='threads', concurrency=1))
    cluster.wait_known(flower, worker)
    worker.kill()

    response = api.post(f'/api/worker/pool/grow/{worker.hostname}')

    assert response.status_code == 503
    assert 'did not reply' in response.json()['error']
