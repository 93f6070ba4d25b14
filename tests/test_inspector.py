"""The asynchronous Inspector against real workers, and its bounds without any."""
import asyncio

import pytest

from flower.inspector import Inspection, Inspector


TASK_LISTS = {'active', 'reserved', 'scheduled', 'revoked'}


def snapshot(flower):
    return flower.call(lambda: {name: dict(info) for name, info in flower.app.workers.items()})


def test_inspect_all_workers_collects_all_but_the_task_lists(broker_url, worker_factory,
                                                             flower_factory):
    first = worker_factory(broker_url, pool='threads', concurrency=1)
    second = worker_factory(broker_url, pool='threads', concurrency=1, queues=['celery', 'extra'])
    flower = flower_factory(broker_url, enable_events=False)

    results = dict(flower.run_coroutine(flower.app.update_workers))

    assert set(results) == set(Inspector.inspect_methods) - TASK_LISTS
    workers = snapshot(flower)
    assert {first.hostname, second.hostname} <= set(workers)
    info = workers[second.hostname]
    assert set(info) == set(Inspector.inspect_methods) - TASK_LISTS | {'timestamp'}
    assert info['stats']['pid'] == second.pid
    assert 'tasks.add' in info['registered']
    assert {queue['name'] for queue in info['active_queues']} == {'celery', 'extra'}
    assert info['conf']['worker_pool_restarts'] is True
    assert info['timestamp'] > 0


def test_inspect_one_worker_only_asks_that_worker_for_everything(broker_url, worker_factory,
                                                                  flower_factory):
    first = worker_factory(broker_url, pool='threads', concurrency=1)
    second = worker_factory(broker_url, pool='threads', concurrency=1)
    flower = flower_factory(broker_url, enable_events=False)

    results = dict(flower.run_coroutine(flower.app.update_workers, first.hostname))

    assert set(results) == set(Inspector.inspect_methods) == set(Inspector.methods)
    assert set(results['stats']) == {first.hostname}
    workers = snapshot(flower)
    assert second.hostname not in workers
    info = workers[first.hostname]
    assert info['active'] == [] and info['scheduled'] == [] and info['reserved'] == []
    assert TASK_LISTS <= set(info)
    # A later refresh of every worker keeps the task lists it does not ask for.
    flower.run_coroutine(flower.app.update_workers)
    assert TASK_LISTS <= set(snapshot(flower)[first.hostname])


def test_inspect_of_an_unknown_worker_returns_empty_replies_after_the_timeout(
        broker_url, flower_factory):
    flower = flower_factory(broker_url, inspect_timeout=300)
    assert flower.app.inspector.timeout == 0.3

    results = dict(flower.run_coroutine(flower.app.update_workers, 'nobody@nowhere'))

    assert results == {method: {} for method in Inspector.inspect_methods}


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


def test_a_broker_failure_is_logged_in_one_line_and_not_raised(redis_server, flower_factory,
                                                                caplog):
    from flower.control import InspectionFailed

    flower = flower_factory(redis_server.url, enable_events=False, inspect_timeout=300)
    redis_server.stop()
    caplog.clear()

    inspection = flower.run_coroutine(flower.app.inspector.inspect, 'w@nowhere', timeout=60)

    assert list(inspection) == []
    assert 'Connection refused' in inspection.error
    # The inspection of every worker Flower makes at start may fail too (and say so) when
    # it is still waiting for replies as the broker stops: only this one's lines count.
    warnings = [record for record in caplog.records
                if record.name == 'flower.inspector' and record.levelname == 'WARNING'
                and 'every worker' not in record.getMessage()]
    assert len(warnings) == 1 and '\n' not in warnings[0].getMessage()
    assert 'w@nowhere' in warnings[0].getMessage()
    with pytest.raises(InspectionFailed, match='Cannot inspect workers: .*Connection refused'):
        flower.run_coroutine(flower.app.update_workers, timeout=60)


class CountingInspector(Inspector):
    """Records how many inspections ran at once, and which, without a broker."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.running = self.most = 0
        self.started = []

    async def _inspect_now(self, workername):
        self.started.append(workername)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.05)
            return Inspection()
        finally:
            self.running -= 1


def test_inspections_are_bounded_and_callers_of_one_worker_share_one():
    async def scenario():
        inspector = CountingInspector(None, None, 1.0, max_concurrency=3)
        names = [f'w{index}@h' for index in range(8)]
        await asyncio.gather(*(inspector.inspect(name) for name in names * 5))
        return inspector

    inspector = asyncio.run(scenario())

    assert inspector.max_concurrency == 3 and inspector.most == 3
    # Forty callers for eight workers: the callers that came while an inspection
    # of their worker waited for its slot joined it.
    assert sorted(inspector.started) == sorted(f'w{index}@h' for index in range(8))
