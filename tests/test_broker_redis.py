"""Queue lengths from real Redis servers: backlog, priority sub-queues, the
periodic sampler, a Redis that is down or misbehaves, passwords and db numbers,
TLS (``rediss://``) and Sentinel (``sentinel://``).
"""
import asyncio
import os
import re
import socket
import ssl
import threading
import urllib.parse

import pytest
import redis
from celery import Celery
from kombu import Queue

from flower.app import Flower
from flower.utils.broker import Broker, BrokerError, queue_lengths
from tests.support.api_cluster import Api
from tests.support.waiting import wait_for
from tests.support.flower import FlowerServer
from tests.support.processes import RedisServer, celery_client, free_port
from tests.support.tls import TlsRedisServer, make_certificates


@pytest.fixture(autouse=True)
def open_api(monkeypatch):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')


@pytest.fixture
def fast_sampling(monkeypatch):
    """Flowers started in this test sample queue lengths every 100 ms."""
    monkeypatch.setattr(Flower, 'queue_sample_interval', 100)


def flower_for(broker_url, inspect_timeout=500, **settings):
    capp = Celery('redis-flower', broker=broker_url, backend=broker_url, set_as_current=False)
    capp.conf.update(settings)
    return FlowerServer(broker_url, capp=capp, inspect_timeout=inspect_timeout)


def api_queue_lengths(flower):
    return Api(flower).get('/api/queues/length')


def test_backlog_of_plain_and_priority_queues_is_sampled_into_history_and_gauge(
        broker_url, fast_sampling):
    client = celery_client(broker_url)
    for priority in (None, 0, 4, 9):
        client.send_task('tasks.add', (1, 1), queue='jobs', priority=priority)
    client.send_task('tasks.add', (1, 1), queue='celery')
    client.close()
    assert len(redis.Redis.from_url(broker_url).keys('jobs*')) == 3  # jobs + two sub-queues

    # A healthy Redis: a busy machine may still keep it from answering within 0.5 s,
    # which would leave a gap in the samples.
    with flower_for(broker_url, inspect_timeout=10_000,
                    task_queues=[Queue('celery'), Queue('jobs')]) as flower:
        response = api_queue_lengths(flower)
        assert response.status_code == 200, response.text
        assert response.json() == {'active_queues': [
            {'name': 'celery', 'messages': 1}, {'name': 'jobs', 'messages': 4}]}

        series = wait_for(lambda: (lambda s: len(s['timestamps']) >= 3 and s)(
            flower.call(flower.app.queue_history.series)), what='three samples')
        assert series['queues'] == {'celery': [1] * len(series['timestamps']),
                                    'jobs': [4] * len(series['timestamps'])}
        assert series['timestamps'] == sorted(series['timestamps'])
        _, metrics = flower.get('/metrics')
        assert 'flower_queue_length{queue="celery"} 1.0' in metrics
        assert 'flower_queue_length{queue="jobs"} 4.0' in metrics


def test_stopped_redis_is_503_with_the_reason_and_a_gap_in_the_history(
        redis_server, fast_sampling):
    with flower_for(redis_server.url) as flower:
        wait_for(lambda: flower.call(lambda: flower.app.queue_history.latest), what='a sample')
        redis_server.stop()

        response = api_queue_lengths(flower)

        assert response.status_code == 503
        error = response.json()['error']
        assert f'Cannot query Redis at {redis_server.url}' in error
        assert 'Connection refused' in error
        assert wait_for(lambda: flower.call(lambda: flower.app.queue_history.error)) == error
        _, metrics = flower.get('/metrics')
        assert 'flower_queue_length{' not in metrics  # unknown, not zero
        assert None in flower.call(flower.app.queue_history.series)['queues']['celery']

        redis_server.start()
        wait_for(lambda: flower.call(lambda: flower.app.queue_history.error) is None,
                 what='sampling to recover')
        assert api_queue_lengths(flower).json() == {'active_queues': [{'name': 'celery', 'messages': 0}]}


class SilentServer:
    """A TCP server on loopback that accepts connections and then sends ``reply``
    (``None``: never answers), like a broker that hangs or speaks another protocol."""

    def __init__(self, reply=None):
        self.reply = reply
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.port = self.listener.getsockname()[1]
        self.connections = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            if self.reply is not None:
                connection.recv(65536)
                connection.sendall(self.reply)

    def close(self):
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.mark.parametrize('reply, reason', [
    (None, r'did not answer within 0\.5 s|Timeout reading from'),
    (b'HTTP/1.1 400 Bad Request\r\n\r\n', r'Cannot query Redis at redis://127\.0\.0\.1:\d+/0: '),
], ids=['hangs', 'answers-wrongly'])
def test_a_broker_that_hangs_or_answers_wrongly_is_a_503_within_the_timeout(reply, reason):
    server = SilentServer(reply)
    flower = flower_for(f'redis://127.0.0.1:{server.port}/0').start()
    try:
        # The client waits far longer than inspect_timeout (500 ms): Flower must answer first.
        response = api_queue_lengths(flower)
    finally:
        server.close()  # first, so that Flower's event capture stops waiting for it
        flower.stop()

    assert response.status_code == 503
    assert re.search(reason, response.json()['error']), response.json()


