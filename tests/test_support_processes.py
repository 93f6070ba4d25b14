"""The process helpers themselves: private Redis, workers, clients."""

import os
import socket
import threading
import time

import pytest

from tests.support.processes import (
    CeleryWorker, RedisServer, free_port, port_is_open, process_group_members,
)


def _group_is_gone(pgid):
    """No live process left in the group (zombies are not counted)."""
    return process_group_members(pgid) == []


def test_free_port_is_bindable():
    port = free_port()
    assert isinstance(port, int) and 1024 <= port < 65536
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', port))


def test_redis_server_start_stop_restart(artifacts_dir):
    server = RedisServer(dir=artifacts_dir)
    server.start()
    try:
        port, first_pid = server.port, server.pid
        assert server.url == f'redis://127.0.0.1:{port}/0'
        assert server.url_for(7) == f'redis://127.0.0.1:{port}/7'
        assert server.ping()
        assert server.command('SET', 'k', 'v', db=3) == '+OK'
        assert server.command('DBSIZE', db=3) == ':1'
        assert server.command('DBSIZE', db=4) == ':0'
        server.flushdb(3)
        assert server.command('DBSIZE', db=3) == ':0'

        server.restart()
        assert server.port == port
        assert server.pid != first_pid
        assert server.ping()
        assert _group_is_gone(first_pid)
    finally:
        pid = server.pid
        server.stop()

    assert not server.running
    assert not server.ping()
    assert not port_is_open(port)
    assert _group_is_gone(pid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert os.path.exists(server.log_path)


def test_redis_server_context_manager_and_fixed_port(artifacts_dir):
    port = free_port()
    with RedisServer(port=port, dir=artifacts_dir) as server:
        assert server.port == port
        assert port_is_open(port)
    assert not port_is_open(port)


def test_redis_server_fixture(redis_server):
    assert redis_server.running and redis_server.ping()


def test_worker_runs_tasks_and_leaves_no_process(redis_server, artifacts_dir,
                                                 celery_client):
    url = redis_server.url_for(1)
    # prefork, so that stopping also has pool children to take care of.
    worker = CeleryWorker(url, 'adder@localhost', pool='prefork',
                          concurrency=1, log_dir=artifacts_dir)
    worker.start()
    try:
        worker.wait_ready(30)
        assert worker.hostname == 'adder@localhost'
        pgid = worker.pid
        assert os.getpgid(worker.pid) == pgid
        assert len(process_group_members(pgid)) >= 2  # main + pool child

        app = celery_client(url)
        assert app.send_task('tasks.add', (2, 3)).get(timeout=15) == 5
        assert app.send_task('tasks.echo', ({'a': [1]},)).get(
            timeout=15) == {'a': [1]}
        with pytest.raises(ValueError, match='kaboom'):
            app.send_task('tasks.error', ('kaboom',)).get(timeout=15)
    finally:
        returncode = worker.stop()

    assert returncode == 0  # warm shutdown
    assert _group_is_gone(pgid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert 'adder@localhost' in open(worker.log_path).read()


def test_worker_kill_leaves_no_process(broker_url, worker_factory):
    worker = worker_factory(broker_url, pool='prefork', concurrency=2)
    pgid = worker.pid
    assert len(process_group_members(pgid)) >= 3
    worker.kill()
    assert not worker.running
    assert _group_is_gone(pgid)


def test_worker_factory_and_retrying_tasks(broker_url, worker_factory,
                                           celery_client):
    worker = worker_factory(broker_url, pool='threads', concurrency=2)
    assert worker.hostname.endswith('@localhost')
    app = celery_client(broker_url)
    result = app.send_task('tasks.retry_then_succeed')
    assert result.get(timeout=15) == 'ok'
    with pytest.raises(RuntimeError, match='attempt 3 failed'):
        app.send_task('tasks.always_fails_with_retries').get(timeout=15)


def test_abortable_sleep_can_be_aborted(broker_url, worker_factory,
                                        celery_client):
    from celery.contrib.abortable import AbortableAsyncResult

    worker_factory(broker_url, pool='threads', concurrency=1)
    app = celery_client(broker_url)
    started = time.monotonic()
    task_id = app.send_task('tasks.abortable_sleep', (30,)).id
    result = AbortableAsyncResult(task_id, app=app)
    time.sleep(0.5)
    result.abort()
    assert result.get(timeout=10) == 'aborted'
    assert time.monotonic() - started < 10


def test_wait_ready_reports_worker_log(broker_url, artifacts_dir):
    worker = CeleryWorker(broker_url, 'broken@localhost',
                          app='no_such_module_here', pool='solo',
                          log_dir=artifacts_dir)
    worker.start()
    try:
        with pytest.raises(RuntimeError) as info:
            worker.wait_ready(30)
    finally:
        worker.stop()
    assert 'no_such_module_here' in str(info.value)


def test_broker_url_uses_distinct_flushed_dbs(session_redis, broker_url):
    db = int(broker_url.rsplit('/', 1)[1])
    assert 1 <= db <= 15
    assert broker_url == session_redis.url_for(db)
    assert session_redis.command('DBSIZE', db=db) == ':0'


def test_events_are_isolated_by_db(session_redis, celery_client):
    """Events sent on one db do not reach receivers bound to another db.

    This is what lets tests share ``session_redis`` through ``broker_url``.
    """
    seen = {13: [], 14: []}
    ready = {13: threading.Event(), 14: threading.Event()}
    stop = threading.Event()

    def listen(db):
        app = celery_client(session_redis.url_for(db))
        with app.connection_for_read() as conn:
            recv = app.events.Receiver(conn, handlers={'*': seen[db].append})
            with recv.consumer_context() as (connection, _, _):
                ready[db].set()
                while not stop.is_set():
                    try:
                        connection.drain_events(timeout=0.2)
                    except socket.timeout:
                        pass

    def send(db, marker, count):
        app = celery_client(session_redis.url_for(db))
        with app.connection_for_write() as conn:
            dispatcher = app.events.Dispatcher(conn)
            for _ in range(count):
                dispatcher.send('worker-heartbeat', marker=marker)
            dispatcher.close()

    def wait_for(db, count):
        deadline = time.monotonic() + 5
        while len(seen[db]) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    threads = [threading.Thread(target=listen, args=(db,), daemon=True)
               for db in seen]
    for thread in threads:
        thread.start()
    try:
        for event in ready.values():
            assert event.wait(10)
        time.sleep(0.3)  # let the SUBSCRIBEs reach the server

        send(14, 'fourteen', 3)
        wait_for(14, 3)
        send(13, 'thirteen', 1)
        wait_for(13, 1)
        time.sleep(0.3)  # would anything else trickle in?
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)

    assert [e.get('marker') for e in seen[14]] == ['fourteen'] * 3
    assert [e.get('marker') for e in seen[13]] == ['thirteen']


def test_silent_worker_sends_no_event_until_enable_events(
        broker_url, worker_factory, celery_client):
    """``events=False``: nothing at all, until ``enable_events`` is sent."""
    app = celery_client(broker_url)
    seen = []
    ready, stop = threading.Event(), threading.Event()

    def listen():
        with app.connection_for_read() as conn:
            recv = app.events.Receiver(conn, handlers={
                '*': lambda event: seen.append(
                    (event['type'], event.get('hostname')))})
            with recv.consumer_context() as (connection, _, _):
                ready.set()
                while not stop.is_set():
                    try:
                        connection.drain_events(timeout=0.2)
                    except socket.timeout:
                        pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        assert ready.wait(10)
        time.sleep(0.3)
        quiet = worker_factory(broker_url, pool='threads', concurrency=1,
                               events=False)
        assert '-E' not in quiet.argv()
        assert 'task events: OFF' in open(quiet.log_path).read()
        assert app.send_task('tasks.add', (1, 2)).get(timeout=15) == 3
        time.sleep(1)
        assert [e for e in seen if e[1] == quiet.hostname] == []

        replies = app.control.enable_events(
            destination=[quiet.hostname], reply=True, timeout=2)
        assert replies and quiet.hostname in replies[0]
        assert app.send_task('tasks.add', (3, 4)).get(timeout=15) == 7
        deadline = time.monotonic() + 5
        while ('task-succeeded', quiet.hostname) not in seen:
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
    finally:
        stop.set()
        listener.join(5)


def test_worker_with_events_says_so(broker_url, worker_factory):
    loud = worker_factory(broker_url, pool='threads', concurrency=1)
    assert '-E' in loud.argv()
    assert 'task events: ON' in open(loud.log_path).read()
