"""``/api/events``: the task and worker changes as they are applied, as Server-Sent Events.

Each message is one change: ``event:`` the Celery event type, ``id:`` its
number in the :class:`~flower.stream.ChangeFeed`, ``data:`` the task as
``/api/task/info`` gives it or the worker as the dashboard's JSON row gives it.
A client that reconnects with ``Last-Event-ID`` gets what it missed while the
feed still holds it, or a ``reset`` event; one that reads too slowly gets a
``lagged`` event saying how many changes it skipped, then goes on.
"""
from tornado.iostream import StreamClosedError

from flower.api import RequestError, json_text, non_negative_int
from flower.api.tasks import BaseTaskHandler
from flower.utils.tasks import TaskQuery, get_task_by_id
from flower.workers import worker_row


class EventStream(BaseTaskHandler):
    """Same authentication as the rest of the API; read-only users may subscribe."""

    heartbeat_seconds = 15.0
    closed = False

    async def get(self):
        filters = self.task_filters()
        query = TaskQuery(**filters)
        # Task filters other than the worker say the client wants tasks: no worker news.
        workers_wanted = all(value is None for name, value in filters.items() if name != 'worker')
        worker_filter = filters['worker']
        feed = self.application.events.changes
        resume_from = self._last_event_id()

        self.set_header('Content-Type', 'text/event-stream; charset=UTF-8')
        self.set_header('Cache-Control', 'no-cache')
        self.set_header('X-Accel-Buffering', 'no')  # proxies: pass each message on at once
        seen = feed.last_id
        first_message = ': connected\n\n'
        if resume_from is not None:
            if resume_from > feed.last_id or resume_from + 1 < feed.first_id:
                first_message += self._message('reset', {'last_id': feed.last_id}, feed.last_id)
            else:
                seen = resume_from
        if not await self._send(first_message):
            return
        while not self.closed:
            skipped, records = feed.since(seen)
            parts = []
            if skipped:
                parts.append(self._message('lagged', {'skipped': skipped}))
            for record in records:
                text = self._render(record, query, workers_wanted, worker_filter)
                if text:
                    parts.append(text)
            if records:
                seen = records[-1][0]
            if parts:
                if not await self._send(''.join(parts)):
                    return
            elif not await feed.wait(self.heartbeat_seconds):
                if not await self._send(': heartbeat\n\n'):
                    return

    def on_connection_close(self):
        self.closed = True

    def _last_event_id(self):
        raw = self.request.headers.get('Last-Event-ID') or self.get_argument('last_event_id', '')
        if not raw:
            return None
        try:
            return non_negative_int(raw)
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

    @staticmethod
    def _message(kind, data, number=None):
        head = f'id: {number}\n' if number is not None else ''
        return f'{head}event: {kind}\ndata: {json_text(data)}\n\n'

    def _render(self, record, query, workers_wanted, worker_filter):
        """The message of one change for this client, or ``None`` if it does not match."""
        number, kind, key, _ = record
        if kind.startswith('worker-'):
            if not workers_wanted or (worker_filter is not None and key != worker_filter):
                return None
            state = self.application.events.state
            return self._message(kind, worker_row(state, self.application.workers, key), number)
        task = get_task_by_id(self.application.events, key)
        if task is None or not query.wanted(task):
            return None
        # The first client to send a change keeps its text for the others.
        if record[3] is None:
            record[3] = json_text(self.task_info(task))
        return f'id: {number}\nevent: {kind}\ndata: {record[3]}\n\n'
