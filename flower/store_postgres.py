"""The task history in PostgreSQL (``--db=postgresql://...``): the interface of
:class:`flower.store.TaskStore`, so :class:`flower.history.History` and every
listing above it work the same on either.

Connections come from a small pool; each batch is one transaction (written by
:mod:`flower.store_postgres_write`). Every row written takes a new ``version``
from a sequence, so another process can follow the changes in order
(:meth:`PostgresTaskStore.changes_since`).

When the database cannot be reached, reads answer as if the history held
nothing more (the listings then show the tasks in memory only) and the store
says it is unavailable until a probe reaches it again (see
:mod:`flower.store_reachability`). Writes raise, so that History keeps the
batch for the next try.
"""
import contextlib
import json
import logging
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg_pool

from flower.store import TASK_COLUMNS, sorted_parts
from flower.store_postgres_schema import KEY_LENGTH, create_schema, key
from flower.store_postgres_search import search_condition
from flower.store_postgres_write import TASK_COUNT_QUERY, write_batch
from flower.store_reachability import Reachability
from flower.utils.masking import mask_text
from flower.utils.search import Query

logger = logging.getLogger(__name__)
# The pool warns at every failed reconnection attempt; Reachability says it once.
logging.getLogger('psycopg.pool').setLevel(logging.ERROR)

_COLUMNS = ', '.join(TASK_COLUMNS)
#: What a lost or refused connection raises.
_UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError)
_T = TypeVar('_T')


class _Rows:
    """Rows already read, handed out as a cursor's ``fetchmany`` would."""

    def __init__(self, rows: list[tuple]) -> None:
        self._rows = iter(rows)

    def fetchmany(self, size: int) -> list[tuple]:
        return [row for _, row in zip(range(size), self._rows)]


def _where(before_seq: int, name: str | None = None, state: str | None = None,
           worker: str | None = None, ranges: dict | None = None,
           query: Query | None = None) -> tuple[str, list[Any]]:
    """As :meth:`flower.store.HistoryQueries._where`, on the indexed text prefixes, and
    narrowed by the text terms of a search ``query`` (see :mod:`flower.store_postgres_search`)."""
    clauses, values = ['seq < %s'], [before_seq]
    for column, value in (('name', name), ('state', state), ('worker', worker)):
        if value is not None:
            clauses.append(f'{key(column)} = left(%s::text, {KEY_LENGTH}) AND {column} = %s')
            values += [value, value]
    for column, (low, high) in (ranges or {}).items():
        if low is not None:
            clauses.append(f'{column} >= %s')
            values.append(low)
        if high is not None:
            clauses.append(f'{column} < %s')
            values.append(high)
    condition = None if query is None else search_condition(query)
    if condition is not None:
        clauses.append(f'({condition[0]})')
        values += condition[1]
    return ' AND '.join(clauses), values


def _first_rows(connection: psycopg.Connection, queries: list[tuple[str, list[Any]]],
                limit: int) -> list[tuple]:
    """The first ``limit`` rows of the queries in turn."""
    rows: list[tuple] = []
    for sql, values in queries:
        if len(rows) >= limit:
            break
        rows += connection.execute(f'{sql} LIMIT %s', [*values, limit - len(rows)]).fetchall()
    return rows


