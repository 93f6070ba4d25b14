"""The ``--persistent`` task history of a state: loaded back at start, written in
batches on a timer, bounded by retention (see docs/persistence.rst).

The state is changed on the IO loop only: tasks come back from the file in
short slices of IO loop turns, and a writer thread puts the changes the state
collected (``take_changes``) into the store :func:`flower.store_open.open_store`
gives: a :class:`~flower.store.TaskStore` (SQLite) or a
:class:`~flower.store_postgres.PostgresTaskStore`.
"""
import functools
import gc
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tornado.ioloop import IOLoop, PeriodicCallback

from flower.state import EventsState
from flower.store import WORKER_FIELDS, row_fields, task_row
from flower.store_open import describe_db, is_postgres_url, open_store
from flower.utils import Throttle, describe_error

logger = logging.getLogger(__name__)


class History:
    """The history file ``db`` of ``state``: :meth:`open` loads it back, then every
    ``flush_interval`` ms what changed is written (one transaction per batch)."""

    default_flush_interval = 1000  # milliseconds between two writes
    shared_flush_interval = 500  # the same, on a history replicas share
    #: Longest an IO loop turn spends loading tasks, in seconds: requests made while
    #: the history loads wait behind one such turn at a time.
    restore_slice_seconds = 0.002
    restore_chunk_size = 250  # rows read at a time within a turn

    def __init__(self, state: EventsState, io_loop: IOLoop, db: str, flush_interval: int = 0,
                 max_tasks: int = 0, max_age: float = 0,
                 on_restored: Callable[[], None] | None = None) -> None:
        self.state = state
        self.io_loop = io_loop
        self.db = describe_db(db)  # as logs show it
        self._location = db
        # Replicas: a task finished a second before the leader dies must be written.
        self.flush_interval = flush_interval or (self.shared_flush_interval if is_postgres_url(db)
                                                 else self.default_flush_interval)
        self.max_tasks = max_tasks
        self.max_age = max_age
        self.on_restored = on_restored
        self.store = None
        self.restoring = False
        self.restore_total = 0  # tasks the load brings back
        self.restored_count = 0  # of which back so far
        self.write_errors = 0  # failed writes since start
        self._writer = None
        self._flush_timer = None
        self._writing = False
        self._in_flight_changes = 0  # tasks and workers of the batch being written
        self._in_flight_tasks = {}  # uuid -> (task, number) of that batch
        self._stored_workers = set()  # host names the load found in the history
        self._last_write_error = None
        self._slow_write_warnings = Throttle(60.0)
        #: Off on a follower replica, which leaves writing to the leader.
        self.writes_changes = True
        #: The newest task row version when the load began (shared histories only):
        #: a follower reads what was written after it.
        self.loaded_version = 0

    def open(self, in_background: bool = False) -> None:
        """Open the file, load tasks, workers and counters back, and start writing.

        ``in_background``: tasks come back a slice per IO loop turn, so requests are
        served meanwhile; ``on_restored`` is called once they are all back.
        """
        self.store = open_store(self._location)
        if hasattr(self.store, 'latest_version'):
            self.loaded_version = self.store.latest_version()
        self._restore(in_background)
        self.state.track_changes = True
        self.state.stored_fields = self._stored_fields
        self.state.unwritten_task = self._unwritten_task
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix='flower-history')
        self._flush_timer = PeriodicCallback(self.flush, self.flush_interval)
        self._flush_timer.start()

    def close(self) -> None:
        """Write what changed, wait for it, and close the file; a failed last write is
        logged in one line (the file keeps what was written before)."""
        if self.store is None:
            return
        self._flush_timer.stop()
        try:
            self.save()
        except Exception as exc:
            logger.error("Writing the task history to %s at shutdown failed: %s. The file "
                         "keeps the history written before", self.db, describe_error(exc))
        finally:
            self._writer.shutdown(wait=True)
            self.store.close()
            self.store = None

    # -- loading back ---------------------------------------------------------------

    def _restore(self, in_background: bool) -> None:
        state, store = self.state, self.store
        stored_workers = store.load_workers()
        self._stored_workers = set(stored_workers)
        for hostname, fields in stored_workers.items():
            known = {name: value for name, value in fields.items() if name in WORKER_FIELDS}
            state.workers[hostname] = state.Worker(**known)
        for hostname, event_type, count in store.load_counters():
            state.counter[hostname][event_type] = count
        state.task_index.number_from(store.next_seq())
        stored, limit = store.count_tasks(), state.max_tasks_in_memory
        self.restore_total = min(stored, limit) if limit else stored
        self.restored_count = 0
        rows = store.load_tasks(limit)
        self.restoring = True
        if in_background:
            self.io_loop.add_callback(self._restore_in_background, rows, time.monotonic())
        else:
            started = time.monotonic()
            while self._restore_chunk(rows):
                pass
            self._restored(started)

    def _unwritten(self, uuid: str) -> tuple[Any, int] | None:
        """``(task, number)`` of the task ``uuid`` if its last changes are not written yet:
        in the next batch, or in the one being written."""
        return self.state.changed_tasks.get(uuid) or self._in_flight_tasks.get(uuid)

    def _unwritten_task(self, uuid: str) -> Any:
        unwritten = self._unwritten(uuid)
        return None if unwritten is None else unwritten[0]

    def _stored_fields(self, uuid: str) -> dict[str, Any] | None:
        """The fields of the task ``uuid`` as the history has them or is about to: a task
        that left memory before its changes were written is still in the next batch, or
        in the one being written."""
        unwritten = self._unwritten(uuid)
        if unwritten is not None:
            row = task_row(*unwritten)
        else:
            row = self.store.get_task(uuid) if self.store is not None else None
        if row is None:
            return None
        fields = row_fields(row)
        fields.pop('worker', None)
        return fields

    def _restore_chunk(self, rows: Any) -> int:
        """Load the next chunk of tasks; return how many there were."""
        restore = self.state.restore_task
        chunk = rows.fetchmany(self.restore_chunk_size)
        for row in chunk:
            fields = row_fields(row)
            fields['uuid'] = row[0]
            restore(fields, row[1])
        self.restored_count += len(chunk)
        return len(chunk)

    def _restore_in_background(self, rows: Any, started: float) -> None:
        """Load chunks for at most :attr:`restore_slice_seconds`, then let the IO loop
        serve what waits before going on."""
        deadline = time.perf_counter() + self.restore_slice_seconds
        while self._restore_chunk(rows):
            if time.perf_counter() >= deadline:
                # Loaded tasks live on: out of the collector's sight at once, or full
                # collections over a growing heap stall the requests waiting.
                gc.freeze()
                self.io_loop.add_callback(self._restore_in_background, rows, started)
                return
        self._restored(started)

    def _restored(self, started: float) -> None:
        self.restoring = False
        # A restored task names its worker, which Celery's state then lists; a worker
        # purged before (not among the stored ones) must stay forgotten.
        for hostname in set(self.state.workers.data) - self._stored_workers:
            self.state.workers.pop(hostname, None)
        logger.info("Restored %d tasks and %d workers from %s in %.1f s", self.restored_count,
                    len(self.state.workers), self.db, time.monotonic() - started)
        if self.on_restored is not None:
            self.on_restored()

    # -- writing --------------------------------------------------------------------

    def _take_batch(self):
        """The rows to write for everything changed since the last batch."""
        tasks, workers = self.state.take_changes()
        counter = self.state.counter
        worker_rows, counter_rows = [], []
        for hostname in workers:
            worker = self.state.workers.data.get(hostname)
            if worker is not None:
                worker_rows.append((hostname, {name: getattr(worker, name, None)
                                               for name in WORKER_FIELDS}))
            counter_rows.extend((hostname, event_type, count)
                                for event_type, count in counter.get(hostname, {}).items())
        task_rows = [task_row(task, number) for task, number in tasks.values()]
        return tasks, workers, {'tasks': task_rows, 'workers': worker_rows,
                                'counters': counter_rows, 'max_tasks': self.max_tasks,
                                'max_age': self.max_age}

    def set_writing(self, writing: bool) -> None:
        """Start or stop collecting and writing changes (a replica that leads or
        follows); a follower's state changes only as the leader's writes say."""
        self.writes_changes = writing
        self.state.track_changes = writing
        if not writing:
            self.state.take_changes()

    def flush(self) -> None:
        """Hand what changed to the writer thread; skipped while a batch is being written
        (changes keep collecting for the next one)."""
        if self._writing or self.store is None or not self.writes_changes:
            return
        self.apply_retention_in_memory()
        tasks, workers, batch = self._take_batch()
        if not batch['tasks'] and not batch['workers']:
            return
        self._writing = True
        self._in_flight_changes = len(tasks) + len(workers)
        self._in_flight_tasks = tasks
        started = time.monotonic()
        future = self._writer.submit(self.store.write, **batch)
        future.add_done_callback(
            lambda done: self.io_loop.add_callback(self._written, done, tasks, workers, started))

    def _written(self, future: Future, tasks: dict[str, tuple[Any, int]], workers: set[str],
                 started: float) -> None:
        """After a write: on failure keep the batch for the next try, and log an
        outage once, when it starts, and once more when writing works again."""
        self._writing = False
        self._in_flight_changes = 0
        self._in_flight_tasks = {}
        self._warn_if_slow(time.monotonic() - started, len(tasks))
        error = future.exception()
        if error is None:
            if self._last_write_error is not None:
                logger.warning("Writing the task history to %s works again; the changes "
                               "kept meanwhile are written", self.db)
            self._last_write_error = None
            return
        self._keep_for_next_write(tasks, workers)
        self.write_errors += 1
        if self._last_write_error is None:
            logger.error("Writing the task history to %s failed: %s. Changes are kept in "
                         "memory and written when it works again (retrying every flush)",
                         self.db, describe_error(error))
        self._last_write_error = describe_error(error)

    def _warn_if_slow(self, seconds: float, tasks: int) -> None:
        """A write longer than the flush interval means changes pile up: say so, at most
        once a minute."""
        if seconds * 1000 > self.flush_interval and self._slow_write_warnings.ready():
            logger.warning("Writing %d tasks to the task history %s took %.1f s, longer than "
                           "the flush interval (state_save_interval, %d ms): changes wait for "
                           "the next write", tasks, self.db, seconds, self.flush_interval)

    def _keep_for_next_write(self, tasks: dict[str, tuple[Any, int]], workers: set[str]) -> None:
        """Put back a batch that could not be written; newer changes of its tasks win."""
        for uuid, entry in tasks.items():
            self.state.changed_tasks.setdefault(uuid, entry)
        self.state.changed_workers.update(workers)

    def save(self) -> None:
        """Write everything changed so far now, waiting for it (used at shutdown).

        A failure is raised; the write is one transaction, so the file keeps the
        history written before, and the changes wait for the next write.
        """
        if self.store is None or not self.writes_changes:
            return
        tasks, workers, batch = self._take_batch()
        try:
            self._writer.submit(self.store.write, **batch).result()
        except Exception:
            self._keep_for_next_write(tasks, workers)
            raise

    def forget_worker(self, hostname: str) -> None:
        """Delete a purged worker from the history too: a restart would bring it back."""
        self.state.changed_workers.discard(hostname)
        if self.store is None or not self.writes_changes:
            return
        future = self.submit(self.store.forget_workers, [hostname])
        future.add_done_callback(functools.partial(self._forgotten, hostname))

    def _forgotten(self, hostname: str, future: Future) -> None:
        error = future.exception()
        if error is not None:
            logger.warning("Could not delete the purged worker %s from the task history %s: "
                           "%s", hostname, self.db, describe_error(error))

    def submit(self, function: Callable[..., Any], *args: Any) -> Future:
        """Run ``function(*args)`` on the writer thread, after what was handed to it
        before: other tables of the file (the audit trail) are written and read there,
        off the IO loop, in order with the task batches."""
        return self._writer.submit(function, *args)

    def apply_retention_in_memory(self) -> None:
        """Forget from memory the tasks retention removes from the history."""
        keep = self.max_tasks or None
        before = time.time() - self.max_age if self.max_age else None
        if keep is not None or before is not None:
            self.state.forget_oldest_tasks(keep=keep, before=before)

    # -- what it says of itself --------------------------------------------------------

    def pending_changes(self) -> int:
        """Tasks and workers changed in memory and not yet written."""
        state = self.state
        return len(state.changed_tasks) + len(state.changed_workers) + self._in_flight_changes

    def status(self) -> dict[str, Any]:
        """How far the history is loaded and written (``/healthcheck?verbose=1``)."""
        status = {
            'loading': self.restoring, 'tasks_loaded': self.restored_count,
            'tasks_to_load': self.restore_total, 'pending_changes': self.pending_changes(),
            'writing': 'failing' if self._last_write_error is not None else 'ok',
            'available': self.available(),
        }
        if not status['available']:
            status['unavailable_reason'] = self.store.unavailable_reason
        return status

    def available(self) -> bool:
        """False while the store cannot be read (a PostgreSQL database out of reach):
        listings then show the tasks in memory only."""
        return getattr(self.store, 'available', True)
