"""The tables of the task history in PostgreSQL, their schema version, and how
task rows are made to fit typed columns (see :mod:`flower.store_postgres`).

SQLite keeps any value in any column; PostgreSQL columns have types, so a
field a worker sent with an unexpected type is stored as nothing rather than
failing the whole batch. Text columns use the "C" collation: listings sort
text by code point, as they do in memory. Text is indexed by its first
:data:`KEY_LENGTH` characters (``left(column, N)``), since a B-tree entry has
a size limit and a worker may send a name or an id of any length.

Only the columns people sort and filter on are indexed (:data:`SORTED_COLUMNS`,
:data:`LOOKUP_COLUMNS`): every index costs each write. Sorting by another column
still works, as a full sort.

A task is written about three times (received, started, finished), and every
write of a row adds an entry to each index of its table. So a task is kept in
``live_tasks``, which has three indexes, until it finishes (its state is one of
:data:`FINISHED_STATES`); then it moves to ``tasks``, indexed for the listings,
with one insert. Reads go through the view ``all_tasks``, the two tables as
one: a task is in one of them only. A task already in ``tasks`` stays there
whatever its state becomes, so a database of schema version 2, whose ``tasks``
holds unfinished tasks too, is read and written as it is.
"""
from collections.abc import Sequence
from typing import Any

import logging

import psycopg

from flower.store import TASK_COLUMNS
from flower.store_postgres_search import TRIGRAM_INDEXES
from flower.utils import describe_error

logger = logging.getLogger('flower.store_postgres')

#: The schema this code reads and writes; a database with a newer one is refused.
#: Version 2 keeps the number of stored tasks in ``meta`` (:data:`TASK_COUNT`), which
#: a Flower of version 1 would not update; version 3 keeps unfinished tasks in
#: ``live_tasks``, which a Flower of version 2 would not read.
SCHEMA_VERSION = 3
#: Key of PostgreSQL's advisory lock held while a schema is created or migrated, so
#: that replicas starting together do it once.
SCHEMA_LOCK = 0x466C6F776572  # "Flower"
#: Characters of a text value an index keeps.
KEY_LENGTH = 200
#: Longest task id stored: it is the primary key, which has no prefix form.
MAX_UUID_LENGTH = 1000

FLOAT_COLUMNS = frozenset({'sent', 'received', 'started', 'succeeded', 'failed', 'retried',
                           'revoked', 'rejected', 'timestamp', 'runtime'})
INTEGER_COLUMNS = frozenset({'seq', 'retries', 'clock'})
TEXT_COLUMNS = frozenset(TASK_COLUMNS) - FLOAT_COLUMNS - INTEGER_COLUMNS
#: Sort columns with an index: the tasks page's default columns and the other times
#: and counts people sort by. Big text columns (args, result, traceback, ...) are left
#: out; searches reach them through trigram indexes instead.
SORTED_COLUMNS = ('name', 'state', 'worker', 'sent', 'received', 'started', 'succeeded',
                  'failed', 'timestamp', 'runtime', 'retries')
#: Sort columns with few distinct values: a second index, newest first within a value,
#: lets both directions of a sorted listing read rows in order instead of sorting all
#: the rows of the first value.
FEW_VALUES_COLUMNS = ('name', 'state', 'worker', 'retries')
#: Columns looked up by value: filters and the workflow's links.
LOOKUP_COLUMNS = ('name', 'state', 'worker', 'parent_id', 'root_id')
#: The states of a finished task (Celery's ready states): a task in one of them is
#: kept in ``tasks``, one in another in ``live_tasks``.
FINISHED_STATES = ('SUCCESS', 'FAILURE', 'REVOKED')
#: The ``meta`` key of the number of stored tasks, changed with every write, so that
#: counting them does not read them all.
TASK_COUNT = 'task_count'


class SchemaTooNew(Exception):
    """The database holds a history written by a newer Flower than this one."""


def key(column: str) -> str:
    """The indexed expression of ``column``: itself, or the start of a text."""
    return f'left({column}, {KEY_LENGTH})' if column in TEXT_COLUMNS else column


def _column_type(column: str) -> str:
    if column in FLOAT_COLUMNS:
        return 'double precision'
    if column in INTEGER_COLUMNS:
        return 'bigint'
    return 'text COLLATE "C"'


