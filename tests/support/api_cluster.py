"""A module-scoped cluster for tests that share workers: a private Redis, workers, Flowers.

Starting workers is the slow part, so each module shares one :class:`Cluster`
(module scope) and its tests check their effects through Celery itself. The
``cluster`` fixture gives the API tests theirs; a module that needs other
workers or settings defines its own ``cluster`` fixture, with a ``Cluster``
(or a subclass holding the module's own helpers) used as a context manager.

The Celery app Flower monitors is built like the examples' client; importing
``examples/tasks.py`` here makes its tasks (Celery *shared* tasks) part of every
app created in this process, so Flower knows ``tasks.add`` and friends. The
workers run ``tests/api/worker_app.py``, which adds ``worker_only.repeat``: a
task Flower has no code for.
"""
import os
import shutil
import sys
import threading

import pytest
import requests

from tests.support.artifacts import module_dir
from tests.support.flower import FlowerServer
from tests.support.openapi import check_api_answer
from tests.support.processes import (
    EXAMPLES_DIR, REPO_DIR, CeleryWorker, RedisServer, celery_client,
)
from tests.support.waiting import wait_for

__all__ = ['Api', 'Cluster', 'cluster', 'wait_for']

if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)
import tasks  # noqa: E402,F401  (registers the example tasks on every app, see above)

WORKER_APP = 'tests.api.worker_app'


class Api:
    """``requests`` against one Flower's API; every call returns the response, whose
    answer has been checked against the API's OpenAPI document first."""

    def __init__(self, server):
        self.server = server
        self.session = requests.Session()
        self.session.hooks['response'].append(self._check_answer)

    def _check_answer(self, response, *args, **kwargs):
        content_type = response.headers.get('Content-Type', '')
        check_api_answer(response.request.method, response.url, response.status_code,
                         content_type, response.text if 'json' in content_type else '',
                         url_prefix=getattr(self.server.options, 'url_prefix', ''))

    def get(self, path, **kwargs):
        return self.session.get(self.server.base_url + path, timeout=60, **kwargs)

    def post(self, path, **kwargs):
        return self.session.post(self.server.base_url + path, timeout=60, **kwargs)


class Cluster:
    """A private redis-server plus the workers and Flowers a test module starts.

    Logs go to ``log_dir``, emptied first. Workers run ``worker_app`` from
    ``worker_dir`` unless their spec says otherwise. ``env`` is set in this
    process until :meth:`stop`: Flower reads some settings (such as
    ``FLOWER_UNAUTHENTICATED_API``) from the environment on every request.
    """

    def __init__(self, log_dir, worker_app=WORKER_APP, worker_dir=REPO_DIR, env=None):
        shutil.rmtree(log_dir, ignore_errors=True)
        os.makedirs(log_dir)
        self.log_dir = log_dir
        self.worker_app = worker_app
        self.worker_dir = worker_dir
        self.redis = RedisServer(dir=log_dir).start()
        self.url = self.redis.url
        self.client = celery_client(self.url)
        self.workers = []
        self.flowers = []
        self.environment = pytest.MonkeyPatch()
        for name, value in (env or {}).items():
            self.environment.setenv(name, value)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def make_app(self, **settings):
        """A Celery app on this broker (result backend included) knowing the example tasks."""
        app = celery_client(self.url)
        app.conf.update(settings)
        assert 'tasks.add' in app.tasks
        return app

    def start_workers(self, *specs):
        """Start one worker per ``dict`` of ``CeleryWorker`` arguments, side by side."""
        started = []
        for spec in specs:
            spec = dict(spec)
            spec.setdefault('app', self.worker_app)
            spec.setdefault('workdir', self.worker_dir)
            spec.setdefault('log_dir', self.log_dir)
            worker = CeleryWorker(self.url, spec.pop('name'), **spec)
            self.workers.append(worker)
            started.append(worker.start())
        for worker in started:
            worker.wait_ready(60, client=self.client)
        return started

    def start_flower(self, capp=None, **options):
        options.setdefault('inspect_timeout', 3000)
        server = FlowerServer(self.url, capp=capp or self.make_app(), **options).start()
        self.flowers.append(server)
        return server

    def wait_known(self, flower, *workers):
        """Wait until ``flower`` has had events from every one of ``workers``."""
        names = {worker.hostname for worker in workers}
        wait_for(lambda: names <= flower.call(lambda: set(flower.app.events.state.workers)),
                 what=f"Flower to see {sorted(names)}")

    def inspect(self, worker, method, *args):
        """The worker's reply to ``inspect <method> <args>`` (None if it did not answer)."""
        inspector = self.client.control.inspect(destination=[worker.hostname], timeout=5)
        replies = getattr(inspector, method)(*args)
        return (replies or {}).get(worker.hostname)

    def stats(self, worker):
        """The worker's ``inspect stats`` reply."""
        return self.inspect(worker, 'stats')

    def stop(self):
        for flower in self.flowers:
            flower.stop()
        stoppers = [threading.Thread(target=worker.stop) for worker in self.workers]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        self.client.close()
        self.redis.stop()
        self.environment.undo()


@pytest.fixture(scope='module')
def cluster(request):
    """The module's :class:`Cluster`; logs in ``test-artifacts/api-<module>/``."""
    with Cluster(module_dir(request.module.__name__, prefix='api-')) as started:
        yield started
