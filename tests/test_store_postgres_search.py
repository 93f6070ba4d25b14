"""Searches of the PostgreSQL history: the SQL prefilter of a search's text terms
keeps at least every stored task the matcher keeps, so a search finds exactly
what reading every row finds, and uses the trigram indexes to do it."""
import pytest

from flower.state import stored_task
from flower.store import TASK_COLUMNS
from flower.store_postgres import PostgresTaskStore
from flower.store_postgres_search import search_condition
from flower.store_search import like_pattern
from flower.utils.search import TaskSearchEngine, parse_query

#: args, kwargs, result of the stored tasks: case, wildcards of LIKE, the two
#: non-ASCII characters that lower-case to ASCII letters, other scripts.
TEXTS = [
    ("('Hello World',)", "{'user': 'Alice'}", "'ok'"),
    ("('hello_world',)", "{'user': 'bob', 'n': 1}", None),
    ("('100%',)", "{}", "'50% done'"),
    ("('back\\\\slash',)", "{'path': 'C:\\\\x'}", "'a_b'"),
    ("('\u212aelvin',)", "{}", "'\u0130stanbul'"),  # KELVIN SIGN, CAPITAL I WITH DOT
    ("('kelvin',)", "{'city': 'istanbul'}", "'TAKI\u0130'"),
    ("('caf\u00e9',)", "{'name': 'CAF\u00c9'}", "'\u00c9t\u00e9'"),
    (None, None, None),
    ("('needle in a haystack',)", "{'q': 'NEEDLE'}", "'found needle'"),
]
SEARCHES = [
    'hello', 'HELLO world', 'hello_world', '"hello world"', '100%', '%', '_', '50%', 'a_b',
    'back\\\\slash', 'kelvin', 'KELVIN', 'elvin', 'istanbul', 'takii', 'taki', 'ki',
    'caf\u00e9', 'CAF\u00c9', '\u00e9t\u00e9', 'needle', 'args:needle', 'result:needle',
    'kwargs:user=alice', 'kwargs:city', 'state:SUCCESS needle', 'state:FAILURE',
    'args:hello result:ok', 'alice', 'nothing-at-all', 'x', 'st',
]


@pytest.fixture
def store(postgres_url):
    store = PostgresTaskStore(postgres_url)
    rows = []
    for seq, (args, kwargs, result) in enumerate(TEXTS):
        fields = {'uuid': f'task-{seq}', 'seq': seq, 'name': 'tasks.t', 'args': args,
                  'kwargs': kwargs, 'result': result,
                  'state': 'FAILURE' if seq % 3 == 0 else 'SUCCESS'}
        rows.append([fields.get(column) for column in TASK_COLUMNS])
    store.write(tasks=rows)
    yield store
    store.close()


@pytest.mark.parametrize('search', SEARCHES)
def test_a_search_finds_what_reading_every_row_finds(store, search):
    query = parse_query(search)
    engine = TaskSearchEngine(query)
    every_row = [row[0] for row in store.older_tasks(100) if engine.matches(stored_task(row))]
    prefiltered = [row[0] for row in store.older_tasks(100, query=query)]
    assert set(every_row) <= set(prefiltered)
    assert [uuid for uuid in prefiltered if engine.matches(stored_task(store.get_task(uuid)))] \
        == every_row


def test_only_ascii_text_terms_become_sql():
    assert like_pattern('needle') == '%needle%'
    assert like_pattern('50%_a\\') == '%50\\%\\_a\\\\%'
    assert like_pattern('kiwi') == '%_iw_%'  # k: the Kelvin sign; a final i: a dotted capital I
    assert like_pattern('caf\u00e9') is None and like_pattern('') is None
    assert search_condition(parse_query('kwargs:user=alice')) is None
    assert search_condition(parse_query('caf\u00e9')) is None
    assert search_condition(parse_query('state:SUCCESS,FAILURE')) == (
        '(state = %s) OR (state = %s)', ['SUCCESS', 'FAILURE'])
    assert search_condition(parse_query('caf\u00e9 needle')) == (
        '(args ILIKE %s OR kwargs ILIKE %s OR result ILIKE %s)', ['%needle%'] * 3)


def test_a_text_search_reads_the_trigram_indexes(store):
    where, values = search_condition(parse_query('args:haystack'))
    with store.transaction() as connection:
        connection.execute('SET LOCAL enable_seqscan = off')
        plan = '\n'.join(row[0] for row in connection.execute(
            f'EXPLAIN SELECT uuid FROM tasks WHERE {where}', values))
    assert 'tasks_args_trigrams' in plan, plan