def _tables() -> list[str]:
    columns = ', '.join(f'{column} {_column_type(column)}' for column in TASK_COLUMNS[2:])
    table = (f"(uuid text COLLATE \"C\" PRIMARY KEY, seq bigint NOT NULL, {columns}, "
             f"version bigint NOT NULL DEFAULT nextval('task_versions'))")
    every_column = ', '.join(TASK_COLUMNS + ('version',))
    statements = [
        'CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)',
        'CREATE SEQUENCE IF NOT EXISTS task_versions',
        f'CREATE TABLE IF NOT EXISTS tasks {table}',
        'CREATE INDEX IF NOT EXISTS tasks_seq ON tasks (seq)',
        'CREATE INDEX IF NOT EXISTS tasks_version ON tasks (version)',
        # Version 3: the unfinished tasks, and the view of all of them.
        f'CREATE TABLE IF NOT EXISTS live_tasks {table}',
        'CREATE INDEX IF NOT EXISTS live_tasks_seq ON live_tasks (seq)',
        'CREATE INDEX IF NOT EXISTS live_tasks_version ON live_tasks (version)',
        f'CREATE OR REPLACE VIEW all_tasks AS SELECT {every_column} FROM tasks '
        f'UNION ALL SELECT {every_column} FROM live_tasks',
        'CREATE TABLE IF NOT EXISTS workers (hostname text PRIMARY KEY, data text NOT NULL)',
        'CREATE TABLE IF NOT EXISTS counters (hostname text NOT NULL, event_type text NOT NULL, '
        'count bigint NOT NULL, PRIMARY KEY (hostname, event_type))',
        'CREATE TABLE IF NOT EXISTS audit (id bigserial PRIMARY KEY, action text NOT NULL, '
        '"user" text NOT NULL, record text NOT NULL)',
        'CREATE INDEX IF NOT EXISTS audit_action ON audit (action, id)',
        'CREATE INDEX IF NOT EXISTS audit_user ON audit ("user", id)',
    ]
    # ``seq`` second: a listing's first page, sorted or filtered (exact values of name,
    # state, worker), reads only the rows it shows.
    indexed = dict.fromkeys(SORTED_COLUMNS + LOOKUP_COLUMNS)
    for column in indexed:
        statements.append(f'CREATE INDEX IF NOT EXISTS tasks_by_{column} '
                          f'ON tasks ({key(column)}, seq)')
    for column in FEW_VALUES_COLUMNS:
        statements.append(f'CREATE INDEX IF NOT EXISTS tasks_by_{column}_newest_first '
                          f'ON tasks ({key(column)}, seq DESC)')
    # Version 1 indexed every column.
    statements += [f'DROP INDEX IF EXISTS tasks_by_{column}' for column in TASK_COLUMNS
                   if column not in indexed]
    statements.append(f"INSERT INTO meta VALUES ('{TASK_COUNT}', (SELECT count(*) FROM tasks)::text) "
                      'ON CONFLICT (key) DO NOTHING')
    return statements


def schema_version(connection: psycopg.Connection) -> int | None:
    """The schema version the database holds (None for a database without a history)."""
    if not connection.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]:
        return None
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def check_schema_version(found: int | None) -> None:
    """:class:`SchemaTooNew` for a version newer than :data:`SCHEMA_VERSION`."""
    if found is not None and found > SCHEMA_VERSION:
        raise SchemaTooNew(f"its task history has schema version {found}, newer than the "
                           f"version {SCHEMA_VERSION} this Flower knows: upgrade Flower")


def create_schema(connection: psycopg.Connection) -> None:
    """Create the tables, or check a database's schema, in one transaction under the
    advisory lock; :class:`SchemaTooNew` if it is newer than :data:`SCHEMA_VERSION`."""
    with connection.transaction():
        connection.execute('SELECT pg_advisory_xact_lock(%s)', (SCHEMA_LOCK,))
        check_schema_version(schema_version(connection))
        for statement in _tables():
            connection.execute(statement)
        _create_trigram_indexes(connection)
        connection.execute("INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (key) "
                           "DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))


def _create_trigram_indexes(connection: psycopg.Connection) -> None:
    """Indexes for searches, if the pg_trgm extension is there or may be created (it is
    trusted: a user who may create tables may create it). Searches work without them,
    reading more rows."""
    try:
        with connection.transaction():
            connection.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
            for statement in TRIGRAM_INDEXES:
                connection.execute(statement)
    except psycopg.Error as exc:
        logger.warning("Task searches in PostgreSQL go without trigram indexes: %s",
                       describe_error(exc))


def _number(value: Any, kind: type) -> Any:
    if value is None or isinstance(value, bool):
        return None if value is None else kind(value)
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if kind is int and not -2 ** 63 <= number < 2 ** 63:
        return None
    return number


def _text(value: Any) -> Any:
    return None if value is None else str(value).replace('\x00', '\N{REPLACEMENT CHARACTER}')


def fitted_row(row: Sequence[Any]) -> list[Any] | None:
    """A :data:`TASK_COLUMNS` row made to fit the typed columns (text without NUL
    characters, numbers or nothing in numeric columns); ``None`` for a task whose id
    is too long to be a key."""
    if len(row[0]) > MAX_UUID_LENGTH:
        return None
    fitted = []
    for column, value in zip(TASK_COLUMNS, row):
        if column in FLOAT_COLUMNS:
            fitted.append(_number(value, float))
        elif column in INTEGER_COLUMNS:
            fitted.append(_number(value, int))
        else:
            fitted.append(_text(value))
    return fitted
