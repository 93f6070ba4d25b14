"""Shared fixtures: private Redis servers, Celery workers and clients.

* ``artifacts_dir``   -> ``<repo>/test-artifacts/<module>/<test name>/`` (logs...)
* ``redis_server``    -> a private, function-scoped ``RedisServer``
* ``session_redis``   -> one ``RedisServer`` shared by the whole session (of
                         one pytest-xdist worker: each has its own)
* ``broker_url``      -> ``redis://127.0.0.1:<session port>/<N>``, N cycling
                         over 1..15, the db flushed before the test
* ``worker_factory``  -> ``worker_factory(broker_url, name=None, **kw)``
                         starts a ready ``CeleryWorker``; stopped at teardown
* ``celery_client``   -> ``celery_client(broker_url)`` returns a Celery app
                         (the examples' config) to send tasks by name
* ``flower_factory``  -> a Flower app served on a thread (tests/support/flower.py)
* ``page``            -> a headless Chromium page (tests/support/browser.py)
* ``postgres_url``    -> a fresh PostgreSQL database (tests/support/postgres.py)

About isolating tests by Redis db number: kombu's Redis transport publishes
fanout messages (events, remote-control broadcasts) with Redis PUBLISH, which
is global to the server, but it prefixes every channel with the db
(``keyprefix_fanout = '/{db}.'``, on since ``fanout_prefix`` defaults to True
and Celery does not turn it off). Queues are lists in the selected db. So
two tests on distinct db numbers of one server see neither each other's tasks
nor each other's events or broadcasts;
``test_support_processes.test_events_are_isolated_by_db`` checks it.
Tests that stop, restart or crash the broker must use ``redis_server``.
"""

import itertools
import threading
import uuid

import pytest

from tests.support.artifacts import per_test_dir, worker_dir
from tests.support.processes import (
    CeleryWorker, RedisServer, celery_client as _make_client,
)

pytest_plugins = ['tests.support.flower', 'tests.support.browser', 'tests.support.rabbitmq',
                  'tests.support.command', 'tests.support.install', 'tests.support.api_cluster',
                  'tests.support.oauth_provider', 'tests.support.flower22',
                  'tests.support.audit', 'tests.support.parallel', 'tests.support.postgres',
                  'tests.support.history_stores']


@pytest.fixture
def artifacts_dir(request):
    """``<repo>/test-artifacts/<module>/<test name>/``: created, emptied first.

    Logs of the processes a test starts go there and stay after the run.
    """
    return per_test_dir(request.module.__name__, request.node.name)


@pytest.fixture
def redis_server(artifacts_dir):
    """A private redis-server for this test only (free to stop/restart)."""
    server = RedisServer(dir=artifacts_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def session_redis():
    """One redis-server shared by every test of the session (of this xdist worker)."""
    server = RedisServer(dir=worker_dir('_session'))
    server.start()
    yield server
    server.stop()


_db_numbers = itertools.cycle(range(1, 16))


@pytest.fixture
def broker_url(session_redis):
    """A broker URL on the shared server, on a db of its own (flushed)."""
    db = next(_db_numbers)
    session_redis.flushdb(db)
    return session_redis.url_for(db)


@pytest.fixture
def worker_factory(artifacts_dir):
    """Start ready workers: ``worker_factory(broker_url, name=None, **kw)``.

    ``kw`` goes to ``CeleryWorker`` (pool, concurrency, queues, extra_args,
    env, result_backend...); ``name`` defaults to a unique
    ``w<n>-<random>@localhost``. ``ready=False`` skips waiting for the ping
    reply. All workers are stopped (warm shutdown, then killed) at teardown.
    """
    workers = []
    counter = itertools.count(1)

    def factory(broker_url, name=None, ready=True, ready_timeout=30, **kw):
        if name is None:
            name = f'w{next(counter)}-{uuid.uuid4().hex[:6]}@localhost'
        kw.setdefault('log_dir', artifacts_dir)
        worker = CeleryWorker(broker_url, name, **kw)
        workers.append(worker)
        worker.start()
        if ready:
            worker.wait_ready(ready_timeout)
        return worker

    yield factory
    # Warm shutdowns take about a second each: run them side by side.
    stoppers = [threading.Thread(target=worker.stop) for worker in workers]
    for thread in stoppers:
        thread.start()
    for thread in stoppers:
        thread.join()


@pytest.fixture
def celery_client():
    """``celery_client(broker_url, result_backend=None)`` -> Celery app."""
    apps = []

    def factory(broker_url, result_backend=None):
        app = _make_client(broker_url, result_backend)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()
