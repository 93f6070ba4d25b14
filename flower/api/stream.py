"""``/api/events``: the task and worker changes as they are applied, as Server-Sent Events.

Each message is one change: ``event:`` the Celery event type, ``id:`` its
number in the :class:`~flower.stream.ChangeFeed`, ``data:`` the task as
``/api/tasks`` lists it but with its id as ``task-id``, or the worker as the
dashboard's JSON row gives it.
Besides the task filters of ``/api/tasks``, ``task_id`` keeps the changes of
one task and of its children (the task page follows them), and ``types``
keeps some event types only (the dashboard follows ``worker-*`` ones).
A client that reconnects with ``Last-Event-ID`` gets what it missed while the
feed still holds it, or a ``reset`` event; one that reads too slowly gets a
``lagged`` event saying how many changes it skipped, then goes on.
"""
import asyncio
import dataclasses

from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError

from flower.api import RequestError, json_text
from flower.api.tasks import BaseTaskHandler
from flower.workers import worker_row

#: The largest change id: ids start at random below 2**52 (see ChangeFeed).
MAX_CHANGE_ID = 2 ** 53 - 1


def change_id(value: str) -> int:
    """A change id of the feed (``Last-Event-ID``): a whole number from 0 to 2**53 - 1."""
    try:
        number = int(value)
    except ValueError:
        raise ValueError("not an integer") from None
    if not 0 <= number <= MAX_CHANGE_ID:
        raise ValueError(f"must be from 0 to {MAX_CHANGE_ID}")
    return number


#: The prefixes of the event types a ``types`` filter may name.
EVENT_KINDS = ('task-', 'worker-')


def event_types(value: str) -> frozenset[str]:
    """``'task-failed,worker-offline'`` → the set of event types; others are a ``ValueError``."""
    kinds = frozenset(kind.strip() for kind in value.split(',') if kind.strip())
    unknown = sorted(kind for kind in kinds if not kind.startswith(EVENT_KINDS))
    if unknown or not kinds:
        raise ValueError(f"not task-* or worker-* event types: {', '.join(unknown) or value!r}")
    return kinds


class EventStream(BaseTaskHandler):
    """Same authentication as the rest of the API; read-only users may subscribe.

    Each change is rendered once, by the first client that sends it, and kept
    in the feed for the others; a client that has just sent something waits
    :attr:`coalesce_seconds` before sending again, so a hundred clients cost
    a few wake-ups per second each, not one per change.
    """

    heartbeat_seconds = 15.0
    coalesce_seconds = 0.1
    closed = False

    async def get(self) -> None:
        self.wanted_tasks = self.task_filter()
        self.task_id = self.get_optional_argument('task_id')
        self.kinds = self.get_optional_argument('types', type=event_types)
        self.unfiltered = (self.wanted_tasks.is_empty and self.task_id is None
                           and self.kinds is None)
        # Task filters other than the worker say the client wants tasks: no worker news.
        self.workers_wanted = (dataclasses.replace(self.wanted_tasks, worker=None).is_empty
                               and self.task_id is None)
        feed = self.application.events.changes
        resume_from = self._last_event_id()

        self.set_header('Content-Type', 'text/event-stream; charset=UTF-8')
        self.set_header('Cache-Control', 'no-cache')
        self.set_header('X-Accel-Buffering', 'no')  # proxies: pass each message on at once
        seen = feed.last_id
        first_message = b': connected\n\n'
        if resume_from is not None:
            if resume_from > feed.last_id or resume_from + 1 < feed.first_id:
                first_message += _message('reset', {'last_id': feed.last_id})
            else:
                seen = resume_from
        if not await self._send(first_message):
            return
        clock = IOLoop.current()
        while not self.closed:
            shared_key, shared = feed.shared_chunk
            if self.unfiltered and shared_key == (seen, feed.last_id):
                chunk, seen = shared, feed.last_id
            else:
                skipped, records = feed.since(seen)
                chunk = self._chunk(feed, seen, skipped, records)
                if records:
                    seen = records[-1][0]
            if chunk:
                if not await self._send(chunk):
                    return
                # Wake on the same ticks as the other clients: caught up, they share a chunk.
                period = self.coalesce_seconds
                await asyncio.sleep(period - clock.time() % period)
            elif not await feed.wait(self.heartbeat_seconds):
                if not await self._send(b': heartbeat\n\n'):
                    return

    def _chunk(self, feed, seen, skipped, records):
        """What to send for ``records``; clients without filters share one per tick."""
        if self.unfiltered and not skipped and records:
            key = (seen, records[-1][0])
            chunk = b''.join(filter(None, map(self._message_of, records)))
            feed.shared_chunk = (key, chunk)
            return chunk
        parts = [_message('lagged', {'skipped': skipped})] if skipped else []
        parts.extend(filter(None, map(self._message_of, records)))
        return b''.join(parts)

    def on_connection_close(self) -> None:
        self.closed = True

    def _last_event_id(self):
        raw = self.request.headers.get('Last-Event-ID') or self.get_argument('last_event_id', '')
        if not raw:
            return None
        try:
            return change_id(raw)
        except ValueError as exc:
            raise RequestError(400, f"Invalid Last-Event-ID {raw!r}: {exc}") from None

    async def _send(self, text):
        """Write and flush; ``False`` once the client is gone."""
        try:
            self.write(text)
            await self.flush()
        except StreamClosedError:
            self.closed = True
        return not self.closed

    def _message_of(self, record):
        """The message of one change for this client, or ``None`` if it does not match."""
        number, kind, key, text = record
        if self.kinds is not None and kind not in self.kinds:
            return None
        if kind.startswith('worker-'):
            if not self.workers_wanted or (self.wanted_tasks.worker not in (None, key)):
                return None
            if text is None:
                row = worker_row(self.application.events.state, self.application.workers, key)
                text = record[3] = _message(kind, row, number)
            return text
        if self.unfiltered and text is not None:
            return text
        task = self.tasks.get(key)
        if task is None or not (self.unfiltered or self._wanted(key, task)):
            return None
        if text is None:
            text = record[3] = _message(kind, _streamed_task(self.task_as_dict(task)), number)
        return text

    def _wanted(self, key, task):
        """The task matches this client's ``task_id`` (itself or its parent) and filters."""
        if self.task_id is not None and self.task_id not in (key, getattr(task, 'parent_id', None)):
            return False
        return self.wanted_tasks.is_empty or self.wanted_tasks.matches(task)


def _streamed_task(fields):
    """A task's fields as the stream has always sent them: the uuid as ``task-id``."""
    fields['task-id'] = fields.pop('uuid')
    return dict(sorted(fields.items()))


def _message(kind, data, number=None):
    """One Server-Sent Events message, as the bytes sent."""
    head = f'id: {number}\n' if number is not None else ''
    return f'{head}event: {kind}\ndata: {json_text(data)}\n\n'.encode()
