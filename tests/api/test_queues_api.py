"""``/api/queues/length`` and the broker adapters of :mod:`flower.utils.broker`.

Redis is real: messages are published by Celery and counted by Flower,
priority sub-queues included. RabbitMQ's management API is played by a
small HTTP server speaking its ``/api/queues/<vhost>`` protocol.
"""
import asyncio
import base64
import json
import threading

import pytest
import redis
import tornado.web
from celery import Celery
from kombu import Queue
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from flower.utils.broker import (
    Broker, BrokerError, RabbitMQ, Redis, RedisSentinel, RedisSocket, RedisSsl,
)
from tests.support.api_cluster import Api
from tests.support.flower import FlowerServer
from tests.support.processes import RedisServer, free_port


def lengths(api):
    response = api.get('/api/queues/length')
    assert response.status_code == 200, response.text
    return response.json()


def test_redis_queue_lengths_include_priority_sub_queues(cluster):
    queues = [Queue('celery'), Queue('backlog')]
    flower = cluster.start_flower(capp=cluster.make_app(task_queues=queues))
    for priority in (None, 0, 5, 9):
        cluster.client.send_task('tasks.add', (1, 1), queue='backlog', priority=priority)
    keys = redis.Redis.from_url(cluster.url).keys('backlog*')

    assert len(keys) == 3, keys  # the queue and two priority sub-queues
    assert lengths(Api(flower)) == {'active_queues': [
        {'name': 'backlog', 'messages': 4}, {'name': 'celery', 'messages': 0}]}


def test_redis_transport_options_set_separator_steps_and_key_prefix(cluster):
    options = {'sep': ':', 'priority_steps': [0, 5], 'global_keyprefix': 'pfx_'}
    settings = dict(task_queues=[Queue('jobs')], task_default_queue='jobs',
                    broker_transport_options=options)
    sender = cluster.make_app(**settings)
    flower = cluster.start_flower(capp=cluster.make_app(**settings))
    for priority in (0, 7, 7):
        sender.send_task('tasks.add', (1, 1), priority=priority)
    sender.close()

    assert sorted(redis.Redis.from_url(cluster.url).keys('pfx_jobs*')) == [b'pfx_jobs', b'pfx_jobs:5']
    assert lengths(Api(flower)) == {'active_queues': [{'name': 'jobs', 'messages': 3}]}


def test_queue_lengths_are_503_when_redis_is_down(redis_server):
    capp = Celery('down', broker=redis_server.url, backend=redis_server.url)
    with FlowerServer(redis_server.url, capp=capp, inspect_timeout=500) as flower:
        redis_server.stop()

        response = Api(flower).get('/api/queues/length')

    assert response.status_code == 503
    assert 'Cannot query Redis' in response.json()['error']


def test_queue_lengths_are_503_for_a_broker_without_queue_statistics(cluster):
    capp = Celery('memory', broker='memory://', backend='cache+memory://')
    flower = cluster.start_flower(capp=capp)

    response = Api(flower).get('/api/queues/length')

    assert response.status_code == 503
    assert "'memory' brokers" in response.json()['error']


# -- RabbitMQ management API ---------------------------------------------------

class FakeManagementApi:
    """``GET /api/queues/<vhost>`` answering ``queues``, for user ``mon``/``pw``."""

    def __init__(self, queues):
        self.queues = queues
        self.requests = []
        self.port = free_port()
        self._loop = None
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    @property
    def url(self):
        return f'http://mon:pw@127.0.0.1:{self.port}/api/'

    def _run(self):
        asyncio.set_event_loop(asyncio.new_event_loop())
        fake = self

        class QueuesHandler(tornado.web.RequestHandler):
            def get(self, vhost):
                fake.requests.append(self.request.uri)
                expected = 'Basic ' + base64.b64encode(b'mon:pw').decode()
                if self.request.headers.get('Authorization') != expected:
                    raise tornado.web.HTTPError(401)
                self.set_header('Content-Type', 'application/json')
                self.write(json.dumps(fake.queues.get(vhost, [])))

        self._loop = IOLoop.current()
        server = HTTPServer(tornado.web.Application([(r'/api/queues/([^/]+)', QueuesHandler)]))
        server.listen(self.port, address='127.0.0.1')
        self._ready.set()
        self._loop.start()

    def stop(self):
        self._loop.add_callback(self._loop.stop)