class PostgresQueries:
    """The listing queries of a history, each on a connection of ``pool``."""

    sorted_chunk_size = 500  # rows fetched at a time by a listing

    def __init__(self, pool: psycopg_pool.ConnectionPool, reachability: Reachability) -> None:
        self._pool = pool
        self.reachability = reachability
        self._streams: weakref.WeakSet[Iterator[tuple]] = weakref.WeakSet()

    def _read(self, fallback: _T, query: Callable[[psycopg.Connection], _T]) -> _T:
        """``query(connection)``, or ``fallback`` while the database is unavailable."""
        if not self.reachability.available:
            return fallback
        try:
            with self._pool.connection() as connection:
                result = query(connection)
        except _UNREACHABLE as exc:
            self.reachability.failed(exc)
            return fallback
        self.reachability.succeeded()
        return result

    def _all(self, fallback: Any, sql: str, values: Sequence[Any] = ()) -> Any:
        return self._read(fallback, lambda connection: connection.execute(sql, values).fetchall())

    def _one(self, sql: str, values: Sequence[Any] = ()) -> tuple | None:
        return self._read(None, lambda connection: connection.execute(sql, values).fetchone())

    def older_tasks(self, before_seq: int, order_by: str | None = None, limit: int | None = None,
                    **filters: Any) -> Iterator[tuple]:
        """Stored tasks with ``seq < before_seq`` matching the filters, newest first or in
        ``order_by`` order (see :meth:`flower.store.HistoryQueries.older_tasks`)."""
        where, values = _where(before_seq, **filters)
        # Text is ordered by its indexed start: values that differ only after their first
        # KEY_LENGTH characters sort as equal.
        parts = ([(where, 'seq DESC')] if order_by is None
                 else sorted_parts(where, order_by, key))
        queries = [(f'SELECT {_COLUMNS} FROM all_tasks WHERE {where} ORDER BY {order}', values)
                   for where, order in parts]
        if limit is not None:
            return iter(self._read([], lambda connection: _first_rows(connection, queries, limit)))
        stream = self._stream(queries)
        self._streams.add(stream)
        return stream

    def _stream(self, queries: list[tuple[str, list[Any]]]) -> Iterator[tuple]:
        """The rows of each query in turn, fetched a chunk at a time from a cursor on the
        server, on a connection held until they are all read or :meth:`close`; a lost
        connection ends them."""
        if not self.reachability.available:
            return
        try:
            with self._pool.connection() as connection:
                for sql, values in queries:
                    with connection.cursor(name='flower_listing') as cursor:
                        cursor.itersize = self.sorted_chunk_size
                        cursor.execute(sql, values)
                        yield from cursor
        except _UNREACHABLE as exc:
            self.reachability.failed(exc)
            return
        self.reachability.succeeded()

    def count_older(self, before_seq: int, **filters: Any) -> int:
        """Without filters: the kept count less the newer rows (most are in memory),
        in one snapshot, rather than counting all the older ones."""
        if not any(value is not None for value in filters.values()):
            row = self._one(f'SELECT ({TASK_COUNT_QUERY}) - count(*) FROM all_tasks WHERE seq >= %s',
                            (before_seq,))
            return row[0] if row else 0
        where, values = _where(before_seq, **filters)
        row = self._one(f'SELECT count(*) FROM all_tasks WHERE {where}', values)
        return row[0] if row else 0

    def linked_tasks(self, uuids: Collection[str], columns: str, limit: int) -> list[tuple]:
        """At most ``limit`` rows (``columns``) of the stored tasks that are one of
        ``uuids``, or whose parent or root is one of them."""
        ids = list(uuids)
        keys = [uuid[:KEY_LENGTH] for uuid in ids]
        links = ' OR '.join(f'({key(column)} = ANY(%(keys)s) AND {column} = ANY(%(ids)s))'
                            for column in ('parent_id', 'root_id'))
        return self._all([], f'SELECT {columns} FROM all_tasks WHERE uuid = ANY(%(ids)s) OR {links} '
                             'LIMIT %(limit)s', {'ids': ids, 'keys': keys, 'limit': limit})

    def close(self) -> None:
        """Give back the connections of listings not read to their end."""
        for stream in list(self._streams):
            stream.close()


