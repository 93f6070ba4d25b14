"""A search finds exactly what a full scan finds (flower.utils.search_text).

Searches look for their text in blocks of lower-cased task text kept beside
the tasks in memory (:class:`flower.utils.search_text.SearchText`), rebuilt
when their tasks change. These tests feed random streams of tasks, whose
texts mix case, Unicode that lowers to more or other characters, the blocks'
separator and very long values, through a real :class:`Events` with an
SQLite history (so tasks leave memory for the history and come back), and
compare every search form, at several points of the stream, with a scan of
every task by the matcher itself.
"""
import concurrent.futures
import random
import sqlite3

import pytest

from flower.state import stored_task
from flower.store import TASK_COLUMNS
from flower.tasks import Tasks, TaskFilter
from flower.utils.search import TaskSearchEngine, parse_query
from flower.utils.search_text import BLOCK_SIZE, BlockText, SearchText, text_term
from tests.test_persistence import NOW, Worker, make_events, run, written

#: Words the tasks' texts are made of: case, Unicode that changes when lowered
#: (dotted capital I, Kelvin sign, sharp s), the separator, quotes and digits.
WORDS = ('order', 'Order-12', 'ORDER-7', 'straße', 'STRASSE', 'İstanbul', 'istanbul',
         '\u212aelvin', 'kelvin', 'a\x00b', "it's", '"q"', 'ok', 'OK-3', 'user', 'x1', '12', '7')
#: Searches of every form; some match many tasks, some one, some none.
SEARCHES = ('order', 'ORDER', 'order-1', 'der-', 'strasse', 'straße', 'ß', 'i̇', 'istanbul',
            'kelvin', 'k', '\x00', 'a\x00b', "'", '"q"', 'nothing-like-this', '12', '7', 'x1',
            'args:order', 'args:ok', 'result:ok', 'result:ORDER', 'kwargs:user=x1',
            'kwargs:user', 'kwargs:zone=7', 'order state:SUCCESS', 'order 12',
            'args:order result:ok', 'state:FAILURE', 'state:FAILURE,REVOKED', 'state:RECEIVED,FAILURE',
            'state:FAILURE kwargs:user', 'state:SUCCESS,FAILURE ok', '"order-12 ok"',
            'xxxxxxxx', 'xyz')


def random_text(rng):
    words = [rng.choice(WORDS) for _ in range(rng.randrange(4))]
    if rng.random() < 0.001:
        words.append('x' * 70_000 + 'xyz')  # past the length a search reads
    return words


def send_task(worker, rng, uuid, at):
    kwargs = {rng.choice(('user', 'zone', 'İd')): rng.choice(WORDS) for _ in range(rng.randrange(3))}
    worker.send('task-received', uuid=uuid, name=rng.choice(('tasks.a', 'tasks.b')),
                args=repr(tuple(random_text(rng))), kwargs=repr(kwargs), retries=0,
                timestamp=at)


def finish_task(worker, rng, uuid, at):
    if rng.random() < 0.2:
        worker.send('task-failed', uuid=uuid, exception="ValueError('x')",
                    traceback='Traceback', timestamp=at)
    else:
        result = rng.choice((None, repr(' '.join(random_text(rng))), '12'))
        worker.send('task-succeeded', uuid=uuid, result=result, runtime=0.1, timestamp=at)


def stored_rows(path, memory):
    with sqlite3.connect(path) as db:
        rows = db.execute(f'SELECT {", ".join(TASK_COLUMNS)} FROM tasks ORDER BY seq DESC')
        return [stored_task(row) for row in rows if row[0] not in memory]


def full_scan(events, search, stored):
    """Every task in listing order (memory newest first, then the history newest
    first), kept if the matcher says so."""
    engine = TaskSearchEngine(search)
    data = events.state.tasks.data
    in_memory = [data[uuid] for uuid in reversed(events.state.task_index.sequence)]
    return [task.uuid for task in in_memory + stored if engine.matches(task)]


