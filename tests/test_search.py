"""The task search syntax of :mod:`flower.utils.search`."""
import types

import pytest

from flower.utils.search import parse_search_terms, satisfies_search_terms


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
    ('args:"unbalanced quote', terms(args=['unbalanced quote'])),
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
