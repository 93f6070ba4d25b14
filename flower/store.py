"""The task history on disk for ``--persistent``: an SQLite database in WAL mode.

Changes are written in batches (see :meth:`flower.history.History.flush`),
each batch one transaction, so a crash loses at most the batches not written
yet and never leaves a half-written file. Tasks are rows with one column per
field, which makes restoring them and looking them up by the listing filters
cheap; workers and the per-worker event counters are kept beside them.

A file that looks like a damaged history (an SQLite database that is not a
readable history of this format, or unreadable binary data) is renamed
``PATH.unreadable-<time>`` with one warning, and a new history is started.
Anything that is clearly not a history is left alone and refused
(:func:`flower.history_file.check_history_path`): a directory or other
non-regular file, a text file, an executable, a file of another user. A new
history is created readable by its owner only (mode 0600).
"""
import contextlib
import itertools
import json
import logging
import os
import pathlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from flower.history_file import check_history_path, create_private
from flower.store_links import LINK_INDEXES, LinkQueries
from flower.store_search import create_text_index, has_text_index, sqlite_search_condition
from flower.utils import encodable

logger = logging.getLogger(__name__)

FORMAT_NAME = 'flower-task-history'
FORMAT_VERSION = '1'

#: Stored task fields, in column order (``worker`` is the host name).
TASK_COLUMNS = (
    'uuid', 'seq', 'name', 'state', 'worker', 'client', 'sent', 'received', 'started',
    'succeeded', 'failed', 'retried', 'revoked', 'rejected', 'timestamp', 'runtime', 'args',
    'kwargs', 'result', 'exception', 'traceback', 'eta', 'expires', 'retries', 'parent_id',
    'root_id', 'exchange', 'routing_key', 'clock',
)
#: Worker fields worth keeping across a restart.
WORKER_FIELDS = ('hostname', 'pid', 'freq', 'heartbeats', 'clock', 'active', 'processed',
                 'loadavg', 'sw_ident', 'sw_ver', 'sw_sys')

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    uuid TEXT PRIMARY KEY, seq INTEGER NOT NULL,
    {', '.join(f'{column}' for column in TASK_COLUMNS[2:])}
);
CREATE INDEX IF NOT EXISTS tasks_seq ON tasks (seq);
CREATE INDEX IF NOT EXISTS tasks_timestamp ON tasks (timestamp);
CREATE INDEX IF NOT EXISTS tasks_name ON tasks (name, seq);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, seq);
CREATE INDEX IF NOT EXISTS tasks_worker ON tasks (worker, seq);
CREATE INDEX IF NOT EXISTS tasks_name_newest_first ON tasks (name, seq DESC);
CREATE INDEX IF NOT EXISTS tasks_received ON tasks (received, seq);
CREATE INDEX IF NOT EXISTS tasks_started ON tasks (started, seq);
CREATE INDEX IF NOT EXISTS tasks_runtime ON tasks (runtime, seq);
CREATE TRIGGER IF NOT EXISTS tasks_counted_in AFTER INSERT ON tasks BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'task_count';
END;
CREATE TRIGGER IF NOT EXISTS tasks_counted_out AFTER DELETE ON tasks BEGIN
    UPDATE meta SET value = value - 1 WHERE key = 'task_count';