class PostgresTaskStore(PostgresQueries):
    """One history in a PostgreSQL database, created or checked on opening
    (:class:`~flower.store_postgres_schema.SchemaTooNew` if newer than this code)."""

    connect_timeout = 2  # seconds
    pool_size = (1, 4)
    #: The pool's reconnection attempts back off without a bound; past this many seconds
    #: it gives up, and the next request starts again from a short delay.
    reconnect_timeout = 30

    def __init__(self, url: str) -> None:
        self.url = url
        pool = psycopg_pool.ConnectionPool(
            url, min_size=self.pool_size[0], max_size=self.pool_size[1], open=False,
            kwargs={'connect_timeout': self.connect_timeout}, timeout=self.connect_timeout,
            check=psycopg_pool.ConnectionPool.check_connection, name='flower-history',
            reconnect_timeout=self.reconnect_timeout)
        super().__init__(pool, Reachability(mask_text(url), self._probe, _UNREACHABLE))
        pool.open(wait=True, timeout=self.connect_timeout * 2)
        try:
            with pool.connection() as connection:
                create_schema(connection)
        except BaseException:
            pool.close()
            raise

    @property
    def available(self) -> bool:
        """False since a read failed to reach the database, until one reaches it again."""
        return self.reachability.available

    @property
    def unavailable_reason(self) -> str | None:
        return self.reachability.reason

    def close(self) -> None:
        super().close()
        self.reachability.close()
        self._pool.close()

    def _probe(self) -> None:
        with self._pool.connection() as connection:
            connection.execute('SELECT 1')

    def own_reader(self) -> PostgresQueries:
        """Queries for a search's thread: they take connections of the same pool."""
        return PostgresQueries(self._pool, self.reachability)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """A connection in a transaction: committed at the end of the block, rolled back
        if it raises. A database out of reach raises, and reads stop trying it until it
        is reached again, by a probe or by this."""
        try:
            with self._pool.connection() as connection, connection.transaction():
                yield connection
        except _UNREACHABLE as exc:
            self.reachability.failed(exc)
            raise
        self.reachability.succeeded()

    def write(self, tasks: Sequence[Sequence[Any]] = (), workers: Sequence[tuple[str, dict]] = (),
              counters: Sequence[tuple[str, str, int]] = (), max_tasks: int = 0,
              max_age: float = 0) -> int:
        """Write one batch in one transaction, then apply the retention limits (see
        :meth:`flower.store.TaskStore.write`); raises if the database is unreachable."""
        with self.transaction() as connection, connection.cursor() as cursor:
            return write_batch(cursor, tasks, workers, counters, max_tasks, max_age)

    def load_tasks(self, limit: int) -> _Rows:
        """The newest ``limit`` stored tasks (all of them for 0), oldest first."""
        first = self._one('SELECT seq FROM all_tasks ORDER BY seq DESC LIMIT 1 OFFSET %s',
                          (limit - 1,)) if limit else None
        return _Rows(self._all([], f'SELECT {_COLUMNS} FROM all_tasks WHERE seq >= %s ORDER BY seq',
                               (first[0] if first else -1,)))

    def load_workers(self) -> dict[str, dict[str, Any]]:
        return {name: json.loads(data)
                for name, data in self._all([], 'SELECT hostname, data FROM workers')}

    def load_counters(self) -> list[tuple[str, str, int]]:
        return self._all([], 'SELECT hostname, event_type, count FROM counters')

    def forget_workers(self, hostnames: Collection[str]) -> None:
        """Delete the workers ``hostnames`` and their counters (purged workers)."""
        names = list(hostnames)
        with self.transaction() as connection:
            connection.execute('DELETE FROM workers WHERE hostname = ANY(%s)', (names,))
            connection.execute('DELETE FROM counters WHERE hostname = ANY(%s)', (names,))

    def next_seq(self) -> int:
        row = self._one('SELECT max(seq) FROM all_tasks')
        return 0 if row is None or row[0] is None else row[0] + 1

    def get_task(self, uuid: str) -> tuple | None:
        return self._one(f'SELECT {_COLUMNS} FROM all_tasks WHERE uuid = %s', (uuid,))

    def count_tasks(self) -> int:
        row = self._one(TASK_COUNT_QUERY)
        return row[0] if row else 0

    def load_setting(self, key: str) -> str | None:
        row = self._one('SELECT value FROM meta WHERE key = %s', (f'setting:{key}',))
        return row[0] if row else None

    def save_setting(self, key: str, value: str) -> None:
        with self.transaction() as connection:
            connection.execute('INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) '
                               'DO UPDATE SET value = excluded.value', (f'setting:{key}', value))

    # -- following the changes (replicas) ----------------------------------------------

    def changes_since(self, version: int, limit: int) -> list[tuple[int, tuple]]:
        """``(version, row)`` of the tasks written after ``version``, oldest change first,
        at most ``limit``; rows in :data:`~flower.store.TASK_COLUMNS` order. Raises if
        the database is unreachable."""
        with self.transaction() as connection:
            rows = connection.execute(
                f'SELECT version, {_COLUMNS} FROM all_tasks WHERE version > %s ORDER BY version '
                'LIMIT %s', (version, limit)).fetchall()
        return [(row[0], row[1:]) for row in rows]

    def latest_version(self) -> int:
        """The newest ``version`` of a stored task (0 for none)."""
        with self.transaction() as connection:
            row = connection.execute('SELECT max(version) FROM all_tasks').fetchone()
        return row[0] or 0

    # -- the audit trail (flower.audit_store) -----------------------------------------------

    def audit_insert(self, records: list[dict[str, Any]]) -> None:
        with self.transaction() as connection, connection.cursor() as cursor:
            cursor.executemany('INSERT INTO audit (action, "user", record) VALUES (%s, %s, %s)',
                               [(record['action'], record['user'], json.dumps(record))
                                for record in records])

    def audit_select(self, where: str, values: list[Any], limit: int,
                     offset: int) -> tuple[int, list[str]]:
        """``(count, records as JSON)`` of the audit rows matching ``where``, newest first."""
        with self.transaction() as connection:
            total = connection.execute(f'SELECT count(*) FROM audit {where}', values).fetchone()[0]
            rows = connection.execute(f'SELECT record FROM audit {where} ORDER BY id DESC '
                                      'LIMIT %s OFFSET %s', [*values, limit, offset]).fetchall()
        return total, [record for (record,) in rows]
