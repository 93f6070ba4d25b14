"""Events read straight off a Redis broker's pub/sub subscription.

With a Redis broker, kombu delivers each events message through its
multi-channel poller, a message object and three callbacks, and asks the
socket whether more is waiting after every message (a handful of system
calls each time). At a few thousand events a second that is most of the
capture thread's work. :class:`RedisEventSubscription` subscribes to the same
topic kombu would (its ``fanout_prefix``, ``fanout_patterns`` and
``global_keyprefix`` transport options included), over a connection made
from kombu's own connection settings, and reads each message with one
blocking read of the socket. Brokers it does not know how to read this way
(Sentinel, a customised channel, RESP3) are left to kombu.
"""
import binascii
import logging
from collections.abc import Callable
from typing import Any

import kombu
import msgspec
import redis
from kombu.transport import redis as kombu_redis

#: Seconds a read waits before the capture looks whether it must stop.
POLL_SECONDS = 1.0

#: A JSON reader that keeps no state between messages (envelopes and event bodies).
read_json = msgspec.json.Decoder().decode


class _Properties(msgspec.Struct, frozen=True):
    body_encoding: str | None = None


class _Base64Envelope(msgspec.Struct, rename={'content_type': 'content-type',
                                               'content_encoding': 'content-encoding'}):
    """The envelope kombu's Redis transport writes, its body in base64 (as it always
    is): msgspec decodes the base64 itself, three times as fast as ``binascii``,
    whose decoding was a tenth of the capture's work per event."""
    body: bytes
    content_type: str | None = None
    content_encoding: str | None = None
    headers: dict[str, Any] | None = None
    properties: _Properties = _Properties()


_read_base64_envelope = msgspec.json.Decoder(_Base64Envelope).decode


class RedisEventSubscription:
    """The pub/sub subscription of one events queue on a Redis broker."""

    def __init__(self, pool: redis.ConnectionPool, topic: str) -> None:
        self.topic = topic
        self._pool = pool
        self._connection = None

    @classmethod
    def for_queue(cls, connection: kombu.Connection,
                  queue: kombu.Queue) -> 'RedisEventSubscription | None':
        """The subscription kombu would make for ``queue`` (bound to a fanout exchange)
        on ``connection``, or ``None`` when kombu must read it itself."""
        channel = connection.default_channel
        if type(channel) is not kombu_redis.Channel:  # Sentinel, or someone's own
            return None
        pool = channel.pool  # formats the fanout prefix with the database number
        kwargs = dict(pool.connection_kwargs)
        if str(kwargs.get('protocol') or 2) != '2':
            return None
        kwargs.update(socket_timeout=POLL_SECONDS, health_check_interval=0)
        topic = channel.keyprefix_fanout + queue.exchange.name
        routing_key = queue.routing_key
        if routing_key and channel.fanout_patterns:
            topic += '/' + routing_key.replace('#', '*')
        return cls(redis.ConnectionPool(connection_class=pool.connection_class, **kwargs),
                   channel.global_keyprefix + topic)

    def open(self) -> None:
        """Connect and subscribe; a broker that cannot be reached raises."""
        connection = self._pool.get_connection()
        try:
            parser = getattr(connection, '_parser', None)
            if hasattr(parser, 'set_pubsub_push_handler'):
                # redis-py's own handler writes every whole message into a debug line.
                parser.set_pubsub_push_handler(pushed_message)
            connection.send_command('PSUBSCRIBE', self.topic)
            reply = self._next_reply(connection)
            while not (isinstance(reply, list) and reply[0] == b'psubscribe'):
                reply = self._next_reply(connection)
        except BaseException:
            connection.disconnect()
            raise
        self._connection = connection

    @staticmethod
    def _next_reply(connection: redis.Connection) -> Any:
        """The next reply or pub/sub message (redis-py hands those to a push handler
        unless asked for them); a read with nothing for POLL_SECONDS raises
        ``redis.TimeoutError`` and leaves the connection as it was."""
        return connection.read_response(disconnect_on_error=False, push_request=True)

    def read(self, on_message: Callable[[bytes], None],
             should_stop: Callable[[], bool]) -> None:
        """Hand each message's payload to ``on_message`` until ``should_stop()``; a lost
        connection raises."""
        connection, next_reply = self._connection, self._next_reply
        while not should_stop():
            try:
                reply = next_reply(connection)
            except redis.TimeoutError:  # nothing for POLL_SECONDS
                continue
            if isinstance(reply, list) and reply[0] == b'pmessage' and reply[3]:
                on_message(reply[3])

    def close(self) -> None:
        if self._connection is not None:
            self._connection.disconnect()
            self._connection = None
        self._pool.disconnect()


_push_log = logging.getLogger('push_response')


def pushed_message(response: Any) -> Any:
    """A pub/sub message as it is, written into redis-py's debug line only when someone
    turned that logger's debug level on."""
    if _push_log.isEnabledFor(logging.DEBUG):
        _push_log.debug("Push response: %s", response)
    return response


def message_parts(payload: bytes) -> tuple[bytes, str | None, str | None, dict[str, Any]]:
    """``(body, content type, content encoding, headers)`` of a message kombu's Redis
    transport published: the envelope kombu decodes before it makes a message."""
    try:
        known = _read_base64_envelope(payload)
    except msgspec.DecodeError:  # another shape (ValidationError is one), or not JSON
        known = None
    if known is not None and known.properties.body_encoding == 'base64':
        return known.body, known.content_type, known.content_encoding, known.headers or {}
    envelope = read_json(payload)
    if not isinstance(envelope, dict):
        raise ValueError("the message is not a kombu envelope")
    body = envelope.get('body')
    properties = envelope.get('properties') or {}
    if properties.get('body_encoding') == 'base64':
        body = binascii.a2b_base64(body)
    elif isinstance(body, str):
        body = body.encode('utf-8')
    if not isinstance(body, bytes):
        raise ValueError("the message has no body")
    return (body, envelope.get('content-type'), envelope.get('content-encoding'),
            envelope.get('headers') or {})
