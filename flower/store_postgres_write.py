"""How a batch of the history is written to PostgreSQL (see
:mod:`flower.store_postgres`): its tasks, workers and counters, then the
retention limits, all in the caller's transaction.
"""
import json
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from flower.store import TASK_COLUMNS
from flower.store_postgres_schema import FINISHED_STATES, TASK_COUNT, fitted_row

_COLUMNS = ', '.join(TASK_COLUMNS)
# A batch is copied into a temporary table of the connection, then upserted from it
# in one statement: faster than a statement per row, even pipelined.
_BATCH_TABLE = ('CREATE TEMPORARY TABLE IF NOT EXISTS task_batch ON COMMIT DELETE ROWS '
                f'AS SELECT {_COLUMNS} FROM tasks WITH NO DATA')
_COPY_BATCH = f'COPY task_batch ({_COLUMNS}) FROM STDIN'
_FINISHED = "b.state IN (" + ', '.join(f"'{state}'" for state in FINISHED_STATES) + ')'
_IN_TASKS = 'EXISTS (SELECT FROM tasks WHERE tasks.uuid = b.uuid)'


def _upsert(table: str, into: str, source: str, where: str) -> str:
    """Upsert the ``source`` rows into ``table``, ``into`` its columns. As in SQLite: a
    task seen again after it left memory keeps its stored fields and takes its new place
    (seq); every upsert takes a new version. Returns whether each row was inserted (a
    row inserted has no xmax; one updated has)."""
    return (f"INSERT INTO {table} ({_COLUMNS}) SELECT {into} FROM {source} WHERE {where} "
            "ON CONFLICT (uuid) DO UPDATE SET seq = excluded.seq, "
            + ', '.join(f'{column} = coalesce(excluded.{column}, {table}.{column})'
                        for column in TASK_COLUMNS[2:])
            + ", version = nextval('task_versions') RETURNING xmax = 0 AS inserted")


# Tasks that finish now, or are in ``tasks`` already, go there (or stay): those that
# finish now, with the fields their row in ``live_tasks`` has and the batch has not,
# that row deleted. Answers how many tasks it added to the store (a task moved from
# ``live_tasks`` was counted when it was first written).
_MERGED = ', '.join(['b.uuid', 'b.seq'] + [f'coalesce(b.{column}, moved.{column})'
                                           for column in TASK_COLUMNS[2:]])
_UPSERT_FINISHED = (
    "WITH moved AS (DELETE FROM live_tasks USING task_batch b "
    f"WHERE live_tasks.uuid = b.uuid AND {_FINISHED} RETURNING live_tasks.*), "
    f"upserted AS ({_upsert('tasks', _MERGED, 'task_batch b LEFT JOIN moved USING (uuid)', f'{_FINISHED} OR {_IN_TASKS}')}) "
    "SELECT count(*) FILTER (WHERE inserted) - (SELECT count(*) FROM moved) FROM upserted")
# The others (after the statement above): unfinished tasks not in ``tasks``.
_UPSERT_LIVE = (
    f"WITH upserted AS ({_upsert('live_tasks', _COLUMNS, 'task_batch b', f'NOT coalesce({_FINISHED}, false) AND NOT {_IN_TASKS}')}) "
    "SELECT count(*) FILTER (WHERE inserted) FROM upserted")
# The oldest tasks of both tables, in one snapshot.
_REMOVE_OLDEST = (
    'WITH oldest AS MATERIALIZED (SELECT uuid FROM all_tasks ORDER BY seq LIMIT %s), '
    'finished AS (DELETE FROM tasks WHERE uuid IN (SELECT uuid FROM oldest) RETURNING 1), '
    'live AS (DELETE FROM live_tasks WHERE uuid IN (SELECT uuid FROM oldest) RETURNING 1) '
    'SELECT (SELECT count(*) FROM finished) + (SELECT count(*) FROM live)')
#: The number of stored tasks, as ``meta`` keeps it.
TASK_COUNT_QUERY = f"SELECT value::bigint FROM meta WHERE key = '{TASK_COUNT}'"


def write_batch(cursor: psycopg.Cursor, tasks: Sequence[Sequence[Any]],
                workers: Sequence[tuple[str, dict]], counters: Sequence[tuple[str, str, int]],
                max_tasks: int, max_age: float) -> int:
    """Write one batch (see :meth:`flower.store.TaskStore.write`) on ``cursor``, in its
    transaction; return the number of tasks retention removed."""
    # One row per task: an upsert cannot change a row twice (the last one wins).
    rows = list({fitted[0]: fitted for fitted in map(fitted_row, tasks)
                 if fitted is not None}.values())
    if not (rows or max_tasks or max_age):
        total = None
    else:
        # The count's row is locked first: batches of several writers then go in turn, so
        # that two of them cannot put one task in both tables.
        total = cursor.execute(f'{TASK_COUNT_QUERY} FOR UPDATE').fetchone()[0]
    added = 0
    if rows:
        cursor.execute(_BATCH_TABLE)
        with cursor.copy(_COPY_BATCH) as copy:
            for row in rows:
                copy.write_row(row)
        # Planned each time (not prepared, whose plan would be kept): the plan fit for a
        # batch of one row differs from the one for a batch of 20,000.
        added = (cursor.execute(_UPSERT_FINISHED, prepare=False).fetchone()[0]
                 + cursor.execute(_UPSERT_LIVE, prepare=False).fetchone()[0])
    if workers:
        cursor.executemany(
            'INSERT INTO workers VALUES (%s, %s) '
            'ON CONFLICT (hostname) DO UPDATE SET data = excluded.data',
            [(name, json.dumps(fields)) for name, fields in workers])
    if counters:
        cursor.executemany(
            'INSERT INTO counters VALUES (%s, %s, %s) '
            'ON CONFLICT (hostname, event_type) DO UPDATE SET count = excluded.count',
            list(counters))
    if total is None:
        return 0
    return apply_retention(cursor, total + added, added, max_tasks, max_age)


def apply_retention(cursor: psycopg.Cursor, total: int, added: int, max_tasks: int,
                    max_age: float) -> int:
    """Remove the tasks past the limits and keep the stored count right (``total``
    tasks, ``added`` of them by this batch). Removing the oldest tasks over
    ``max_tasks`` reads only those, whatever the store holds."""
    removed = 0
    if max_age:
        for table in ('tasks', 'live_tasks'):
            cursor.execute(f'DELETE FROM {table} WHERE timestamp < %s', (time.time() - max_age,))
            removed += cursor.rowcount
    if max_tasks and total - removed > max_tasks:
        removed += cursor.execute(_REMOVE_OLDEST, (total - removed - max_tasks,),
                                  prepare=False).fetchone()[0]
    if added or removed:
        cursor.execute('UPDATE meta SET value = (value::bigint + %s)::text WHERE key = %s',
                       (added - removed, TASK_COUNT))
    return removed