END;
CREATE TABLE IF NOT EXISTS workers (hostname TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
    hostname TEXT NOT NULL, event_type TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (hostname, event_type)
);
"""

#: The number of stored tasks, kept by triggers so that counting does not read them all.
_TASK_COUNT = "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'task_count'"

# A task seen again after it left memory comes back with few fields: keep the stored ones.
# It is the newest task in memory then, so it takes its new place (``seq``) in the history
# too; at its old one, listings would show it twice.
_UPSERT = (
    f"INSERT INTO tasks ({', '.join(TASK_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in TASK_COLUMNS)}) "
    f"ON CONFLICT (uuid) DO UPDATE SET seq = excluded.seq, "
    + ', '.join(f'{column} = coalesce(excluded.{column}, {column})'
                for column in TASK_COLUMNS[2:])
)


def row_fields(row: Sequence[Any]) -> dict[str, Any]:
    """The fields a stored task row has a value for, by name, without ``uuid`` and
    ``seq`` (``row[0]`` and ``row[1]``); ``worker`` is a host name."""
    return {name: value for name, value in zip(TASK_COLUMNS[2:], row[2:]) if value is not None}


def task_row(task: Any, seq: int) -> list[Any]:
    """The row of ``task`` (a Celery task object) in :data:`TASK_COLUMNS` order."""
    fields = task.__dict__
    worker = fields.get('worker')
    row = [task.uuid, seq]
    for column in TASK_COLUMNS[2:]:
        if column == 'worker':
            row.append(getattr(worker, 'hostname', worker))
        elif column == 'state':
            row.append(task.state)
        else:
            value = fields.get(column)
            # sqlite3 refuses text UTF-8 cannot carry; one such task must not stop the history.
            row.append(value if value is None or isinstance(value, (int, float))
                       else encodable(str(value)))
    return row


def sorted_parts(where: str, order_by: str,
                 key: Callable[[str], str] = str) -> list[tuple[str, str]]:
    """The queries, ``(WHERE, ORDER BY)`` in turn, of a listing sorted by a column
    (``-column``: descending) the way listings sort in memory: rows with a value
    (equal values newest first), then rows without one, newest first. Two queries,
    so that each can read an index in order. ``key`` gives the expression a column
    is sorted by (its indexed form). Numbers come before text in SQLite as in
    :func:`flower.utils.task_index.sort_key`."""
    column = order_by.removeprefix('-')
    if column not in TASK_COLUMNS:
        raise ValueError(f"stored tasks cannot be ordered by {order_by!r}")
    direction = 'DESC' if order_by.startswith('-') else 'ASC'
    return [(f'{where} AND {column} IS NOT NULL', f'{key(column)} {direction}, seq DESC'),
            (f'{where} AND {column} IS NULL', 'seq DESC')]


class UnreadableHistory(Exception):
    """The file at the history path is not a readable history of this format."""


class HistoryQueries(LinkQueries):
    """The listing queries of a history, on the connection ``self._reader``."""

    _reader = None
    #: Whether the file has the text index searches are narrowed by.
    text_index = False

    def older_tasks(self, before_seq: int, order_by: str | None = None, limit: int | None = None,
                    **filters: Any) -> Iterable[tuple]:
        """Stored tasks with ``seq < before_seq`` matching the filters (see
        :meth:`_where`), newest first or ordered as :func:`sorted_parts` says:
        rows read lazily. A ``limit`` lets SQLite keep only the first rows while
        sorting instead of sorting them all."""
        where, values = self._where(before_seq, **filters)
        values.append(-1 if limit is None else limit)  # -1: no limit
        if order_by is None:
            return self._reader.execute(
                f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks WHERE {where} "
                f"ORDER BY seq DESC LIMIT ?", values)
        return itertools.chain.from_iterable(
            self._rows_in_order(self._reader.execute(
                f"SELECT rowid FROM tasks WHERE {part} ORDER BY {order} LIMIT ?", values))
            for part, order in sorted_parts(where, order_by))

    sorted_chunk_size = 500  # rows read at a time by a sorted listing

    def _rows_in_order(self, rowids: sqlite3.Cursor) -> Iterator[tuple]:
        """The rows of a cursor of rowids, in its order, a chunk at a time. SQLite
        sorts whole rows ten times slower than rowids alone (it copies them)."""
        while chunk := [rowid for (rowid,) in rowids.fetchmany(self.sorted_chunk_size)]:
            rows = {row[0]: row[1:] for row in self._reader.execute(
                f"SELECT rowid, {', '.join(TASK_COLUMNS)} FROM tasks "
                f"WHERE rowid IN ({', '.join('?' * len(chunk))})", chunk)}
            # Retention may have deleted a row once the rowid cursor was done.
            yield from (rows[rowid] for rowid in chunk if rowid in rows)

    def count_older(self, before_seq: int, **filters: Any) -> int:
        """Without filters: the kept count less the newer rows (most are in memory),
        rather than counting all the older ones."""
        if not any(value is not None for value in filters.values()):
            return self._reader.execute(
                f'SELECT ({_TASK_COUNT}) - count(*) FROM tasks WHERE seq >= ?',
                (before_seq,)).fetchone()[0]
        where, values = self._where(before_seq, **filters)
        return self._reader.execute(f'SELECT count(*) FROM tasks WHERE {where}', values).fetchone()[0]

    def _where(self, before_seq, name=None, state=None, worker=None, ranges=None, query=None):
        """``seq < before_seq``, exact ``name``/``state``/``worker`` and
        ``{column: (low, high)}`` ranges (``low <= value < high``), as SQL. A search
        ``query`` is narrowed by the text index (:mod:`flower.store_search`) when the
        file has one; the matcher decides on the rows it keeps."""
        clauses, values = ['seq < ?'], [before_seq]
        for column, value in (('name', name), ('state', state), ('worker', worker)):
            if value is not None:
                clauses.append(f'{column} = ?')
                values.append(value)
        for column, (low, high) in (ranges or {}).items():
            if low is not None:
                clauses.append(f'{column} >= ?')
                values.append(low)
            if high is not None:
                clauses.append(f'{column} < ?')
                values.append(high)
        condition = sqlite_search_condition(query) if query and self.text_index else None
        if condition is not None:
            clauses.append(f'({condition[0]})')
            values += condition[1]
        return ' AND '.join(clauses), values


class HistoryReader(HistoryQueries):
    """A history opened read-only on a connection of its own, for a thread other than
    the IO loop's (searches scan it there); :meth:`close` it after use."""

    def __init__(self, path: str) -> None:
        uri = pathlib.Path(path).as_uri() + '?mode=ro'  # quoted: a path may hold '?' or '#'
        self._reader = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self.text_index = has_text_index(self._reader)

    def close(self) -> None:
        self._reader.close()