def test_password_and_db_number_of_the_url(redis_server):
    password = 'se cret@/'
    admin = redis.Redis(port=redis_server.port)
    admin.config_set('requirepass', password)
    data = redis.Redis(port=redis_server.port, db=5, password=password)
    data.lpush('celery', 'a', 'b')
    data.lpush('celery\x06\x163', 'c')
    redis.Redis(port=redis_server.port, db=0, password=password).lpush('celery', 'other db')
    quoted = urllib.parse.quote(password, safe='')

    broker = Broker(f'redis://:{quoted}@127.0.0.1:{redis_server.port}/5')
    assert asyncio.run(broker.queues(['celery'])) == [{'name': 'celery', 'messages': 3}]

    wrong = Broker(f'redis://:nope@127.0.0.1:{redis_server.port}/5')
    with pytest.raises(BrokerError) as failure:
        asyncio.run(wrong.queues(['celery']))
    assert 'redis://:****@127.0.0.1' in str(failure.value)
    assert 'nope' not in str(failure.value)
    assert 'invalid' in str(failure.value).lower() or 'WRONGPASS' in str(failure.value)


# -- TLS ---------------------------------------------------------------------------

@pytest.fixture
def tls_redis(tmp_path):
    certificates = make_certificates(str(tmp_path))
    server = TlsRedisServer(certificates, dir=str(tmp_path)).start()
    yield server
    server.stop()


def test_rediss_url_with_the_broker_use_ssl_settings(tls_redis):
    redis.Redis(port=tls_redis.port, db=1).lpush('secure', 'a', 'b')
    url = f'rediss://127.0.0.1:{tls_redis.tls_port}/1'
    verified = {'ssl_cert_reqs': ssl.CERT_REQUIRED, 'ssl_ca_certs': tls_redis.certificates['ca.crt']}

    broker = Broker(url, broker_use_ssl=verified)
    assert asyncio.run(broker.queues(['secure'])) == [{'name': 'secure', 'messages': 2}]

    # Without the CA the server's certificate cannot be verified: a clear error, no hang.
    unverifiable = Broker(url, broker_use_ssl={'ssl_cert_reqs': ssl.CERT_REQUIRED})
    with pytest.raises(BrokerError, match='Cannot query Redis at rediss://.*certificate verify failed'):
        asyncio.run(unverifiable.queues(['secure']))


def test_rediss_url_with_ssl_settings_in_its_query_as_kombu_reads_them(tls_redis):
    redis.Redis(port=tls_redis.port, db=1).lpush('secure', 'a', 'b', 'c')
    query = urllib.parse.urlencode({'ssl_cert_reqs': 'CERT_REQUIRED',
                                    'ssl_ca_certs': tls_redis.certificates['ca.crt']})
    url = f'rediss://127.0.0.1:{tls_redis.tls_port}/1?{query}'
    assert asyncio.run(Broker(url).queues(['secure'])) == [{'name': 'secure', 'messages': 3}]

    # broker_use_ssl wins over the query, as it does for Celery.
    overridden = Broker(url, broker_use_ssl={'ssl_ca_certs': '/nonexistent/ca.crt'})
    with pytest.raises(BrokerError, match='Cannot query Redis at rediss://'):
        asyncio.run(overridden.queues(['secure']))


# -- Sentinel ------------------------------------------------------------------------

class SentinelServer(RedisServer):
    """``redis-server --sentinel`` watching the master ``master_name`` at ``master_port``."""

    def __init__(self, master_name, master_port, **kwargs):
        super().__init__(**kwargs)
        self.master_name = master_name
        self.master_port = master_port

    def argv(self):
        config = os.path.join(self.dir, f'sentinel-{self.port}.conf')
        with open(config, 'w') as file:
            file.write(f'port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n'
                       f'sentinel monitor {self.master_name} 127.0.0.1 {self.master_port} 1\n')
        return [self.executable, config, '--sentinel']


def test_sentinel_url_finds_the_master_and_counts_in_its_db(redis_server, tmp_path):
    sentinel = SentinelServer('flower-master', redis_server.port, dir=str(tmp_path)).start()
    try:
        redis.Redis(port=redis_server.port, db=3).lpush('celery', 'a', 'b', 'c')
        # The first sentinel is down: the second one must be asked within the timeout.
        url = f'sentinel://127.0.0.1:{free_port()};sentinel://127.0.0.1:{sentinel.port}/3'
        capp = Celery('sentinel', broker=url, set_as_current=False)
        capp.conf.broker_transport_options = {'master_name': 'flower-master'}

        assert asyncio.run(queue_lengths(capp, ['celery'], timeout=1.0)) == [
            {'name': 'celery', 'messages': 3}]

        capp.conf.broker_transport_options = {}
        with pytest.raises(BrokerError, match="'master_name' broker transport option is not set"):
            asyncio.run(queue_lengths(capp, ['celery'], timeout=1.0))
    finally:
        sentinel.stop()
