"""The ``--persistent`` history in either store, for tests that hold for both.

* ``history_db`` -> a :class:`StoredHistory`, parametrized: an SQLite file in
                    the test's temporary directory, then a fresh PostgreSQL
                    database (tests/support/postgres.py)
"""
import sqlite3

import psycopg
import pytest


class StoredHistory:
    """Where a test's history lives (``db``, what ``--db`` is given) and its rows, read
    through a connection of the test's own."""

    def __init__(self, kind: str, db: str) -> None:
        self.kind = kind
        self.db = db

    def __repr__(self):
        return f'<StoredHistory {self.kind} {self.db}>'

    def query(self, sql: str, values: tuple = ()) -> list[tuple]:
        """The rows of ``sql`` (``?`` placeholders for both stores)."""
        if self.kind == 'sqlite':
            connection = sqlite3.connect(self.db)
            try:
                return connection.execute(sql, values).fetchall()
            finally:
                connection.close()
        with psycopg.connect(self.db, autocommit=True) as connection:
            return connection.execute(sql.replace('?', '%s'), values).fetchall()

    def stored_uuids(self) -> set[str]:
        # PostgreSQL keeps unfinished tasks apart (flower.store_postgres_schema).
        table = 'tasks' if self.kind == 'sqlite' else 'all_tasks'
        return {uuid for (uuid,) in self.query(f'SELECT uuid FROM {table}')}


@pytest.fixture(params=['sqlite', 'postgresql'])
def history_db(request, tmp_path):
    """A history location in each store in turn (PostgreSQL started only when asked)."""
    if request.param == 'sqlite':
        return StoredHistory('sqlite', str(tmp_path / 'history.db'))
    return StoredHistory('postgresql', request.getfixturevalue('postgres_url'))
