"""The task search syntax of :mod:`flower.utils.search`."""
import types

import pytest

from flower.state import EventsState
from flower.utils.search import (
    And, MatchAll, Or, QuerySyntaxError, SearchTooLarge, TaskSearchEngine, Term, parse_query,
    parse_search_terms, satisfies_search_terms,
)
from flower.utils.search_hints import search_warnings


def terms(any=(), args=(), kwargs=None, result=(), state=()):
    return {'any': list(any), 'args': list(args), 'kwargs': dict(kwargs or {}),
            'result': list(result), 'state': list(state)}


@pytest.mark.parametrize('raw, expected', [
    ('', terms()),
    (None, terms()),
    ('foo', terms(any=['foo'])),
    ('foo bar', terms(any=['foo', 'bar'])),
    ('"hello world"', terms(any=['hello world'])),
    ('args:foo', terms(args=['foo'])),
    ('args:"hello world"', terms(args=['hello world'])),
    ('kwargs:foo=bar', terms(kwargs={'foo': 'bar'})),
    ('kwargs:foo="a b"', terms(kwargs={'foo': 'a b'})),
    ('kwargs:"foo=a b"', terms(kwargs={'foo': 'a b'})),
    ('kwargs:foo', terms(kwargs={'foo': None})),
    ('kwargs:foo=', terms(kwargs={'foo': ''})),
    ('result:42', terms(result=['42'])),
    ('state:FAILURE', terms(state=['FAILURE'])),
    ('state:failure state:success', terms(state=['FAILURE', 'SUCCESS'])),
    ('state:FAILURE,RETRY', terms(state=['FAILURE', 'RETRY'])),
    ('args:', terms()),
    ('colour:red', terms(any=['colour:red'])),
    ('  args:1   result:2  free  ', terms(any=['free'], args=['1'], result=['2'])),
])
def test_parse_search_terms(raw, expected):
    assert parse_search_terms(raw) == expected


def task(args='()', kwargs='{}', result=None, state='SUCCESS'):
    return types.SimpleNamespace(args=args, kwargs=kwargs, result=result, state=state)


ADD = task(args='(1, 2)', result='3')
GREETING = task(args="('hello world',)", kwargs="{'lang': 'en', 'times': 2}", result="'ok'")
FAILED = task(args="('boom',)", state='FAILURE')


@pytest.mark.parametrize('raw, matching', [
    ('hello', [GREETING]),
    ('HELLO', [GREETING]),
    ('lang', [GREETING]),
    ('3', [ADD]),
    ('args:1', [ADD]),
    ('args:"hello world"', [GREETING]),
    ('args:3', []),
    ('result:3', [ADD]),
    ('result:ok', [GREETING]),
    ('kwargs:lang=en', [GREETING]),
    ('kwargs:lang=EN', [GREETING]),
    ('kwargs:times=2', [GREETING]),
    ('kwargs:lang=e', []),
    ('kwargs:lang', [GREETING]),
    ('kwargs:colour', []),
    ('state:FAILURE', [FAILED]),
    ('state:FAILURE state:SUCCESS', [ADD, GREETING, FAILED]),
    ('state:SUCCESS args:boom', []),
    ('args:1 result:3', [ADD]),
    ('hello boom', []),
    ('', [ADD, GREETING, FAILED]),
])
def test_satisfies_search_terms(raw, matching):
    parsed = parse_search_terms(raw)

    assert [t for t in (ADD, GREETING, FAILED) if satisfies_search_terms(t, parsed)] == matching


def test_kwargs_shortened_by_the_worker_are_still_searched():
    shortened = task(kwargs="{'lang': 'en', 'text': 'a very long te...")

    assert satisfies_search_terms(shortened, parse_search_terms('kwargs:lang=en'))
    assert satisfies_search_terms(shortened, parse_search_terms('kwargs:lang'))
    assert not satisfies_search_terms(shortened, parse_search_terms('kwargs:lang=fr'))


def test_missing_args_and_result_never_match_text():
    empty = task(args=None, kwargs=None, result=None)

    assert not satisfies_search_terms(empty, parse_search_terms('None'))
    assert satisfies_search_terms(empty, parse_search_terms('state:SUCCESS'))


# -- the query tree (Flower 2.2) --------------------------------------------------------

@pytest.mark.parametrize('raw, tree', [
    ('', MatchAll()),
    (None, MatchAll()),
    ('   args:   ""  ', MatchAll()),
    ('foo', Term('any', 'foo')),
    ('"hello world"', Term('any', 'hello world')),
    ('foo bar', And((Term('any', 'foo'), Term('any', 'bar')))),
    ('args:"hello world" result:42', And((Term('args', 'hello world'), Term('result', '42')))),
    ('kwargs:lang=en', Term('kwargs', 'en', key='lang')),
    ('kwargs:lang', Term('kwargs', None, key='lang')),
    ('kwargs:note="a b"', Term('kwargs', 'a b', key='note')),
    ('state:failure', Term('state', 'FAILURE')),
    ('state:FAILURE,RETRY', Or((Term('state', 'FAILURE'), Term('state', 'RETRY')))),
    # Several state: terms accept any of them, wherever they are; the other terms all apply.
    ('foo state:FAILURE args:1 state:RETRY',
     And((Or((Term('state', 'FAILURE'), Term('state', 'RETRY'))), Term('any', 'foo'),
          Term('args', '1')))),
    ('colour:red', Term('any', 'colour:red')),
    # Neither OR nor parentheses are search syntax: they are words like any other.
    ('a OR b', And((Term('any', 'a'), Term('any', 'OR'), Term('any', 'b')))),
    ('(1,', Term('any', '(1,')),
])
def test_parse_query_builds_the_tree(raw, tree):
    assert parse_query(raw) == tree


