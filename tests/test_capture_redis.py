"""Events read straight off a Redis subscription (``flower.capture_redis``).

Each test runs the capture's receiver on a thread against a private
``redis-server`` and sends events through Celery's own event dispatcher, as a
worker configured the same way would.
"""
import base64
import json
import threading
import time

import celery
import pytest
import redis

from flower.capture import BatchEventReceiver
from flower.capture_redis import RedisEventSubscription, message_parts
from tests.support.waiting import wait_for


class Capture:
    """The receiver on a thread, with what it handed on and what it dropped."""

    def __init__(self, app):
        self.events, self.undecodable = [], []
        self.connection = app.connection_for_read()
        self.receiver = BatchEventReceiver(self.connection, self.events.extend, app=app,
                                           on_undecodable=self.undecodable.append)
        self.connected = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.connected.wait(10), self.error

    def _run(self):
        try:
            self.receiver.capture(self.connected.set)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def stop(self):
        self.receiver.should_stop = True
        self.thread.join(10)
        self.connection.release()
        return not self.thread.is_alive()


def app_for(url, **transport_options):
    app = celery.Celery(broker=url, set_as_current=False)
    app.conf.broker_transport_options = transport_options
    return app


def send_task_events(app, count, hostname='w@h'):
    with app.connection_for_write() as connection:
        dispatcher = app.events.Dispatcher(connection, hostname=hostname,
                                           buffer_group=['task'], buffer_limit=4)
        for number in range(count):
            dispatcher.send('task-received', uuid=f'u{number}', name='tasks.add',
                            args='(1, 2)', kwargs='{}')
        dispatcher.flush()


@pytest.mark.parametrize('options', [
    {}, {'global_keyprefix': 'tenant-a:'}, {'fanout_patterns': False},
    {'fanout_prefix': False},
], ids=['defaults', 'global-keyprefix', 'no-fanout-patterns', 'no-fanout-prefix'])
def test_the_subscription_is_the_one_celerys_dispatcher_publishes_to(redis_server, options):
    app = app_for(redis_server.url_for(3), **options)
    capture = Capture(app)
    try:
        send_task_events(app, 10)
        wait_for(lambda: len(capture.events) == 10, what='the ten events')
    finally:
        assert capture.stop(), "the capture stops when told"
    assert [event['uuid'] for event in capture.events] == [f'u{n}' for n in range(10)]
    assert all(event['local_received'] for event in capture.events)
    assert capture.undecodable == [] and capture.error is None


def test_redis_brokers_are_read_off_the_socket_and_others_through_kombu(redis_server):
    from celery.events import EventReceiver
    for url, direct in ((redis_server.url_for(3), True), ('memory://', False)):
        app = app_for(url)
        with app.connection_for_read() as connection:
            queue = EventReceiver(connection, app=app).queue
            subscription = RedisEventSubscription.for_queue(connection, queue)
            assert (subscription is not None) is direct, url
            if subscription is not None:
                assert subscription.topic == '/3.celeryev/*'
                subscription.close()


def test_kombu_is_not_needed_to_read_a_redis_subscription(redis_server, monkeypatch):
    """The events come off the socket: kombu's consumer loop is never entered."""
    def refuse(*args, **kwargs):
        raise AssertionError("kombu's consumer loop was used")

    monkeypatch.setattr(BatchEventReceiver, 'consume', refuse)
    app = app_for(redis_server.url_for(3))
    capture = Capture(app)
    try:
        send_task_events(app, 3)
        wait_for(lambda: len(capture.events) == 3, what='the three events')
    finally:
        capture.stop()
    assert capture.error is None


def test_compressed_and_hostile_messages(redis_server):
    """A compressed events message is read as kombu reads it; anything else published
    on the topic is dropped and reported, and the capture goes on."""
    app = app_for(redis_server.url_for(3))
    capture = Capture(app)
    try:
        with app.connection_for_write() as connection:
            dispatcher = app.events.Dispatcher(connection, hostname='w@h')
            dispatcher.producer.publish(
                [{'type': 'task-received', 'uuid': 'zipped', 'hostname': 'w@h',
                  'timestamp': time.time(), 'clock': 1}],
                exchange=dispatcher.exchange, declare=[dispatcher.exchange],
                routing_key='task.multi', serializer='json', compression='zlib')
        client = redis.Redis.from_url(redis_server.url_for(3))
        for payload in (b'not json', b'[1, 2]', b'{"body": 5}',
                        b'{"body": "!!", "properties": {"body_encoding": "base64"}}'):
            client.publish('/3.celeryev/task.multi', payload)
        send_task_events(app, 2)
        wait_for(lambda: len(capture.events) == 3, what='the events around the garbage')
    finally:
        capture.stop()
    assert [event['uuid'] for event in capture.events] == ['zipped', 'u0', 'u1']
    assert len(capture.undecodable) == 4


def test_a_lost_connection_is_raised_for_the_capture_to_reconnect(redis_server):
    app = app_for(redis_server.url_for(3))
    capture = Capture(app)
    client = redis.Redis.from_url(redis_server.url_for(3))
    for info in client.client_list():
        if info.get('cmd') == 'psubscribe':
            client.client_kill_filter(_id=info['id'])
    capture.thread.join(10)
    assert not capture.thread.is_alive()
    assert isinstance(capture.error, redis.ConnectionError), capture.error
    capture.connection.release()


EVENTS = json.dumps([{'type': 'task-received', 'uuid': 'u1', 'hostname': 'w@h'}]).encode()
KOMBU_ENVELOPE = {'body': base64.b64encode(EVENTS).decode(), 'content-encoding': 'utf-8',
                  'content-type': 'application/json', 'headers': {'hostname': 'w@h'},
                  'properties': {'delivery_mode': 1, 'body_encoding': 'base64',
                                 'delivery_info': {'exchange': 'celeryev',
                                                   'routing_key': 'task.multi'},
                                 'priority': 0, 'delivery_tag': 'tag'}}


@pytest.mark.parametrize('envelope, expected', [
    (KOMBU_ENVELOPE, (EVENTS, 'application/json', 'utf-8', {'hostname': 'w@h'})),
    # base64 that only a lenient reader takes (a line break, as MIME writes it)
    (dict(KOMBU_ENVELOPE, body=KOMBU_ENVELOPE['body'][:8] + '\n' + KOMBU_ENVELOPE['body'][8:]),
     (EVENTS, 'application/json', 'utf-8', {'hostname': 'w@h'})),
    # a body that is not in base64 and reads as base64: taken as it is
    (dict(KOMBU_ENVELOPE, body='abcd', properties={}), (b'abcd', 'application/json',
                                                         'utf-8', {'hostname': 'w@h'})),
    (dict(KOMBU_ENVELOPE, headers=None, extra=[1]),
     (EVENTS, 'application/json', 'utf-8', {})),
    ({'body': KOMBU_ENVELOPE['body'], 'properties': {'body_encoding': 'base64'}},
     (EVENTS, None, None, {})),
], ids=['kombu', 'lenient-base64', 'plain-body', 'no-headers', 'bare'])
def test_envelopes_read_as_kombu_reads_them(envelope, expected):
    assert message_parts(json.dumps(envelope).encode()) == expected
