"""``flower.app.Flower`` as people embed it: the attributes and methods they rely on."""
import socket
import types

import tornado.web

from flower import control, retry, urls
from flower.base_handler import error_message, error_status
from flower.events import Events, EventsState
from flower.inspector import Inspector
from flower.utils.broker import BrokerError
from flower.utils.purge import UnknownQueue
from flower.views.auth import GithubLoginHandler, GoogleAuth2LoginHandler, LoginHandler
from tests.support.waiting import wait_for


def test_the_application_exposes_its_documented_surface(broker_url, flower_factory,
                                                        worker_factory):
    worker = worker_factory(broker_url, pool='threads', concurrency=1)
    flower = flower_factory(broker_url, enable_events=False, inspect_timeout=2000)
    app = flower.app
    assert isinstance(app, tornado.web.Application)
    assert app.options.port == flower.options.port
    assert app.capp.conf.broker_url == broker_url
    assert app.transport == 'redis'
    assert isinstance(app.events, Events) and isinstance(app.events.state, EventsState)
    assert isinstance(app.inspector, Inspector) and app.inspector.timeout == 2.0

    flower.run_coroutine(app.update_workers, worker.hostname)
    assert set(app.workers) == {worker.hostname}
    assert app.workers[worker.hostname]['stats']['pid'] == worker.process.pid


def test_stop_closes_the_port_and_the_capture_thread(broker_url, flower_factory):
    flower = flower_factory(broker_url, enable_events=False)
    socket.create_connection(('127.0.0.1', flower.options.port), timeout=2).close()
    flower.stop()
    assert not flower.app.events.is_alive()
    try:
        socket.create_connection(('127.0.0.1', flower.options.port), timeout=2).close()
    except ConnectionRefusedError:
        pass
    else:
        raise AssertionError("Flower still accepts connections after stop()")


def test_long_offline_workers_are_purged_on_a_timer_without_any_request(
        broker_url, flower_factory, worker_factory):
    worker = worker_factory(broker_url, pool='threads', concurrency=1)
    flower = flower_factory(broker_url, purge_offline_workers=1, inspect_timeout=2000)
    app, name = flower.app, worker.hostname

    def known():
        return (name in app.events.state.workers, name in app.events.state.counter,
                name in app.workers, name in app.metrics.exposition({}).decode())

    wait_for(lambda: flower.call(known) == (True, True, True, True), timeout=30,
             what='the worker known to the state, the counters, the inspector and the metrics')
    worker.stop()  # warm shutdown: a worker-offline event
    wait_for(lambda: flower.call(known) == (False, False, False, False), timeout=30,
             what='the offline worker forgotten everywhere, with no request made')


def _options(**values):
    defaults = dict(cookie_secret=None, debug=False, auth='', auth_provider=None)
    return types.SimpleNamespace(**dict(defaults, **values))


def test_routes_and_settings_are_made_from_the_options_not_at_import():
    first, second = urls.app_settings(_options()), urls.app_settings(_options())
    assert first['cookie_secret'] != second['cookie_secret']
    assert urls.app_settings(_options(cookie_secret='kept'))['cookie_secret'] == 'kept'

    def login_handler(options):
        return next(spec.handler_class for spec in urls.routes(options)
                    if isinstance(spec, tornado.web.URLSpec) and spec.name == 'login')

    assert login_handler(_options()) is LoginHandler
    assert login_handler(_options(auth='.*@example.com')) is GoogleAuth2LoginHandler
    assert login_handler(_options(auth='.*@example.com', auth_provider=(
        'flower.views.auth.GithubLoginHandler'))) is GithubLoginHandler


def test_each_control_endpoint_is_served_for_scripts_and_for_the_pages_by_one_handler():
    routes = [route for route in urls.routes(_options()) if isinstance(route, tuple)]
    api = {pattern[len('/api'):]: handler for pattern, handler, *_ in routes
           if pattern.startswith('/api/')}
    pages = {pattern[len('/control'):]: (handler, kwargs) for pattern, handler, kwargs in
             (route for route in routes if route[0].startswith('/control/'))}
    assert len(pages) == len(urls.CONTROL_ENDPOINTS) == 15
    assert {'/queues/purge/(.+)', '/task/retry/(.+)', '/tasks/revoke'} <= set(pages)
    for path, (handler, kwargs) in pages.items():
        assert api[path] is handler and kwargs == {'access': 'page'}


def test_the_failures_of_operations_are_answered_by_one_table():
    assert error_status(control.UnknownTask("no such task")) == 404
    assert error_status(retry.UnknownTaskId("never seen")) == 404
    assert error_status(retry.RetryRefused("truncated")) == 409
    assert error_status(control.CommandRefused("refused")) == 403
    assert error_status(control.NoReply("silence")) == 503
    assert error_status(control.InspectionFailed("down")) == 503
    assert error_status(BrokerError("down")) == 503
    assert error_status(UnknownQueue("no such queue")) == 404
    assert error_status(ValueError("a bug")) is None
    assert error_message(control.NoReply("No worker replied"), 503, 'Service Unavailable') == \
        "No worker replied"
    assert error_message(ValueError("internals"), 500, 'Internal Server Error') == \
        'Internal Server Error'
