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
from flower.store_postgres_schema import TASK_COUNT, fitted_row

_COLUMNS = ', '.join(TASK_COLUMNS)
# A batch is copied into a temporary table of the connection, then upserted from it
# in one statement: faster than a statement per row, even pipelined.
_BATCH_TABLE = ('CREATE TEMPORARY TABLE IF NOT EXISTS task_batch ON COMMIT DELETE ROWS '
                f'AS SELECT {_COLUMNS} FROM tasks WITH NO DATA')
_COPY_BATCH = f'COPY task_batch ({_COLUMNS}) FROM STDIN'
# As in SQLite: a task seen again after it left memory keeps its stored fields and
# takes its new place (seq); every upsert takes a new version. It answers how many
# rows it inserted (a row inserted has no xmax; one updated has).
_UPSERT = (
    "WITH upserted AS ("
    f"INSERT INTO tasks ({_COLUMNS}) SELECT {_COLUMNS} FROM task_batch "
    "ON CONFLICT (uuid) DO UPDATE SET seq = excluded.seq, "
    + ', '.join(f'{column} = coalesce(excluded.{column}, tasks.{column})'
                for column in TASK_COLUMNS[2:])
    + ", version = nextval('task_versions') RETURNING xmax = 0 AS inserted) "
    "SELECT count(*) FILTER (WHERE inserted) FROM upserted"
)
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
    added = 0
    if rows:
        cursor.execute(_BATCH_TABLE)
        with cursor.copy(_COPY_BATCH) as copy:
            for row in rows:
                copy.write_row(row)
        added = cursor.execute(_UPSERT).fetchone()[0]
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
    return apply_retention(cursor, added, max_tasks, max_age)


def apply_retention(cursor: psycopg.Cursor, added: int, max_tasks: int, max_age: float) -> int:
    """Remove the tasks past the limits and keep the stored count right. The count's
    row is locked first: batches of several writers then count and delete in turn.
    Removing the oldest tasks over ``max_tasks`` reads only those, whatever the
    store holds."""
    if not (added or max_tasks or max_age):
        return 0
    total = cursor.execute(f'{TASK_COUNT_QUERY} FOR UPDATE').fetchone()[0] + added
    removed = 0
    if max_age:
        cursor.execute('DELETE FROM tasks WHERE timestamp < %s', (time.time() - max_age,))
        removed += cursor.rowcount
    if max_tasks and total - removed > max_tasks:
        cursor.execute('DELETE FROM tasks WHERE uuid IN '
                       '(SELECT uuid FROM tasks ORDER BY seq LIMIT %s)',
                       (total - removed - max_tasks,))
        removed += cursor.rowcount
    if added or removed:
        cursor.execute('UPDATE meta SET value = (value::bigint + %s)::text WHERE key = %s',
                       (added - removed, TASK_COUNT))
    return removed
