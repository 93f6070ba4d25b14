"""Queue statistics from a real RabbitMQ through its management plugin.

Every test gets a private vhost (created with ``rabbitmqctl``, deleted at
teardown) whose name has a space and a slash, so the vhost must be URL
encoded on its way to the management API. The management API refreshes its
queue statistics every few seconds, hence the polling.
"""
import asyncio
import html
import re
import ssl
import threading
import uuid

import pytest
import requests
import tornado.web
from celery import Celery
from kombu import Queue
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from tests.support.api_cluster import Api
from tests.support.waiting import wait_for
from tests.support.flower import FlowerServer
from tests.support.processes import free_port
from tests.support.rabbitmq import AMQP, MANAGEMENT_API, amqp_url
from tests.support.tls import make_certificates



@pytest.fixture(scope='module', autouse=True)
def management_plugin():
    """The management API must answer (``scripts/test.sh`` enables the plugin, which
    takes a few seconds to start listening)."""
    def answers():
        try:
            return requests.get(MANAGEMENT_API.replace('guest:guest@', '') + 'overview',
                                auth=('guest', 'guest'), timeout=5).status_code == 200
        except requests.ConnectionError:
            return False
    wait_for(answers, timeout=30, interval=0.5,
             what="RabbitMQ's management API (rabbitmq-plugins enable rabbitmq_management)")


@pytest.fixture(autouse=True)
def open_api(monkeypatch):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')


def celery_app(broker_url, **settings):
    app = Celery('rabbit-client', broker=broker_url, backend='rpc://', set_as_current=False)
    app.conf.update(settings)
    return app


@pytest.fixture
def flowers():
    """``flowers(broker_url, capp=None, **options)`` starts Flowers watching a RabbitMQ vhost."""
    started = []

    def start(broker_url, capp=None, **options):
        options.setdefault('broker_api', MANAGEMENT_API)
        options.setdefault('inspect_timeout', 3000)
        server = FlowerServer(broker_url, capp=capp or celery_app(broker_url), **options)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


#: The counts each queue of ``/api/queues/length`` has whatever the broker.
COUNTS = ('name', 'messages', 'messages_ready', 'messages_unacknowledged', 'consumers')


def queue_lengths(flower):
    """The counts of ``/api/queues/length`` (each queue carries the management API's
    other fields too: see test_the_management_apis_queue_fields_are_passed_on)."""
    response = Api(flower).get('/api/queues/length')
    assert response.status_code == 200, response.text
    return [{field: queue[field] for field in COUNTS}
            for queue in response.json()['active_queues']]


def wait_for_lengths(flower, expected, timeout=30):
    """Poll ``/api/queues/length`` until it answers ``expected`` (stats lag a few seconds)."""
    last = []

    def matches():
        last[:] = [queue_lengths(flower)]
        return last[0] == expected
    try:
        wait_for(matches, timeout=timeout, interval=0.5, what=f"queue lengths {expected}")
    except AssertionError:
        raise AssertionError(f"queue lengths stayed {last[0]}, expected {expected}") from None


def broker_page_rows(flower):
    """``{queue: {cell class: text}}`` of the queue table on the ``/broker`` page."""
    status, page = flower.get('/broker')
    assert status == 200, page
    rows = re.findall(r'<tr data-queue="([^"]*)">(.*?)</tr>', page, re.S)
    return {html.unescape(name): {cell_class.split()[-1]: html.unescape(text) for cell_class, text
                                  in re.findall(r'<td class="([^"]*)">([^<]*)</td>', cells)}
            for name, cells in rows}


def send(app, count, queue, task='tasks.sleep', args=(0,)):
    for _ in range(count):
        app.send_task(task, args, queue=queue)


def test_published_messages_without_consumer_are_counted(vhost, flowers):
    url = amqp_url(vhost)
    client = celery_app(url)
    flower = flowers(url, capp=celery_app(url, task_queues=[Queue('celery'), Queue('reports')]))
    send(client, 3, 'celery')
    send(client, 2, 'reports')

    wait_for_lengths(flower, [
        {'name': 'celery', 'messages': 3, 'messages_ready': 3,
         'messages_unacknowledged': 0, 'consumers': 0},
        {'name': 'reports', 'messages': 2, 'messages_ready': 2,
         'messages_unacknowledged': 0, 'consumers': 0},
    ])
    assert broker_page_rows(flower) == {
        'celery': {'queue-name': 'celery', 'messages': '3', 'messages_ready': '3',
                   'messages_unacknowledged': '0', 'consumers': '0'},
        'reports': {'queue-name': 'reports', 'messages': '2', 'messages_ready': '2',
                    'messages_unacknowledged': '0', 'consumers': '0'},
    }
    flower.run_coroutine(flower.app.sample_queues)
    timestamp, sampled = flower.call(lambda: flower.app.queue_history.latest)
    assert [(queue['name'], queue['messages']) for queue in sampled] == [('celery', 3), ('reports', 2)]
    _, metrics = flower.get('/metrics')
    assert 'flower_queue_length{queue="celery"} 3.0' in metrics
    assert 'flower_queue_length{queue="reports"} 2.0' in metrics
    client.close()


