"""Several Flower replicas on one PostgreSQL history: the leader captures, the others follow.

The leader (see :mod:`flower.leadership`) captures events and writes the
history as a single Flower does. A follower captures nothing: once per poll
interval it reads what the leader wrote since its last read (every task row
carries a ``version`` that grows with each write), and the workers and
counters the leader keeps there, and applies them to its own state, so its
pages, API and event stream show what the leader's show, up to an interval later.

When a follower becomes the leader it first reads what is left, then numbers
new tasks after the stored ones and starts capturing and writing.
"""
import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from tornado.ioloop import IOLoop, PeriodicCallback

from flower.history import History
from flower.leadership import LEADER, Leadership
from flower.store import WORKER_FIELDS, row_fields
from flower.stream import ChangeFeed
from flower.utils import describe_error

if TYPE_CHECKING:
    from flower.events import Events

logger = logging.getLogger(__name__)

#: The event type a follower streams for a task the leader wrote in a given state.
STATE_EVENT_TYPES = {
    'PENDING': 'task-sent', 'RECEIVED': 'task-received', 'STARTED': 'task-started',
    'SUCCESS': 'task-succeeded', 'FAILURE': 'task-failed', 'RETRY': 'task-retried',
    'REVOKED': 'task-revoked', 'REJECTED': 'task-rejected',
}


class Read(NamedTuple):
    """One poll's worth of what the leader wrote."""
    tasks: list[tuple[int, tuple]]  # (version, row in TASK_COLUMNS order), oldest first
    workers: dict[str, dict[str, Any]] | None  # None: not read with this page
    counters: list[tuple[str, str, int]] | None


class Follower:
    """Applies to ``state`` what the leader writes to ``store``, every ``interval`` s."""

    page_size = 5000  # task rows read at a time; a poll reads pages until it has all

    def __init__(self, history: History, changes: ChangeFeed, io_loop: IOLoop,
                 interval: float = 1.0) -> None:
        self.history = history
        self.state = history.state
        self.changes = changes
        self.io_loop = io_loop
        self.version = 0  # the newest task row version applied
        self.last_read = None  # time of the last complete poll
        self.error = None
        self._worker_fields = {}
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix='flower-follow')
        self._timer = PeriodicCallback(self.poll, interval * 1000)
        self._polling = None

    def start(self, version: int) -> None:
        """Follow the rows written after ``version``."""
        self.version = version
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def close(self) -> None:
        self.stop()
        self._reader.shutdown(wait=False)

    async def catch_up(self) -> None:
        """Read until nothing is left (before this replica leads)."""
        if self._polling is not None:
            await self._polling
        await self.poll()

    async def poll(self) -> None:
        """Read and apply every row written since the last poll, a page at a time."""
        if self._polling is not None:
            return
        self._polling = asyncio.ensure_future(self._read_all())
        try:
            await self._polling
        finally:
            self._polling = None

    async def _read_all(self) -> None:
        with_workers = True
        try:
            while True:
                read = await asyncio.wrap_future(
                    self._reader.submit(self._read, self.version, with_workers))
                self._apply(read)
                with_workers = False
                if len(read.tasks) < self.page_size:
                    break
        except Exception as exc:  # the database is away: the next poll tries again
            if self.error is None:
                logger.warning("Cannot read what the leader wrote (%s); this follower shows "
                               "what it has and retries every poll", describe_error(exc))
            self.error = describe_error(exc)
            return
        if self.error is not None:
            logger.warning("Reading what the leader wrote works again")
        self.error = None
        self.last_read = time.time()

    def _read(self, version: int, with_workers: bool) -> Read:
        """The next page of rows (on the reader thread)."""
        store = self.history.store
        tasks = store.changes_since(version, self.page_size)
        if not with_workers:
            return Read(tasks, None, None)
        return Read(tasks, store.load_workers(), store.load_counters())

    def _apply(self, read: Read) -> None:
        changes = []
        if read.workers is not None:
            changes.extend(self._apply_workers(read.workers))
            for hostname, event_type, count in read.counters:
                self.state.counter[hostname][event_type] = count
        follow_task = self.state.follow_task
        for version, row in read.tasks:
            fields = row_fields(row)
            fields['uuid'] = row[0]
            task = follow_task(fields, row[1])
            changes.append((STATE_EVENT_TYPES.get(task.state, 'task-sent'), task.uuid))
            self.version = max(self.version, version)
        self.history.apply_retention_in_memory()
        self.changes.publish(changes)

    def _apply_workers(self, stored: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
        """Bring workers up to date; a change ``(event type, host name)`` for each that
        the leader heard from since the last poll."""
        changes = []
        workers = self.state.workers
        for hostname, fields in stored.items():
            if self._worker_fields.get(hostname) == fields:
                continue
            self._worker_fields[hostname] = fields
            known = {name: value for name, value in fields.items() if name in WORKER_FIELDS}
            worker = workers.data.get(hostname)
            if worker is None:
                workers[hostname] = self.state.Worker(**known)
            else:
                for name, value in known.items():
                    setattr(worker, name, value)
            alive = workers[hostname].alive
            changes.append(('worker-heartbeat' if alive else 'worker-offline', hostname))
        return changes

    def status(self) -> dict[str, Any]:
        return {'followed_version': self.version, 'last_read': self.last_read,
                'read_error': self.error}


class Replication:
    """Puts the replica ``events`` in the role :class:`Leadership` gives it."""

    def __init__(self, events: 'Events', url: str, poll_interval: float = 1.0) -> None:
        self.events = events
        self.url = url
        self.follower = Follower(events.history, events.changes, events.io_loop, poll_interval)
        self.leadership = Leadership(self._connect, events.io_loop, self._lead, self._follow)
        self._version_at_lead = 0
        events.state.metrics.watch_leadership(lambda: self.leading)

    def _connect(self) -> Any:
        import psycopg  # only replicas on PostgreSQL need it

        return psycopg.connect(self.url, autocommit=True, connect_timeout=2)

    def start(self, version: int) -> None:
        """Follow from ``version`` (where the loaded history ends) until elected."""
        self._version_at_lead = version
        self.follower.start(version)
        self.leadership.start()

    def stop_following(self) -> None:
        self.follower.close()

    def resign(self) -> None:
        """Give up the leader's lock, if held, by ending the session."""
        self.leadership.stop()

    @property
    def leading(self) -> bool:
        return self.leadership.role == LEADER

    async def _lead(self) -> None:
        self.follower.stop()
        await self.follower.catch_up()
        if not self.leading:  # stepped down while catching up
            return
        self._version_at_lead = self.follower.version
        self.events.lead()

    def _follow(self) -> None:
        self.events.follow()
        # Read again what this replica wrote as leader too: rows the new leader wrote
        # meanwhile are among them, and applying a row twice changes nothing.
        self.follower.start(self._version_at_lead)

    def status(self) -> dict[str, Any]:
        """``/healthcheck?verbose=1``'s ``replica`` section."""
        status = self.leadership.status()
        if not self.leading:
            status.update(self.follower.status())
        return status
