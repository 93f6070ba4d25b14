"""Reading events off the broker: the batch receiver the capture thread runs, and the
back-off between reconnection attempts."""
import time
from collections.abc import Callable
from itertools import repeat
from typing import Any

import kombu
import msgspec
from celery.events import EventReceiver
from celery.events.receiver import CLIENT_CLOCK_SKEW
from celery.utils.time import utcoffset
from kombu.compression import decompress
from kombu.serialization import loads, prepare_accept_content
from kombu.transport.base import StdChannel

from flower.capture_redis import RedisEventSubscription, message_parts, pushed_message, read_json
from flower.utils import describe_error



class BatchEventReceiver(EventReceiver):
    """Celery's event receiver, handing each broker message's events on as one batch.

    Workers send task events in lists; Celery's receiver dispatches them one
    by one and asks the operating system for the time and the UTC offset for
    each. This one reads those once per message, which roughly halves the
    capture thread's work per event, and calls ``on_events(list)``.
    """

    def __init__(self, connection: kombu.Connection,
                 on_events: Callable[[list[dict[str, Any]]], None],
                 on_undecodable: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        super().__init__(connection, handlers={}, **kwargs)
        self.on_events = on_events
        #: Called with the reason when a message holds no events (see :meth:`_on_message`).
        self.on_undecodable = on_undecodable or (lambda reason: None)
        self._accepted = prepare_accept_content(self.accept)
        self._quiet = False

    def capture(self, on_connected: Callable[[], None]) -> None:
        """Read events until :attr:`should_stop`, calling ``on_connected()`` once
        subscribed: straight off the subscription with a Redis broker
        (:mod:`flower.capture_redis`), else through kombu. A lost broker raises."""
        subscription = RedisEventSubscription.for_queue(self.connection, self.queue)
        if subscription is None:
            on_connected()
            for _ in self.consume(limit=None, timeout=None, wakeup=True):
                pass
            return
        try:
            subscription.open()
            on_connected()
            self.wakeup_workers(channel=self.connection.default_channel)
            subscription.read(self.on_payload, lambda: self.should_stop)
        finally:
            subscription.close()

    def get_consumers(self, Consumer: type[kombu.Consumer],
                      channel: StdChannel) -> list[kombu.Consumer]:
        return [Consumer(queues=[self.queue], on_message=self._on_message, no_ack=True,
                         accept=self.accept)]

    def _on_message(self, message: kombu.Message) -> None:
        """Hand on the events of one message kombu delivered (its body decompressed)."""
        if not self._quiet:  # the subscription is connected by the first message
            self._quiet = quiet_pubsub_messages(message.channel)
        self._hand_on(message.body, message.content_type, message.content_encoding)

    def on_payload(self, payload: bytes) -> None:
        """Hand on the events of one message read off a Redis subscription
        (:mod:`flower.capture_redis`): kombu's envelope around the events."""
        try:
            body, content_type, content_encoding, headers = message_parts(payload)
            if headers.get('compression'):
                body = decompress(body, headers['compression'])
        except Exception as exc:  # whatever the message holds, the subscription stays
            self.on_undecodable(describe_error(exc)[:200])
            return
        self._hand_on(body, content_type, content_encoding)

    def _hand_on(self, body: bytes | str, content_type: str | None,
                 content_encoding: str | None) -> None:
        """Anyone who can publish on the broker can put anything on the events exchange:
        a message that is not events (undecodable, nested too deep, not JSON objects)
        is dropped and reported, and capture goes on."""
        try:
            payload = self._decode(body, content_type, content_encoding)
            events = payload if isinstance(payload, list) else [payload]
            if not all(map(isinstance, events, repeat(dict))):  # no Python loop
                raise ValueError("an event is not a JSON object")
        except Exception as exc:  # whatever the message holds, the subscription stays
            self.on_undecodable(describe_error(exc)[:200])
            return
        self._receive(events)

    def _decode(self, body: bytes | str, content_type: str | None,
                content_encoding: str | None) -> Any:
        """Decode plain JSON bodies with msgspec: kombu's decoder calls back into Python
        for every object, to revive types events never carry, and msgspec reads an
        event three times as fast as the standard library, with the same values (whole
        numbers of any size stay exact). What it refuses (NaN, lone surrogates, text
        that is not UTF-8), and other serializers, are left to kombu."""
        if content_type == 'application/json':
            if (b'__type__' if isinstance(body, bytes) else '__type__') not in body:
                try:
                    return read_json(body)
                except msgspec.DecodeError:  # not strict JSON: kombu's turn
                    pass
        return loads(body, content_type, content_encoding, accept=self._accepted)

    def _receive(self, events: list[dict[str, Any]]) -> None:
        now = time.time()
        here = utcoffset()
        highest_clock = 0
        for event in events:
            if event.get('type') == 'task-sent':
                # Clients never synchronise their clocks: place the event just before ours.
                event['clock'] = (self.clock.value or 1) + CLIENT_CLOCK_SKEW
            clock = event.get('clock')
            if clock is None:
                event['clock'] = self.forward_clock()
            elif clock > highest_clock:
                highest_clock = clock
            offset = event.get('utcoffset')
            timestamp = event.get('timestamp')
            if offset is not None and timestamp is not None and offset != here:
                event['timestamp'] = timestamp - (offset - here) * 3600
            event['local_received'] = now
        if highest_clock:
            self.adjust_clock(highest_clock)
        self.on_events(events)


def quiet_pubsub_messages(channel: StdChannel) -> bool:
    """Have the Redis client hand on the events' pub/sub messages as they are; ``False``
    while its subscription is not connected yet.

    With RESP3, redis-py's default handler of pushed messages writes each whole
    message into a debug line that its ``push_response`` logger then drops:
    about a tenth of the capture thread's CPU. This handler writes that line
    only when someone asked for it. Other transports, and a handler someone
    chose, are left as they are.
    """
    pubsub = getattr(channel, 'subclient', None)  # kombu's Redis channel
    parser = getattr(getattr(pubsub, 'connection', None), '_parser', None)
    if pubsub is not None and parser is None:
        return False
    handler = getattr(parser, 'pubsub_push_handler_func', None)
    if getattr(handler, '__name__', None) == 'handle_pubsub_push_response':
        parser.set_pubsub_push_handler(pushed_message)
    return True


class Backoff:
    """Reconnection delays that double from ``initial`` up to ``maximum`` seconds."""

    def __init__(self, initial: float = 1.0, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.current = initial

    def next_delay(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.current = self.initial