def test_the_management_apis_queue_fields_are_passed_on(vhost, flowers):
    url = amqp_url(vhost)
    client = celery_app(url)
    flower = flowers(url, capp=celery_app(url, task_queues=[Queue('celery')]))
    send(client, 1, 'celery')
    wait_for_lengths(flower, [{'name': 'celery', 'messages': 1, 'messages_ready': 1,
                               'messages_unacknowledged': 0, 'consumers': 0}])

    def queue_with_its_state():
        # The management API adds a new queue's state once its statistics came in,
        # which may be after its counts on a busy machine.
        [queue] = Api(flower).get('/api/queues/length').json()['active_queues']
        return queue if 'state' in queue else None

    queue = wait_for(queue_with_its_state, timeout=30, interval=0.5, what="the queue's state")
    assert queue['vhost'] == vhost
    assert (queue['durable'], queue['auto_delete'], queue['exclusive']) == (True, False, False)
    assert queue['state'] == 'running' and queue['node'].startswith('rabbit@')
    assert isinstance(queue['arguments'], dict)
    client.close()


def test_a_consumer_splits_ready_and_unacknowledged(vhost, flowers, worker_factory):
    url = amqp_url(vhost)
    client = celery_app(url)
    flower = flowers(url)
    # One process, one message prefetched: the first task runs (acknowledged
    # when it starts), the second waits unacknowledged, three stay ready.
    worker_factory(url, concurrency=1, result_backend='rpc://',
                   extra_args=['--prefetch-multiplier', '1'])
    send(client, 5, 'celery', args=(60,))

    wait_for_lengths(flower, [{'name': 'celery', 'messages': 4, 'messages_ready': 3,
                               'messages_unacknowledged': 1, 'consumers': 1}])
    assert broker_page_rows(flower)['celery'] == {
        'queue-name': 'celery', 'messages': '4', 'messages_ready': '3',
        'messages_unacknowledged': '1', 'consumers': '1'}
    client.close()


def ready_messages(app, queue):
    """The queue's ready messages, as RabbitMQ itself says over AMQP."""
    with app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue, passive=True).message_count


def test_purge_empties_a_queue_over_amqp_and_is_audited(vhost, flowers, audit_lines):
    url = amqp_url(vhost)
    client = celery_app(url)
    flower = flowers(url, capp=celery_app(
        url, task_queues=[Queue('celery'), Queue('reports'), Queue('never-declared')]))
    send(client, 4, 'reports')
    send(client, 2, 'celery')
    wait_for(lambda: ready_messages(client, 'reports') == 4, what='4 messages in reports')
    api = Api(flower)

    response = api.post('/api/queues/purge/reports')

    assert response.status_code == 200, response.text
    assert response.json() == {'queue': 'reports', 'purged': 4}
    assert ready_messages(client, 'reports') == 0
    assert ready_messages(client, 'celery') == 2
    [record] = api.get('/api/audit').json()['records']
    assert (record['action'], record['targets'], record['status'], record['outcome']) == (
        'queue.purge', ['reports'], 200, {'queue': 'reports', 'purged': 4})
    assert audit_lines == [record]

    # Configured but never declared on the broker: RabbitMQ answers NOT_FOUND.
    missing = api.post('/api/queues/purge/never-declared')
    assert missing.status_code == 404
    assert "Unknown queue 'never-declared'" in missing.json()['error']
    assert api.get('/api/audit?limit=1').json()['records'][0]['status'] == 404
    assert api.post('/api/queues/purge/celery').json() == {'queue': 'celery', 'purged': 2}
    client.close()


def test_the_default_vhost_is_asked_as_percent_2f(flowers):
    queue = f'flower-test-{uuid.uuid4().hex[:8]}'
    url = AMQP + '/'
    client = celery_app(url)
    flower = flowers(url, capp=celery_app(url, task_queues=[Queue(queue)]))
    try:
        send(client, 2, queue)

        wait_for_lengths(flower, [{'name': queue, 'messages': 2, 'messages_ready': 2,
                                   'messages_unacknowledged': 0, 'consumers': 0}])
    finally:
        with client.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
        client.close()