class TaskStore(HistoryQueries):
    """One history file. Writes go through :meth:`write` (one thread at a time);
    the IO loop reads through its own connection, which WAL lets run beside writes."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        check_history_path(self.path)
        self._write_lock = threading.Lock()
        try:
            self._reader = self._open_checked()
        except UnreadableHistory as exc:
            self._move_aside(str(exc))
            self._reader = self._open_checked()
        self._writer = self._connect()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        connection.execute('PRAGMA journal_mode=WAL')
        connection.execute('PRAGMA synchronous=NORMAL')
        return connection

    def _open_checked(self) -> sqlite3.Connection:
        """Open the file, creating a new history if there is none; check its format."""
        existed = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        create_private(self.path)
        try:
            if existed:
                self._check_format()
            connection = self._connect()
            connection.executescript(_SCHEMA + LINK_INDEXES)
            # The kept count of the triggers above; a file written before them counts once.
            connection.execute("INSERT OR IGNORE INTO meta SELECT 'task_count', count(*) "
                               "FROM tasks")
            self.text_index = create_text_index(connection)
            connection.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?), ('version', ?)",
                               (FORMAT_NAME, FORMAT_VERSION))
        except sqlite3.DatabaseError as exc:
            raise UnreadableHistory(f"it cannot be read as a database ({exc})") from None
        if not existed:
            logger.info("Started a new task history in %s", self.path)
        return connection

    def _check_format(self) -> None:
        """Raise :class:`UnreadableHistory` unless the file is a sound history; reads only."""
        connection = sqlite3.connect(f'file:{self.path}?mode=ro', uri=True)
        try:
            tables = {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            meta = dict(connection.execute('SELECT key, value FROM meta')) if 'meta' in tables else {}
            if meta.get('format') != FORMAT_NAME:
                raise UnreadableHistory("it is not a Flower task history")
            if meta.get('version') != FORMAT_VERSION:
                raise UnreadableHistory(f"its format version {meta.get('version')!r} "
                                        f"is not {FORMAT_VERSION!r}")
            check = connection.execute('PRAGMA quick_check(1)').fetchone()
            if check is None or check[0] != 'ok':
                raise UnreadableHistory(f"it is damaged ({check[0] if check else 'no answer'})")
        finally:
            connection.close()

    def _move_aside(self, reason: str) -> None:
        aside = f"{self.path}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}"
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, aside + suffix)
        logger.warning("Task history %s was moved to %s and a new one started: %s",
                       self.path, aside, reason)
        self.moved_to = aside

    moved_to = None

    def close(self) -> None:
        with self._write_lock:
            self._writer.close()
        self._reader.close()

    def write(self, tasks: Iterable[Sequence[Any]] = (), workers: Iterable[tuple[str, dict]] = (),
              counters: Iterable[tuple[str, str, int]] = (), max_tasks: int = 0,
              max_age: float = 0) -> int:
        """Write one batch in one transaction, then apply the retention limits.

        ``tasks`` are rows in :data:`TASK_COLUMNS` order, ``workers``
        ``(hostname, fields)`` pairs and ``counters`` ``(hostname, event type,
        count)`` triples. Returns the number of tasks retention removed.
        """
        with self.transaction() as connection:
            connection.executemany(_UPSERT, tasks)
            connection.executemany('INSERT OR REPLACE INTO workers VALUES (?, ?)',
                                   [(name, json.dumps(fields)) for name, fields in workers])
            connection.executemany('INSERT OR REPLACE INTO counters VALUES (?, ?, ?)', counters)
            return self._apply_retention(connection, max_tasks, max_age)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The write connection, one writer at a time, in one transaction: committed
        at the end of the block, rolled back if it raises. For other tables of the
        file too (see :mod:`flower.audit_store`)."""
        with self._write_lock:
            connection = self._writer
            connection.execute('BEGIN')
            try:
                yield connection
                connection.execute('COMMIT')
            except BaseException:
                # SQLite may have rolled back already (a full disk does): a ROLLBACK
                # then fails and would hide the real cause.
                if connection.in_transaction:
                    connection.execute('ROLLBACK')
                raise

    @staticmethod
    def _apply_retention(connection: sqlite3.Connection, max_tasks: int, max_age: float) -> int:
        removed = 0
        if max_age:
            removed += connection.execute('DELETE FROM tasks WHERE timestamp < ?',
                                          (time.time() - max_age,)).rowcount
        if max_tasks:
            # The oldest rows over the limit, read from the kept count: no walk of the others.
            excess = connection.execute(_TASK_COUNT).fetchone()[0] - max_tasks
            if excess > 0:
                removed += connection.execute(
                    'DELETE FROM tasks WHERE rowid IN '
                    '(SELECT rowid FROM tasks ORDER BY seq LIMIT ?)', (excess,)).rowcount
        return removed

    def load_tasks(self, limit: int) -> sqlite3.Cursor:
        """The newest ``limit`` stored tasks, oldest first: a cursor of rows."""
        first = self._reader.execute('SELECT seq FROM tasks ORDER BY seq DESC LIMIT 1 OFFSET ?',
                                     (limit - 1,)).fetchone() if limit else None
        return self._reader.execute(
            f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks WHERE seq >= ? ORDER BY seq",
            (first[0] if first else -1,))

    def load_workers(self) -> dict[str, dict[str, Any]]:
        return {name: json.loads(data)
                for name, data in self._reader.execute('SELECT hostname, data FROM workers')}

    def load_counters(self) -> list[tuple[str, str, int]]:
        return self._reader.execute('SELECT hostname, event_type, count FROM counters').fetchall()

    def forget_workers(self, hostnames: Iterable[str]) -> None:
        """Delete the workers ``hostnames`` and their counters (purged workers)."""
        names = [(name,) for name in hostnames]
        with self.transaction() as connection:
            connection.executemany('DELETE FROM workers WHERE hostname = ?', names)
            connection.executemany('DELETE FROM counters WHERE hostname = ?', names)

    def next_seq(self) -> int:
        row = self._reader.execute('SELECT max(seq) FROM tasks').fetchone()
        return 0 if row[0] is None else row[0] + 1

    def get_task(self, uuid: str) -> tuple | None:
        return self._reader.execute(
            f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks WHERE uuid = ?", (uuid,)).fetchone()

    def own_reader(self) -> HistoryReader:
        """A :class:`HistoryReader` of this history."""
        return HistoryReader(self.path)

    def count_tasks(self) -> int:
        return self._reader.execute(_TASK_COUNT).fetchone()[0]

    def load_setting(self, key: str) -> str | None:
        """A value :meth:`save_setting` kept, or None."""
        row = self._reader.execute('SELECT value FROM meta WHERE key = ?', (f'setting:{key}',))
        found = row.fetchone()
        return found[0] if found else None

    def save_setting(self, key: str, value: str) -> None:
        """Keep ``value`` (text) under ``key`` beside the history, at once."""
        with self._write_lock:
            self._writer.execute('INSERT OR REPLACE INTO meta VALUES (?, ?)',
                                 (f'setting:{key}', value))