@pytest.fixture
def management_api():
    queue = {'name': 'celery', 'messages': 5, 'messages_ready': 3,
             'messages_unacknowledged': 2, 'consumers': 1, 'memory': 1234}
    other = {'name': 'not-asked', 'messages': 9}
    fake = FakeManagementApi({'/': [queue, other], 'jobs vhost': [dict(queue, messages=1)]})
    yield fake
    fake.stop()


def test_rabbitmq_queue_lengths_through_the_api(cluster, management_api):
    capp = Celery('rabbit', broker=f'amqp://guest:guest@127.0.0.1:{free_port()}//')
    flower = cluster.start_flower(capp=capp, broker_api=management_api.url)

    # The management API's queue object as it is, as Flower passes it on.
    assert lengths(Api(flower)) == {'active_queues': [
        {'name': 'celery', 'messages': 5, 'messages_ready': 3,
         'messages_unacknowledged': 2, 'consumers': 1, 'memory': 1234}]}
    assert management_api.requests[-1] == '/api/queues/%2F'


def test_rabbitmq_named_vhost_is_url_encoded(management_api):
    broker = Broker('amqp://guest@localhost/jobs%20vhost', http_api=management_api.url)

    assert asyncio.run(broker.queues(['celery', 'missing'])) == [
        {'name': 'celery', 'messages': 1, 'messages_ready': 3,
         'messages_unacknowledged': 2, 'consumers': 1, 'memory': 1234}]
    assert management_api.requests[-1] == '/api/queues/jobs%20vhost'


@pytest.mark.parametrize('http_api, message', [
    (None, 'need the broker_api option'),
    ('http://mon:wrong@127.0.0.1:{port}/api/', '401'),
    ('http://127.0.0.1:{free}/api/', 'Cannot query'),
    ('ftp://127.0.0.1/api/', r'http\(s\) URL'),
])
def test_rabbitmq_errors_say_why(management_api, http_api, message):
    if http_api:
        http_api = http_api.format(port=management_api.port, free=free_port())
    broker = Broker('amqp://guest:guest@localhost//', http_api=http_api, timeout=2)

    with pytest.raises(BrokerError, match=message):
        asyncio.run(broker.queues(['celery']))


# -- adapters and URLs -------------------------------------------------------------

@pytest.mark.parametrize('url, adapter, attributes', [
    ('amqp://user:pa%40ss@rabbit:5673/vh', RabbitMQ,
     dict(host='rabbit', port=5673, vhost='vh', username='user', password='pa@ss')),
    ('pyamqp://rabbit//', RabbitMQ, dict(host='rabbit', port=None, vhost='/')),
    ('redis://:secret@cache:6380/4', Redis, dict(host='cache', port=6380, db=4, password='secret')),
    ('redis://cache', Redis, dict(host='cache', db=0)),
    ('rediss://u:p@cache:6390/2', RedisSsl, dict(db=2, username='u', password='p')),
    ('redis+socket:///run/redis.sock?virtual_host=3', RedisSocket, dict(db=3)),
    ('sentinel://:pw@s1:26379;sentinel://s2:26380/5', RedisSentinel,
     dict(sentinels=[('s1', 26379), ('s2', 26380)], db=5, password='pw')),
])
def test_broker_picks_the_adapter_and_parses_the_url(url, adapter, attributes):
    broker = Broker(url, broker_options={'master_name': 'main'})

    assert type(broker) is adapter
    for name, value in attributes.items():
        assert getattr(broker, name) == value, name


def test_unknown_scheme_and_bad_db_are_broker_errors():
    with pytest.raises(BrokerError, match="'sqs' brokers"):
        Broker('sqs://key:secret@')
    with pytest.raises(BrokerError, match='Invalid Redis database'):
        Broker('redis://:secret@cache/zero')


class SocketRedisServer(RedisServer):
    """A private redis-server also listening on a unix socket."""

    def __init__(self, socket_path, **kwargs):
        super().__init__(**kwargs)
        self.socket_path = socket_path

    def argv(self):
        return super().argv() + ['--unixsocket', self.socket_path]


def test_redis_over_a_unix_socket(tmp_path):
    socket_path = str(tmp_path / 'redis.sock')
    server = SocketRedisServer(socket_path, dir=str(tmp_path)).start()
    try:
        client = redis.Redis(unix_socket_path=socket_path, db=2)
        client.lpush('sock-q', 'a', 'b')
        client.lpush('sock-q\x06\x166', 'c')
        broker = Broker(f'redis+socket://{socket_path}?virtual_host=2')

        assert asyncio.run(broker.queues(['sock-q'])) == [{'name': 'sock-q', 'messages': 3}]
    finally:
        server.stop()