@pytest.mark.parametrize('broker_api, reason', [
    (None, re.escape('need the broker_api option')),
    (MANAGEMENT_API.replace('guest:guest', 'guest:wrong'), r'answered: HTTP 401'),
    ('http://guest:guest@127.0.0.1:{closed}/api/', r'Cannot query RabbitMQ management API'),
], ids=['no-broker-api', 'wrong-password', 'nothing-listening'])
def test_management_api_problems_are_503_with_the_reason(vhost, flowers, broker_api, reason):
    url = amqp_url(vhost)
    if broker_api:
        broker_api = broker_api.format(closed=free_port())
    flower = flowers(url, broker_api=broker_api, inspect_timeout=2000)

    response = Api(flower).get('/api/queues/length')

    assert response.status_code == 503
    error = response.json()['error']
    assert re.search(reason, error), error
    assert 'guest:guest@' not in error
    status, page = flower.get('/broker')
    assert status == 200
    assert html.escape(error, quote=False) in page


class TlsManagementApi:
    """An https front of the real management API (certificate signed by a test CA)."""

    def __init__(self, certificates):
        self.port = free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificates['server.crt'], certificates['server.key'])
        self._context = context
        self._loop = None
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        assert ready.wait(10)

    @property
    def url(self):
        return f'https://guest:guest@127.0.0.1:{self.port}/api/'

    def _run(self, ready):
        asyncio.set_event_loop(asyncio.new_event_loop())

        class Forward(tornado.web.RequestHandler):
            async def get(self):
                upstream = await AsyncHTTPClient().fetch(
                    'http://127.0.0.1:15672' + self.request.uri, raise_error=False,
                    headers={'Authorization': self.request.headers.get('Authorization', '')})
                self.set_status(upstream.code)
                self.set_header('Content-Type', upstream.headers.get('Content-Type', 'text/plain'))
                self.write(upstream.body)

        self._loop = IOLoop.current()
        server = HTTPServer(tornado.web.Application([(r'/api/.*', Forward)]),
                            ssl_options=self._context)
        server.listen(self.port, address='127.0.0.1')
        ready.set()
        self._loop.start()

    def stop(self):
        self._loop.add_callback(self._loop.stop)


@pytest.fixture(scope='module')
def tls_management_api(tmp_path_factory):
    certificates = make_certificates(str(tmp_path_factory.mktemp('certificates')))
    api = TlsManagementApi(certificates)
    api.ca_certs = certificates['ca.crt']
    yield api
    api.stop()


def test_https_management_api_is_verified_with_ca_certs(vhost, flowers, tls_management_api):
    url = amqp_url(vhost)
    client = celery_app(url)
    send(client, 2, 'celery')
    client.close()
    verified = flowers(url, broker_api=tls_management_api.url, ca_certs=tls_management_api.ca_certs)
    unverified = flowers(url, broker_api=tls_management_api.url)

    wait_for_lengths(verified, [{'name': 'celery', 'messages': 2, 'messages_ready': 2,
                                 'messages_unacknowledged': 0, 'consumers': 0}])
    response = Api(unverified).get('/api/queues/length')
    assert response.status_code == 503
    assert 'CERTIFICATE_VERIFY_FAILED' in response.json()['error']


def test_a_refresh_stops_waiting_once_every_worker_replied_over_amqp(vhost, flowers,
                                                                    worker_factory):
    """The inspector stops Celery's wait from its reply callback: py-amqp too lets it go,
    and the next refreshes work as well."""
    import time

    url = amqp_url(vhost)
    workers = [worker_factory(url, pool='threads', concurrency=1, result_backend='rpc://')
               for _ in range(2)]
    names = {worker.hostname for worker in workers}
    flower = flowers(url, inspect_timeout=20000, enable_events=False)
    flower.run_coroutine(flower.app.inspector.inspections_under_way, timeout=60)
    wait_for(lambda: flower.call(flower.app.expected_repliers) == names, timeout=30,
             interval=0.2, what="both workers online by their heartbeats")

    for _ in range(2):
        before, started = time.time(), time.monotonic()
        flower.run_coroutine(flower.app.update_workers, timeout=60)
        answered_in = time.monotonic() - started
        assert answered_in < 10, f"waited {answered_in:.1f} s of the 20 s timeout"
        replies = flower.call(lambda: {name: dict(info) for name, info in
                                       flower.app.workers.items()})
        assert all(replies[name]['timestamp'] >= before for name in names)
