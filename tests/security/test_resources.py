"""Requests cannot make Flower spend broker connections, threads or time without bound
(items 6, 9 and 10 of issue 15)."""
import concurrent.futures
import html
import json
import socket
import threading
import time
import urllib.parse
import uuid

import pytest
import redis
import requests

from tests.support.waiting import wait_for

PARALLEL = 30


class Broadcasts:
    """Counts the broadcasts (worker control messages, on kombu's pidbox channels) the
    Redis server carries; worker heartbeats and other events are not counted."""

    def __init__(self, server):
        self._client = redis.Redis.from_url(server.url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self.count = 0
        self._pubsub.psubscribe(**{'*pidbox*': self._heard})
        self._thread = self._pubsub.run_in_thread(sleep_time=0.05, daemon=True)

    def _heard(self, message):
        self.count += 1

    def settled(self):
        """The count once no broadcast came for a second (start-up inspection done)."""
        counts = [self.count]

        def steady():
            time.sleep(1)
            counts.append(self.count)
            return counts[-1] == counts[-2]
        wait_for(steady, what='broadcasts to stop')
        return counts[-1]

    def close(self):
        self._thread.stop()
        self._thread.join(5)  # not reading any more when its connection closes
        self._pubsub.close()
        self._client.close()


@pytest.fixture
def broadcasts(redis_server):
    counter = Broadcasts(redis_server)
    yield counter
    counter.close()


def fetch_in_parallel(flower, paths):
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(paths)) as pool:
        return list(pool.map(lambda path: requests.get(flower.base_url + path, timeout=60), paths))


def test_item09_unknown_worker_is_404_without_broadcasting(redis_server, flower_factory,
                                                           monkeypatch, broadcasts):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    flower = flower_factory(redis_server.url, inspect_timeout=300, enable_events=False)
    before = broadcasts.settled()

    names = [f'nobody-{number}@nowhere' for number in range(PARALLEL)]
    paths = ['/worker/' + urllib.parse.quote(name) for name in names]
    paths += [f'/api/workers?refresh=1&workername={urllib.parse.quote(name)}' for name in names[:5]]
    answers = fetch_in_parallel(flower, paths)

    assert [answer.status_code for answer in answers] == [404] * len(paths)
    assert "Unknown worker 'nobody-0@nowhere'" in html.unescape(answers[0].text)
    assert answers[-1].json() == {'error': "Unknown worker 'nobody-4@nowhere'"}
    assert broadcasts.settled() == before


def test_item09_concurrent_inspections_are_bounded(redis_server, flower_factory, worker_factory,
                                                   broadcasts):
    worker = worker_factory(redis_server.url, pool='solo', concurrency=1)
    flower = flower_factory(redis_server.url, inspect_timeout=1000, enable_events=False)
    wait_for(lambda: flower.call(lambda: worker.hostname in flower.app.events.state.workers),
             what='Flower to hear from the worker')
    before = broadcasts.settled()

    path = '/worker/' + urllib.parse.quote(worker.hostname)
    answers = fetch_in_parallel(flower, [path] * PARALLEL)

    assert [answer.status_code for answer in answers] == [200] * PARALLEL
    assert all(worker.hostname in answer.text for answer in answers)
    # One inspection is 8 broadcasts. Requests arriving while one runs share it
    # (unbounded, each request made its own: 240 broadcasts).
    sent = broadcasts.settled() - before
    assert 8 <= sent <= 8 * 4, sent


def gets(server):
    """How many GET commands the Redis server ran: each result poll is one."""
    client = redis.Redis.from_url(server.url)
    try:
        return client.info('commandstats').get('cmdstat_get', {}).get('calls', 0)
    finally:
        client.close()


@pytest.mark.parametrize('timeout', ['300.5', '86400', '1e9'])
def test_item06_a_result_timeout_over_the_maximum_is_a_400(broker_url, flower_factory, monkeypatch,
                                                           timeout):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    flower = flower_factory(broker_url, inspect_timeout=300, enable_events=False)
    status, body = flower.get(f'/api/task/result/{uuid.uuid4()}?timeout={timeout}')
    assert status == 400, body
    assert "Invalid value for argument 'timeout'" in json.loads(body)['error']
    status, body = flower.get(f'/api/task/result/{uuid.uuid4()}?timeout=0.2')
    assert status == 200 and json.loads(body)['state'] == 'PENDING'


def open_result_request(flower, task_id):
    """A client waiting for a result with the longest timeout; returns its socket."""
    client = socket.create_connection(('127.0.0.1', flower.options.port), timeout=10)
    client.sendall(f'GET /api/task/result/{task_id}?timeout=300 HTTP/1.1\r\n'
                   f'Host: 127.0.0.1\r\n\r\n'.encode())
    return client


def test_item06_abandoned_result_requests_stop_polling(redis_server, flower_factory, monkeypatch):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    flower = flower_factory(redis_server.url, inspect_timeout=300, enable_events=False)
    clients = [open_result_request(flower, uuid.uuid4()) for _ in range(PARALLEL)]
    start = gets(redis_server)
    wait_for(lambda: gets(redis_server) > start + 2 * PARALLEL, what='the results to be polled')
    # Thirty waiting requests, a few threads polling for all of them.
    pollers = [thread for thread in threading.enumerate() if thread.name == 'flower-result-poll']
    for client in clients:
        client.close()

    def polling_stopped():
        before = gets(redis_server)
        time.sleep(1.5)  # waiting requests poll at least every 0.5 s
        return gets(redis_server) == before
    wait_for(polling_stopped, timeout=20, what='polling to stop once the clients left')
    assert 1 <= len(pollers) <= 4, pollers
