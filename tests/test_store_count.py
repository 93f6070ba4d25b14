"""The SQLite history keeps its number of tasks (flower.store): triggers count every
row added and removed, so the tasks page's total does not count a million rows;
a history written before the count existed is counted once when opened."""
import sqlite3

from flower.store import TaskStore
from tests.test_store_postgres_search import TEXTS
from tests.test_store_search import rows_of


def counted(store):
    real = store._reader.execute('SELECT count(*) FROM tasks').fetchone()[0]
    return store.count_tasks(), real


def test_the_kept_count_follows_writes_rewrites_and_retention(tmp_path):
    store = TaskStore(str(tmp_path / 'history.db'))
    try:
        assert counted(store) == (0, 0)
        store.write(tasks=rows_of(TEXTS))
        assert counted(store) == (9, 9)
        store.write(tasks=rows_of(TEXTS))  # the same tasks again: updates, not new rows
        row = rows_of(TEXTS)[2]
        row[1] = 30  # a task back in memory, written at a new place
        store.write(tasks=[row])
        assert counted(store) == (9, 9)
        assert store.count_older(5) == 4 and store.count_older(100) == 9
        assert store.count_older(5, state='FAILURE') == 2
        store.write(max_tasks=4)
        assert counted(store) == (4, 4)
        assert store.count_older(10) == 3
    finally:
        store.close()


def test_a_history_written_before_the_count_is_counted_once(tmp_path):
    path = str(tmp_path / 'history.db')
    TaskStore(path).close()
    with sqlite3.connect(path) as db:
        db.executescript("DROP TRIGGER tasks_counted_in; DROP TRIGGER tasks_counted_out; "
                         "DELETE FROM meta WHERE key = 'task_count';")
        for row in rows_of(TEXTS):
            db.execute(f"INSERT INTO tasks VALUES ({', '.join('?' * len(row))})", row)
    store = TaskStore(path)
    try:
        assert counted(store) == (9, 9)
        store.write(tasks=rows_of([("('new',)", '{}', None)], first=20))
        assert counted(store) == (10, 10)
    finally:
        store.close()