async def searched(events, executor, search):
    tasks = Tasks(events.state, events.history.store)
    filtered, page = await tasks.page(TaskFilter(search=search), executor, count=True)
    uuids = [uuid for uuid, _ in page]
    assert filtered == len(uuids)
    _, first = await tasks.page(TaskFilter(search=search), executor, limit=10)
    assert [uuid for uuid, _ in first] == uuids[:10], search
    return uuids


async def compare_every_search(events, executor):
    stored = stored_rows(events.history.store.path, events.state.tasks.data)
    for search in SEARCHES:
        assert await searched(events, executor, search) == full_scan(events, search, stored), \
            search
    return len(SEARCHES)


def test_every_search_finds_what_a_full_scan_finds(tmp_path):
    rng = random.Random(5)
    path = tmp_path / 'history.db'

    async def scenario():
        events = make_events(path, max_tasks=3000)
        events.open_history()
        worker = Worker(events.state)
        executor = concurrent.futures.ThreadPoolExecutor(2)
        unfinished, checked = [], 0
        for number in range(20_000):
            uuid = f'task-{number:05d}'
            send_task(worker, rng, uuid, NOW + number)
            unfinished.append(uuid)
            if rng.random() < 0.8:
                finish_task(worker, rng, unfinished.pop(rng.randrange(len(unfinished))),
                            NOW + number)
            if number % 1000 == 999:
                await written(events)
            if number % 10_000 == 9999:
                # Late events: a few old tasks come back into memory.
                for late in rng.sample(range(number - 4000), 10):
                    finish_task(worker, rng, f'task-{late:05d}', NOW + number)
                await written(events)
                checked += await compare_every_search(events, executor)
                # Tasks in blocks the searches just built change: the next searches see it.
                data = events.state.tasks.data
                for uuid in [uuid for uuid in unfinished if uuid in data][:50]:
                    unfinished.remove(uuid)
                    finish_task(worker, rng, uuid, NOW + number)
                await written(events)
                checked += await compare_every_search(events, executor)
                assert len(events.state.task_index.search_text.built) >= 3000 // BLOCK_SIZE
        executor.shutdown()
        events.stop()
        return checked

    assert run(scenario) == 4 * len(SEARCHES)


def test_a_block_is_rebuilt_when_one_of_its_tasks_changes():
    text, sequence, tasks = SearchText(), {}, {}

    class Task:
        def __init__(self, args):
            self.args, self.kwargs, self.result = args, '{}', None

    for number in range(BLOCK_SIZE + 10):
        uuid = f't{number}'
        tasks[uuid], sequence[uuid] = Task(f'({number},)'), number
        text.added(uuid, number)
    term = parse_query('args:(5,)')
    found = list(text.snapshot(sequence, tasks.get).find(term))
    assert found == [[], ['t5']]
    tasks['t5'].args = '(6,)'
    assert list(text.snapshot(sequence, tasks.get).find(term)) == [[], ['t5']]  # not told
    text.touched(5)
    assert list(text.snapshot(sequence, tasks.get).find(term)) == [[], []]
    text.removed(BLOCK_SIZE + 3)
    assert isinstance(text.built[1], BlockText) and len(text.sizes) == 2
    for number in range(BLOCK_SIZE, BLOCK_SIZE + 10):
        if number != BLOCK_SIZE + 3:
            text.removed(number)
    assert 1 not in text.built and 1 not in text.members and list(text.generations) == [0]


@pytest.mark.parametrize('search, term', [
    ('order', 'order'), ('args:ab order-12', 'order-12'), ('kwargs:user=x1', None),
    ('state:SUCCESS', None), ('a\x00b', None), ('result:ok kwargs:x', 'ok'),
])
def test_the_longest_text_term_narrows_the_search(search, term):
    found = text_term(parse_query(search))
    assert (found and found.value) == term