@pytest.mark.parametrize('raw, position', [
    ('args:"unclosed', 5),
    ('"', 0),
    ('state:FAILURE kwargs:note="a b', 26),
    ('args:"closed" result:"open', 21),
])
def test_a_quote_never_closed_is_a_syntax_error_saying_where(raw, position):
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(raw)
    assert caught.value.position == position
    assert f'the quote at character {position + 1} is never closed' in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_the_flat_form_of_flower_2_0_comes_from_the_same_parser():
    with pytest.raises(QuerySyntaxError):
        parse_search_terms('args:"unbalanced quote')
    with pytest.raises(SearchTooLarge):
        parse_search_terms(' '.join(['t'] * 21))


def test_a_search_too_large_is_refused_before_it_is_parsed():
    with pytest.raises(SearchTooLarge, match='at most 1000'):
        parse_query('"' + 'x' * 1000)
    with pytest.raises(SearchTooLarge, match='at most 20'):
        parse_query(' '.join(['t'] * 21))
    assert isinstance(parse_query(' '.join(['t'] * 20)), And)


@pytest.mark.parametrize('raw', [
    '', 'hello', 'HELLO', 'lang', '3', 'args:1', 'args:"hello world"', 'result:ok',
    'kwargs:lang=en', 'kwargs:lang', 'kwargs:times=2', 'kwargs:colour', 'state:FAILURE',
    'state:FAILURE state:SUCCESS', 'state:SUCCESS args:boom', 'args:1 result:3', 'hello boom',
    'state:SUCCESS,FAILURE hello', 'args:( args:1 args:2',
])
def test_the_engine_and_the_flat_form_agree(raw):
    engine = TaskSearchEngine(raw)
    flat = parse_search_terms(raw)
    for candidate in (ADD, GREETING, FAILED):
        assert engine.matches(candidate) == satisfies_search_terms(candidate, flat), candidate


def test_the_engine_takes_a_tree_or_a_search():
    tree = Or((Term('result', '3'), Term('kwargs', 'en', key='lang')))
    engine = TaskSearchEngine(tree)
    assert engine.query is tree
    assert [t for t in (ADD, GREETING, FAILED) if engine.matches(t)] == [ADD, GREETING]
    assert TaskSearchEngine('state:FAILURE').query == Term('state', 'FAILURE')
    assert TaskSearchEngine(None).query == MatchAll()
    nested = And((Term('state', 'SUCCESS'), Or((Term('args', 'hello'), Term('result', '3')))))
    assert [t for t in (ADD, GREETING, FAILED) if TaskSearchEngine(nested).matches(t)] == \
        [ADD, GREETING]


def test_the_engine_searches_the_tasks_of_an_events_state():
    state = EventsState()
    for number, (name, args, outcome) in enumerate([
            ('tasks.add', '(1, 2)', ('task-succeeded', {'result': '3'})),
            ('tasks.echo', "('hello world',)", ('task-failed', {'exception': 'boom'})),
            ('tasks.add', '(40, 2)', ('task-succeeded', {'result': '42'}))]):
        uuid = f'task-{number}'
        state.event({'type': 'task-received', 'uuid': uuid, 'name': name, 'args': args,
                     'kwargs': '{}', 'hostname': 'w1', 'timestamp': 100.0 + number,
                     'clock': 2 * number, 'local_received': 100.0 + number})
        state.event({'type': outcome[0], 'uuid': uuid, 'hostname': 'w1', **outcome[1],
                     'timestamp': 101.0 + number, 'clock': 2 * number + 1,
                     'local_received': 101.0 + number})

    def found(raw):
        return sorted(uuid for uuid, _ in TaskSearchEngine(raw).search(state))

    assert found('') == ['task-0', 'task-1', 'task-2']
    assert found('state:FAILURE') == ['task-1']
    assert found('result:42') == ['task-2']
    assert found('state:SUCCESS 2') == ['task-0', 'task-2']
    assert found('hello') == ['task-1']


@pytest.mark.parametrize('raw, warnings', [
    ('', []),
    ('state:FAILURE add "x y" kwargs:a=1 http://example', []),
    ('state:FAILURE result:', ["'result:' has no value after the colon: ignored"]),
    ('args:"" state:', ["'args:\"\"' has no value after the colon: ignored",
                        "'state:' has no value after the colon: ignored"]),
    ('state:failure,DONE', ["'DONE' is not a task state: no task matches it"]),
    ('kwargs:=1', ["'kwargs:=1' names no keyword before '='"]),
    ('name:add', ["'name:' is not a search field (args, kwargs, result, state): "
                  "'name:add' is searched as text"]),
])
def test_search_warnings_name_what_is_ignored_or_read_otherwise(raw, warnings):
    assert search_warnings(raw) == warnings
