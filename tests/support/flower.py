"""Run a real Flower application in a background thread of the test process.

The application listens on a free port with its own IO loop, so tests can talk
HTTP to it and also look at its state (through :meth:`FlowerServer.call`,
which runs a function on the IO loop thread and returns its result).
"""
import asyncio
import concurrent.futures
import threading
import types
import urllib.error
import urllib.request

import celery
import pytest
from tornado.ioloop import IOLoop

from flower.app import Flower
from flower.command import tune_process
from flower.options import default_options
from tests.support.openapi import check_api_answer
from tests.support.processes import free_port


def make_options(**overrides):
    """A snapshot of Flower's defaults with ``overrides``; Tornado's globals stay untouched."""
    values = default_options.as_dict()
    unknown = set(overrides) - set(values)
    if unknown:
        raise TypeError(f"unknown Flower options: {sorted(unknown)}")
    values.update(overrides)
    return types.SimpleNamespace(**values)


class FlowerServer:
    """A started Flower app; use as a context manager or call :meth:`stop`."""

    def __init__(self, broker_url, capp=None, app_settings=None, **option_overrides):
        option_overrides.setdefault('port', free_port())
        option_overrides.setdefault('address', '127.0.0.1')
        self.options = make_options(**option_overrides)
        self.capp = capp or celery.Celery('flower-under-test', broker=broker_url,
                                          backend=broker_url)
        self.app_settings = app_settings or {}
        self.app = None
        self.io_loop = None
        self._ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, name='flower-under-test', daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.options.port}"

    def start(self, timeout=15):
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("Flower did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _run(self):
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            self.io_loop = IOLoop.current()
            self.app = Flower(capp=self.capp, options=self.options, io_loop=self.io_loop,
                              **self.app_settings)
            self.io_loop.add_callback(self._ready.set)
            tune_process()
            self.app.start()
        except BaseException as exc:  # report start-up failures to the test thread
            self._error = exc
            self._ready.set()

    def call(self, function, *args, timeout=10):
        """Run ``function(*args)`` on the IO loop thread and return its result."""
        future = concurrent.futures.Future()

        def run():
            try:
                future.set_result(function(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self.io_loop.add_callback(run)
        return future.result(timeout)

    def run_coroutine(self, coroutine_function, *args, timeout=30):
        """Await ``coroutine_function(*args)`` on the IO loop and return its result."""
        future = concurrent.futures.Future()

        async def run():
            try:
                future.set_result(await coroutine_function(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self.io_loop.add_callback(run)
        return future.result(timeout)

    def get(self, path, timeout=5, headers=None):
        """GET ``path``; return ``(status, body text)`` (error statuses included)."""
        status, _, body = self.fetch(path, timeout=timeout, headers=headers)
        return status, body

    def fetch(self, path, timeout=5, headers=None):
        """GET ``path``; return ``(status, response headers, body text)``. An API answer
        is checked against the API's OpenAPI document first."""
        request = urllib.request.Request(self.base_url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            status, headers, body = exc.code, exc.headers, exc.read()
        body = body.decode('utf-8')
        check_api_answer('GET', path, status, headers.get('Content-Type', ''), body,
                         url_prefix=self.options.url_prefix)
        return status, headers, body

    def stop(self):
        if self.io_loop is not None and self._thread.is_alive():
            self.io_loop.add_callback(self.app.stop)
            self._thread.join(timeout=15)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


@pytest.fixture
def flower_factory():
    """``flower_factory(broker_url, **options)`` starts a FlowerServer; all stopped at teardown."""
    servers = []

    def factory(broker_url, **option_overrides):
        server = FlowerServer(broker_url, **option_overrides)
        servers.append(server)
        return server.start()

    yield factory
    for server in servers:
        server.stop()
