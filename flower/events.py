"""Event capture: a thread that reads Celery events from the broker and feeds the state.

The receiving thread does nothing but read events and append them to a queue;
the IO loop applies them to :class:`~flower.state.EventsState` in bounded
batches, so a flood of events never blocks the broker subscription and never
starves HTTP requests. With ``persistent``, a :class:`~flower.history.History`
loads the state back at start and writes its changes on a timer.

The model (:mod:`flower.state`) and the receiver (:mod:`flower.capture`) live
in modules of their own; their names stay importable from here.
"""
import collections
import logging
import threading
import time
from typing import Any

import celery
from tornado.ioloop import IOLoop, PeriodicCallback

from flower.capture import Backoff, BatchEventReceiver
from flower.history import History
from flower.metrics import PrometheusMetrics, get_prometheus_metrics
from flower.replica import Replication
from flower.state import CompactTask, EventsState, NoTaskHeap, TaskCache, stored_task
from flower.store import TaskStore
from flower.store_open import is_postgres_url
from flower.stream import ChangeFeed, HeartbeatWatch
from flower.utils import Throttle, describe_error
from flower.utils.broker import broadcast_connection, run_detached

__all__ = ['Backoff', 'BatchEventReceiver', 'CompactTask', 'Events', 'EventsState', 'History',
           'NoTaskHeap', 'PrometheusMetrics', 'TaskCache', 'get_prometheus_metrics',
           'stored_task']

logger = logging.getLogger(__name__)


