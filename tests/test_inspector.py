"""The asynchronous Inspector against real workers."""

from flower.inspector import Inspector


def test_inspect_all_workers_collects_every_method(broker_url, worker_factory, flower_factory):
    first = worker_factory(broker_url, pool='threads', concurrency=1)
    second = worker_factory(broker_url, pool='threads', concurrency=1, queues=['celery', 'extra'])
    flower = flower_factory(broker_url)

    results = dict(flower.run_coroutine(flower.app.update_workers))

    assert set(results) == set(Inspector.methods)
    workers = flower.call(lambda: {name: dict(info) for name, info in flower.app.workers.items()})
    assert {first.hostname, second.hostname} <= set(workers)
    info = workers[second.hostname]
    assert set(Inspector.methods) <= set(info)
    assert info['stats']['pid'] == second.pid
    assert 'tasks.add' in info['registered']
    assert {queue['name'] for queue in info['active_queues']} == {'celery', 'extra'}
    assert info['active'] == [] and info['scheduled'] == [] and info['reserved'] == []
    assert info['conf']['worker_pool_restarts'] is True
    assert info['timestamp'] > 0


def test_inspect_one_worker_only_asks_that_worker(broker_url, worker_factory, flower_factory):
    first = worker_factory(broker_url, pool='threads', concurrency=1)
    second = worker_factory(broker_url, pool='threads', concurrency=1)
    flower = flower_factory(broker_url)

    results = dict(flower.run_coroutine(flower.app.update_workers, first.hostname))

    assert set(results['stats']) == {first.hostname}
    assert flower.call(lambda: second.hostname not in flower.app.workers)


def test_inspect_of_an_unknown_worker_returns_empty_replies_after_the_timeout(
        broker_url, flower_factory):
    flower = flower_factory(broker_url, inspect_timeout=300)
    assert flower.app.inspector.timeout == 0.3

    results = dict(flower.run_coroutine(flower.app.update_workers, 'nobody@nowhere'))

    assert results == {method: {} for method in Inspector.methods}
