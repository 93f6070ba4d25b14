"""Searches of the SQLite history (flower.store_search): the text index keeps at
least every stored task the matcher keeps, so a search finds exactly what
reading every row finds; triggers keep the index in step with every write,
retention and a task that comes back; a history written before the index
existed gets one when it is opened."""
import logging
import sqlite3

import pytest

from flower.state import stored_task
from flower.store import TASK_COLUMNS, TaskStore
from flower.store_search import sqlite_search_condition
from flower.utils.search import TaskSearchEngine, parse_query
from tests.test_store_postgres_search import SEARCHES, TEXTS


def rows_of(texts, state='SUCCESS', first=0):
    rows = []
    for seq, (args, kwargs, result) in enumerate(texts, start=first):
        fields = {'uuid': f'task-{seq}', 'seq': seq, 'name': 'tasks.t', 'args': args,
                  'kwargs': kwargs, 'result': result,
                  'state': 'FAILURE' if seq % 3 == 0 else state}
        rows.append([fields.get(column) for column in TASK_COLUMNS])
    return rows


@pytest.fixture
def store(tmp_path):
    store = TaskStore(str(tmp_path / 'history.db'))
    store.write(tasks=rows_of(TEXTS))
    yield store
    store.close()


def found_by_index(store, search):
    """What a search finds through the index, and what reading every row finds."""
    query = parse_query(search)
    engine = TaskSearchEngine(query)
    every_row = [row[0] for row in store.older_tasks(100) if engine.matches(stored_task(row))]
    narrowed = [row[0] for row in store.older_tasks(100, query=query)]
    return narrowed, every_row, engine


def check_integrity(store):
    """The text index is sound, and holds exactly the finished tasks."""
    with store.transaction() as connection:
        connection.execute("INSERT INTO task_text (task_text) VALUES ('integrity-check')")
        indexed = {row[0] for row in connection.execute('SELECT id FROM task_text_docsize')}
        finished = {row[0] for row in connection.execute(
            "SELECT seq FROM tasks WHERE state IN ('SUCCESS', 'FAILURE', 'REVOKED')")}
    assert indexed == finished


@pytest.mark.parametrize('search', SEARCHES)
def test_a_search_finds_what_reading_every_row_finds(store, search):
    narrowed, every_row, engine = found_by_index(store, search)
    assert set(every_row) <= set(narrowed)
    assert [uuid for uuid in narrowed if engine.matches(stored_task(store.get_task(uuid)))] \
        == every_row


def test_a_text_search_reads_the_index_and_few_rows(store):
    where, values = store._where(100, query=parse_query('args:haystack'))
    plan = ' '.join(str(row) for row in store._reader.execute(
        f'EXPLAIN QUERY PLAN SELECT uuid FROM tasks WHERE {where}', values))
    assert 'task_text VIRTUAL TABLE INDEX' in plan, plan
    assert 'SCAN tasks USING INDEX tasks_unfinished' in plan, plan
    assert plan.count('SCAN tasks') == 1, plan  # the unfinished tasks only
    narrowed, every_row, _ = found_by_index(store, 'args:haystack')
    assert narrowed == every_row == ['task-8']
    # Too short for a trigram, or not ASCII: no SQL, every row is read.
    assert sqlite_search_condition(parse_query('ab')) is None
    assert sqlite_search_condition(parse_query('caf\u00e9')) is None
    assert sqlite_search_condition(parse_query('a_b')) is None  # 'a', 'b': no three in a row
    assert sqlite_search_condition(parse_query('order_12')) is not None


def test_changes_retention_and_a_task_back_in_memory_keep_the_index_in_step(store):
    store.write(tasks=rows_of([("('fresh text',)", '{}', None)], first=9))
    # The task finishes: its result reaches the index; an unchanged write does not.
    store.write(tasks=rows_of([("('fresh text',)", '{}', "'finished now'")], first=9))
    store.write(tasks=rows_of([("('fresh text',)", '{}', "'finished now'")], first=9))
    assert found_by_index(store, 'result:finished')[0] == ['task-9']
    # It comes back into memory and is written at a new place.
    row = rows_of([("('fresh text',)", '{}', "'finished now'")], first=9)[0]
    row[1] = 20
    store.write(tasks=[row])
    assert found_by_index(store, 'fresh')[0] == ['task-9']
    # Retention deletes the oldest rows and their text.
    store.write(max_tasks=1)
    assert found_by_index(store, 'needle')[0] == []
    assert found_by_index(store, 'fresh')[0] == ['task-9']
    check_integrity(store)


def test_a_history_written_before_the_index_gets_one(tmp_path, caplog):
    path = str(tmp_path / 'history.db')
    TaskStore(path).close()
    with sqlite3.connect(path) as db:
        db.executescript('DROP TABLE task_text; DROP INDEX tasks_unfinished; '
                         'DROP TRIGGER task_text_added; DROP TRIGGER task_text_removed; '
                         'DROP TRIGGER task_text_left; DROP TRIGGER task_text_entered;')
        db.executemany(f'INSERT INTO tasks ({", ".join(TASK_COLUMNS)}) '
                       f'VALUES ({", ".join("?" * len(TASK_COLUMNS))})', rows_of(TEXTS))
    with caplog.at_level(logging.INFO, logger='flower.store_search'):
        store = TaskStore(path)
    try:
        assert store.text_index
        assert f'Indexing the text of {len(TEXTS)} stored tasks' in caplog.text
        assert found_by_index(store, 'haystack')[0] == ['task-8']
        check_integrity(store)
        reader = store.own_reader()
        assert reader.text_index
        assert [row[0] for row in reader.older_tasks(100, query=parse_query('haystack'))] \
            == ['task-8']
        reader.close()
    finally:
        store.close()


def test_unfinished_tasks_are_found_and_enter_the_index_when_they_finish(store):
    texts = [("('running job',)", "{'job': 'long'}", None)]
    store.write(tasks=rows_of(texts, state='STARTED', first=10))  # seq 10: not a failure
    assert found_by_index(store, 'running')[0] == ['task-10']
    check_integrity(store)
    store.write(tasks=rows_of([("('running job',)", "{'job': 'long'}", "'done'")], first=10))
    assert found_by_index(store, 'result:done')[0] == ['task-10', 'task-2']  # '50% done'
    check_integrity(store)
    # Retried: unfinished again, out of the index, still found.
    store.write(tasks=rows_of([("('running job',)", "{'job': 'long'}", "'done'")],
                              state='RETRY', first=10))
    assert found_by_index(store, 'running')[0] == ['task-10']
    check_integrity(store)
    store.write(max_tasks=1)
    assert found_by_index(store, 'running')[0] == ['task-10']
    assert found_by_index(store, 'haystack')[0] == ['task-10']  # read: unfinished
    check_integrity(store)
