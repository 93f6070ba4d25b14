"""The audit trail's table in the ``--persistent`` history file.

Each function takes the :class:`~flower.store.TaskStore` and runs on the
history's writer thread (:meth:`flower.history.History.submit`), so reads
come after every write handed over before them and none waits on the IO loop.
A record is kept whole as JSON; the columns beside it are what listings filter on.
In PostgreSQL (:class:`~flower.store_postgres.PostgresTaskStore`) the table is part of
the schema and the store runs the statements.
"""
import json
from typing import Any

from flower.store import TaskStore

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, action TEXT NOT NULL, "
    "user TEXT NOT NULL, record TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_action ON audit (action, id)",
    "CREATE INDEX IF NOT EXISTS audit_user ON audit (user, id)",
)


def create_table(store: TaskStore) -> None:
    """Add the audit table to the history file if it has none yet."""
    if not isinstance(store, TaskStore):
        return
    with store.transaction() as connection:
        for statement in _SCHEMA:
            connection.execute(statement)


def insert(store: TaskStore, records: list[dict[str, Any]]) -> None:
    """Append ``records`` (oldest first) in one transaction."""
    if not isinstance(store, TaskStore):
        store.audit_insert(records)
        return
    with store.transaction() as connection:
        connection.executemany(
            'INSERT INTO audit (action, user, record) VALUES (?, ?, ?)',
            [(record['action'], record['user'], json.dumps(record)) for record in records])


def select(store: TaskStore, limit: int, offset: int = 0, action: str | None = None,
           user: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """``(how many match, the page of them)``, newest first, with the exact ``action``
    and ``user`` when given."""
    mark = '?' if isinstance(store, TaskStore) else '%s'
    clauses, values = [], []
    for column, value in (('action', action), ('"user"', user)):
        if value is not None:
            clauses.append(f'{column} = {mark}')
            values.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ''
    if not isinstance(store, TaskStore):
        total, records = store.audit_select(where, values, limit, offset)
        return total, [json.loads(record) for record in records]
    with store.transaction() as connection:
        total = connection.execute(f'SELECT count(*) FROM audit {where}', values).fetchone()[0]
        rows = connection.execute(f'SELECT record FROM audit {where} ORDER BY id DESC '
                                  'LIMIT ? OFFSET ?', [*values, limit, offset]).fetchall()
    return total, [json.loads(record) for (record,) in rows]