class Events(threading.Thread):
    """The capture thread: broker → queue of raw events → IO loop → :class:`EventsState`."""

    events_enable_interval = 5000  # milliseconds between enable_events broadcasts
    batch_size = 5000  # most events applied per IO loop turn
    #: Longest an IO loop turn applies events before yielding to requests (seconds).
    batch_seconds = 0.005
    #: While events keep coming, how long they gather before the next turn applies them
    #: (seconds): the IO loop then wakes once for several broker messages, not for each.
    gather_seconds = 0.02
    max_pending = 1_000_000  # events waiting to be applied beyond which new ones are dropped
    heartbeat_check_interval = 2000  # milliseconds between looks for workers gone silent

    def __init__(self, capp: celery.Celery, io_loop: IOLoop, db: str | None = None,
                 persistent: bool = False, enable_events: bool = True,
                 state_save_interval: int = 0, db_max_tasks: int = 0, db_max_age: float = 0,
                 stream_buffer: int = 10000, replica_poll_interval: int = 1000,
                 **kwargs: Any) -> None:
        super().__init__(name='flower-events', daemon=True)
        self.capp = capp
        self.io_loop = io_loop
        self.db = db
        self.persistent = persistent
        self.enable_events = enable_events
        self.state = EventsState(**kwargs)
        #: Every applied task and worker event, numbered, for ``/api/events``.
        self.changes = ChangeFeed(stream_buffer)
        self._heartbeats = HeartbeatWatch()
        self._silence_timer = PeriodicCallback(self.publish_silent_workers,
                                               self.heartbeat_check_interval)
        self.history = None
        if persistent:
            self.history = History(self.state, io_loop, db, flush_interval=state_save_interval,
                                   max_tasks=db_max_tasks, max_age=db_max_age,
                                   on_restored=self._on_history_restored)
        #: With a history replicas share, who captures is decided at start (see
        #: :mod:`flower.replica`); a Flower of its own captures from the start.
        self.replication = None
        self.replica_poll_interval = replica_poll_interval
        self._is_replica = persistent and is_postgres_url(db)
        self._capturing = threading.Event()
        if not self._is_replica:
            self._capturing.set()
        self.received_count = 0
        self.applied_count = 0
        self.dropped_backlog_count = 0  # written by the capture thread only
        self.dropped_invalid_count = 0  # written by the IO loop only
        self.undecodable_count = 0  # messages that held no events; capture thread only
        self._undecodable_warnings = Throttle(60.0)
        self.broker_disconnects = 0
        self._dropping = False
        self.enable_events_sent = 0
        self.broker_connected = False
        self.broker_error = None
        self._pending = collections.deque()
        self._drain_scheduled = False
        self._stopping = threading.Event()
        self._receiver = None
        self._outage_started = None
        self._enabling_events = False
        self._backoff = Backoff()
        self._timer = None
        if enable_events:
            self._timer = PeriodicCallback(self.on_enable_events, self.events_enable_interval)
        self.state.metrics.watch_ingest(self.ingest_stats)

    @property
    def dropped_count(self) -> int:
        return self.dropped_backlog_count + self.dropped_invalid_count + self.undecodable_count

    def _on_undecodable(self, reason):
        """A message on the events exchange held no events (capture thread)."""
        self.undecodable_count += 1
        if self._undecodable_warnings.ready():
            logger.warning("Dropped a message of the events exchange that holds no events "
                           "(%s); %d so far (see flower_ingest_events_dropped)", reason,
                           self.undecodable_count)

    def ingest_stats(self) -> dict[str, float]:
        """Counts of the event capture (see :data:`flower.metrics.INGEST_METRICS`)."""
        pending, history = self._pending, self.history
        try:
            oldest = pending[0].get('local_received') if pending else None
        except IndexError:  # applied meanwhile
            oldest = None
        return {
            'received': self.received_count, 'applied': self.applied_count,
            'dropped': self.dropped_count, 'disconnects': self.broker_disconnects,
            'pending': len(pending),
            'lag': max(0.0, time.time() - oldest) if oldest else 0.0,
            'history_write_errors': history.write_errors if history else 0,
            'history_pending': history.pending_changes() if history else 0,
        }

    @property
    def store(self) -> TaskStore | None:
        """The history's :class:`~flower.store.TaskStore` while it is open, else ``None``."""
        return self.history.store if self.history is not None else None

    @property
    def restoring(self) -> bool:
        return self.history is not None and self.history.restoring

    def history_available(self) -> bool:
        """False while the ``--persistent`` history cannot be read (answers then come from
        memory only); True without a history."""
        return self.store is None or self.history.available()

    def history_status(self) -> dict[str, Any] | None:
        """How far the ``--persistent`` history is loaded and written (``None`` without one)."""
        return self.history.status() if self.store is not None else None

    def start(self) -> None:
        """Restore the history (``persistent``), then capture events.

        The process-wide tuning that keeps capture ahead of a busy cluster is
        the process owner's: see :func:`flower.command.tune_process`.
        """
        if self._is_replica:
            self.replication = Replication(self, self.db, self.replica_poll_interval / 1000)
        if self.persistent:
            self.open_history(in_background=True)
        if self.replication is not None:
            self.history.set_writing(False)  # until elected
        elif self._timer is not None:
            self._timer.start()
        super().start()
        self._silence_timer.start()

    def lead(self) -> None:
        """Become the replica that captures and writes (see :mod:`flower.replica`)."""
        self.state.task_index.number_from(self.store.next_seq())
        self.history.set_writing(True)
        self._capturing.set()
        if self._timer is not None:
            self._timer.start()

    def follow(self) -> None:
        """Stop capturing and writing: another replica leads."""
        self._capturing.clear()
        if self._receiver is not None:
            self._receiver.should_stop = True
        if self._timer is not None:
            self._timer.stop()
        self.history.set_writing(False)

    @property
    def following(self) -> bool:
        """Whether this is a follower replica, which leaves capture to another."""
        return self.replication is not None and not self.replication.leading

    def replica_status(self) -> dict[str, Any] | None:
        """This replica's role and how far it follows (``None`` for a Flower of its own)."""
        return self.replication.status() if self.replication is not None else None

    def stop(self) -> None:
        self._silence_timer.stop()
        if self._timer is not None:
            self._timer.stop()
        if self.replication is not None:
            self.replication.stop_following()
        self._stopping.set()
        self._capturing.set()  # wakes the capture thread so that it sees it must stop
        if self._receiver is not None:
            self._receiver.should_stop = True
        if self.is_alive():
            self.join(timeout=5)
        if self.store is not None:
            self._apply_pending_now()
            self.history.close()
        if self.replication is not None:
            self.replication.resign()  # after the last write: the next leader reads it

    # -- persistent history (see docs/persistence.rst and flower.history) -----------

    def open_history(self, in_background: bool = False) -> None:
        """Load the ``db`` history back and write changes to it every
        ``state_save_interval`` ms (every second if 0); events wait until it is loaded."""
        self.history.open(in_background)

    def flush_state(self) -> None:
        """Hand what changed to the history's writer thread."""
        self.history.flush()

    def save_state(self) -> None:
        """Write everything changed so far now, waiting for it (used at shutdown)."""
        if self.store is not None:
            self.history.save()

    def _on_history_restored(self):
        if self.replication is not None:
            # Not before: a row read by the load must not overwrite a newer one followed.
            self.replication.start(self.history.loaded_version)
        if self._pending and not self._drain_scheduled:
            self._drain_scheduled = True
            self.io_loop.add_callback(self._apply_pending)

    def _apply_pending_now(self):
        """Apply every event received so far (at shutdown, before the last write); if
        the history is still being restored they cannot be, and are counted as dropped."""
        while self._pending and not self.restoring:
            self._apply_pending()
        if self._pending:
            logger.warning("Stopped while restoring the history: %d events received meanwhile "
                           "are dropped", len(self._pending))
            self.dropped_invalid_count += len(self._pending)
            self._pending.clear()

    def run(self) -> None:
        while not self._stopping.is_set():
            self._capturing.wait()
            if self._stopping.is_set():
                break
            try:
                self._capture()
            except Exception as exc:  # any broker failure: report it and retry later
                if self._stopping.is_set():
                    break
                self._on_broker_error(exc)
                self._stopping.wait(self._backoff.next_delay())

    def _capture(self):
        with self.capp.connection_for_read() as connection:
            connection.ensure_connection(max_retries=0)
            receiver = BatchEventReceiver(connection, self.on_events, app=self.capp,
                                          on_undecodable=self._on_undecodable)
            receiver.connect_max_retries = 0
            self._receiver = receiver
            if self._stopping.is_set() or not self._capturing.is_set():
                return
            receiver.capture(lambda: self._on_connected(connection))

    def _on_connected(self, connection):
        if self._outage_started is not None:
            logger.info("Reconnected to broker %s after %.1f s; capturing events again",
                        connection.as_uri(), time.monotonic() - self._outage_started)
        self._outage_started = None
        self.broker_connected = True
        self.broker_error = None
        self._backoff.reset()

    def _on_broker_error(self, exc):
        if self.broker_connected:
            self.broker_disconnects += 1
            logger.warning(
                "Lost the event subscription (%s); events sent until Flower reconnects are "
                "lost. With Redis this is usually the server dropping a subscriber whose "
                "pub/sub output buffer grew past client-output-buffer-limit",
                describe_error(exc))
        self.broker_connected = False
        self.broker_error = describe_error(exc)
        if self._outage_started is None:
            self._outage_started = time.monotonic()
            logger.warning("Broker unreachable (%s); events are not captured until it "
                           "comes back, retrying with back-off", self.broker_error)
        else:
            logger.debug("Broker still unreachable: %s", self.broker_error)

    def on_event(self, event: dict[str, Any]) -> None:
        """Hand one raw event to the IO loop (called on the capture thread)."""
        self.on_events([event])

    def on_events(self, events: list[dict[str, Any]]) -> None:
        """Hand raw events to the IO loop (called on the capture thread).

        Never waits: beyond :attr:`max_pending` waiting events new ones are
        dropped, counted and logged, rather than letting memory grow without end.
        """
        self.received_count += len(events)
        pending = self._pending
        room = self.max_pending - len(pending)
        if room < len(events):
            dropped = len(events) - max(room, 0)
            self.dropped_backlog_count += dropped
            events = events[:max(room, 0)]
            if not self._dropping:
                self._dropping = True
                logger.warning("%d events are waiting to be applied: dropping new events "
                               "until the backlog halves (see flower_ingest_events_dropped)",
                               len(pending) + len(events))
        elif self._dropping and len(pending) < self.max_pending // 2:
            self._dropping = False
            logger.warning("Applying events again; %d dropped so far",
                           self.dropped_backlog_count)
        pending.extend(events)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.io_loop.add_callback(self._apply_pending)

    def _apply_pending(self):
        if self.restoring:
            self._drain_scheduled = False
            return  # the restore applies them when it is done
        pending = self._pending
        apply_event = self.state.event
        count = min(len(pending), self.batch_size)
        deadline = time.perf_counter() + self.batch_seconds
        failed = 0
        changes = []
        record = changes.append
        with self.state.metrics.batch():
            for done in range(count):
                if done & 31 == 31 and time.perf_counter() > deadline:
                    count = done
                    break
                event = pending.popleft()
                try:
                    apply_event(event)
                except Exception:
                    failed += 1
                    logger.exception("Failed to apply event %r", event.get('type'))
                    continue
                kind = event.get('type') or ''
                if kind.startswith('task-'):
                    record((kind, event.get('uuid')))
                elif kind.startswith('worker-'):
                    record((kind, event.get('hostname')))
        self.changes.publish(changes)
        self.dropped_invalid_count += failed
        self.applied_count += count - failed
        self._schedule_next_turn(more=bool(pending), flowing=count > 0)

    def _schedule_next_turn(self, more: bool, flowing: bool) -> None:
        """Apply what is left at once, gather what is coming in for a moment, or, once
        nothing came, leave the next event to wake the IO loop. A turn is scheduled
        whenever ``_drain_scheduled`` is set, so the capture thread wakes the loop only
        when events come in after a quiet moment."""
        if more:
            self.io_loop.add_callback(self._apply_pending)
        elif flowing:
            self.io_loop.call_later(self.gather_seconds, self._apply_pending)
        else:
            self._drain_scheduled = False
            if self._pending:  # came in after this turn looked, before the flag fell
                self._drain_scheduled = True
                self.io_loop.add_callback(self._apply_pending)

    def publish_silent_workers(self) -> None:
        """A ``worker-offline`` change for each worker whose heartbeats stopped without
        a goodbye, so that live pages and ``/api/events`` clients learn it died."""
        self.changes.publish([('worker-offline', name)
                              for name in self._heartbeats.went_silent(self.state.workers)])

    def _send_enable_events(self):
        with broadcast_connection(self.capp) as connection:
            self.capp.control.enable_events(connection=connection)

    async def on_enable_events(self) -> None:
        """Ask every worker to send events, so workers started later are seen."""
        if self._enabling_events or not self.broker_connected:
            return
        self._enabling_events = True
        try:
            await run_detached(self._send_enable_events)
            self.enable_events_sent += 1
        except Exception as exc:
            logger.warning("Failed to enable events: %s", describe_error(exc))
        finally:
            self._enabling_events = False
