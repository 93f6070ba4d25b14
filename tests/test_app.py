"""``flower.app.Flower`` as people embed it: the attributes and methods they rely on."""
import socket

import tornado.web

from flower.events import Events, EventsState
from flower.inspector import Inspector
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
