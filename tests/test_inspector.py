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


def test_with_the_broker_gone_inspection_and_control_give_up(redis_server, flower_factory):
    """Celery retries broadcasts for ever; a dead broker must end in an error instead."""
    import threading

    from flower import control

    flower = flower_factory(redis_server.url, enable_events=False)
    redis_server.stop()
    outcomes = {}

    def attempt(name, coroutine_function, *args):
        try:
            flower.run_coroutine(coroutine_function, *args, timeout=30)
        except Exception as exc:  # what the caller sees
            outcomes[name] = exc

    attempts = [
        threading.Thread(target=attempt, args=('inspect', flower.app.update_workers)),
        threading.Thread(target=attempt, args=(
            'control', control.pool_grow, flower.app.capp, 'nobody@nowhere')),
    ]
    for thread in attempts:
        thread.start()
    for thread in attempts:
        thread.join(90)
    assert not any(thread.is_alive() for thread in attempts)
    assert set(outcomes) == {'inspect', 'control'}
    assert isinstance(outcomes['control'], control.BrokerUnavailable)
    for outcome in outcomes.values():
        assert not isinstance(outcome, TimeoutError), 'still retrying after 30 s'
        assert 'Connection refused' in str(outcome), repr(outcome)
