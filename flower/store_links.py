"""The history's queries along the links between tasks (``parent_id``, ``root_id``),
which the workflow view follows for tasks no longer in memory.

Kept apart from :mod:`flower.store`, which :class:`LinkQueries` is mixed into.
"""
from collections.abc import Collection

#: Indexes the link queries need; created with the history's tables.
LINK_INDEXES = """
CREATE INDEX IF NOT EXISTS tasks_parent ON tasks (parent_id);
CREATE INDEX IF NOT EXISTS tasks_root ON tasks (root_id);
"""

#: Most ids put in one ``IN (...)`` list (SQLite allows at least 999 parameters).
_CHUNK = 400


class LinkQueries:
    """Rows of the tasks linked to given ones, on the connection ``self._reader``."""

    _reader = None

    def linked_tasks(self, uuids: Collection[str], columns: str, limit: int) -> list[tuple]:
        """At most ``limit`` rows (``columns``, a column list) of the stored tasks that
        are one of ``uuids``, or whose parent or root is one of them."""
        ids = list(uuids)
        rows: dict[str, tuple] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ', '.join('?' * len(chunk))
            for row in self._reader.execute(
                    f"SELECT {columns} FROM tasks WHERE uuid IN ({marks}) "
                    f"OR parent_id IN ({marks}) OR root_id IN ({marks}) LIMIT ?",
                    chunk * 3 + [limit - len(rows)]):
                rows[row[0]] = row
            if len(rows) >= limit:
                break
        return list(rows.values())
