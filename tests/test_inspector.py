"""The asynchronous Inspector against real workers, and its bounds without any."""
import asyncio
import json
import time

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


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s")
        time.sleep(0.2)


def test_a_refresh_of_every_worker_answers_once_every_worker_online_replied(
        broker_url, worker_factory, flower_factory):
    """With a long inspect timeout, a refresh answers with every worker's replies as soon as
    the workers online by their heartbeats have replied, not after the timeout."""
    workers = [worker_factory(broker_url, pool='threads', concurrency=1) for _ in range(3)]
    names = {worker.hostname for worker in workers}
    flower = flower_factory(broker_url, enable_events=False, inspect_timeout=20000,
                            unauthenticated_api=True)
    # The inspection made at start waits its whole timeout: it finds silent workers too.
    flower.run_coroutine(flower.app.inspector.inspections_under_way, timeout=60)
    wait_until(lambda: flower.call(flower.app.expected_repliers) == names, 30)
    before = time.time()

    started = time.monotonic()
    status, body = flower.get('/api/workers?refresh=1', timeout=60)
    answered_in = time.monotonic() - started

    assert status == 200
    assert answered_in < 10, f"waited {answered_in:.1f} s of the 20 s timeout"
    answer = json.loads(body)
    assert names <= set(answer)
    for name in names:
        assert answer[name]['timestamp'] >= before, name
        assert {'stats', 'active_queues', 'registered', 'conf'} <= set(answer[name])
    # One worker: once it replied (Celery stops there too, its destination being one).
    started = time.monotonic()
    results = dict(flower.run_coroutine(flower.app.update_workers, workers[0].hostname))
    answered_in = time.monotonic() - started
    assert answered_in < 10, f"waited {answered_in:.1f} s of the 20 s timeout"
    assert all(set(replies) == {workers[0].hostname} for replies in results.values()), results


def test_a_worker_known_only_from_inspection_is_waited_for(broker_url, worker_factory,
                                                          flower_factory):
    """A silent worker (no events, no heartbeats) is found by the refreshes of every
    worker: while Flower knows one, they wait for replies until the timeout."""
    loud = worker_factory(broker_url, pool='threads', concurrency=1)
    # Without gossip either, its event dispatcher is off: it does not answer the heartbeat
    # Flower asks every worker for once subscribed, which would make it known by events.
    silent = worker_factory(broker_url, pool='threads', concurrency=1, events=False,
                            extra_args=['--without-gossip'])
    flower = flower_factory(broker_url, enable_events=False, inspect_timeout=3000)
    flower.run_coroutine(flower.app.inspector.inspections_under_way, timeout=60)
    wait_until(lambda: loud.hostname in flower.call(lambda: dict(flower.app.events.state.workers)), 30)
    assert silent.hostname in snapshot(flower)
    assert silent.hostname not in flower.call(lambda: dict(flower.app.events.state.workers))
    assert flower.call(flower.app.expected_repliers) is None
    before = time.time()

    flower.run_coroutine(flower.app.update_workers, timeout=60)

    workers = snapshot(flower)
    assert workers[silent.hostname]['timestamp'] >= before
    assert workers[loud.hostname]['timestamp'] >= before

