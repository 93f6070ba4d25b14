"""Which recorded ``argsrepr``/``kwargsrepr`` texts a retry trusts: pure logic over the
text Celery itself writes (:func:`celery.utils.saferepr.saferepr` with the limits a
client uses), and which states a task may be retried from."""
import datetime
from decimal import Decimal

import pytest
from celery import Celery
from celery.events.state import Task
from celery.utils.saferepr import saferepr

from flower.retry import RetryRefused, check_state, parse_recorded


def recorded(value):
    """The text a client's ``task-sent`` event carries for ``value`` (Celery's defaults)."""
    return saferepr(value, 1024, maxlevels=3)


@pytest.mark.parametrize('args, expected', [
    ((1, 2), [1, 2]),
    (('one',), ['one']),
    ([1.5, None, True, b'raw'], [1.5, None, True, b'raw']),
    (("it's", {'nested': [1, 2]}, {3, 4}), ["it's", {'nested': [1, 2]}, {3, 4}]),
    ((), []),
])
def test_args_celery_wrote_in_full_parse_back(args, expected):
    assert parse_recorded(recorded(args), 'args', list) == expected


def test_kwargs_parse_back_in_order():
    kwargs = {'b': 'two', 'a': [1, 2], 'c': None}

    assert list(parse_recorded(recorded(kwargs), 'kwargs', dict).items()) == list(kwargs.items())


@pytest.mark.parametrize('value, reason', [
    (('x' * 2000,), 'truncated'),                   # a string cut at argsrepr_maxsize
    (tuple(range(600)), 'truncated'),               # a number cut, the tuple left open
    ((['a'] * 600,), 'truncated'),                  # a list cut with ", ..."
    (([[[['deep']]]],), 'truncated'),               # nested past task_repr_maxlevels
    (('Loading...',), 'truncated'),                 # indistinguishable from a cut string
    (('C:\\temp',), 'do not parse back'),           # Celery does not escape the backslash
    (('two\nlines',), 'not a Python literal'),      # nor the new line
    ((datetime.date(2024, 5, 1),), 'not a Python literal'),
    ((Decimal('1.5'),), 'not a Python literal'),
])
def test_args_that_cannot_be_trusted_are_refused(value, reason):
    with pytest.raises(RetryRefused, match=reason):
        parse_recorded(recorded(value), 'args', list)


@pytest.mark.parametrize('text, kind, reason', [
    (None, list, 'carry no args'),
    ("{'a': 1}", list, 'not a list'),
    ('(1, 2)', dict, 'not a dict'),
    ('{1: 2}', dict, 'not strings'),
    ('__import__("os").system("true")', list, 'not a Python literal'),
])
def test_text_of_the_wrong_shape_is_refused(text, kind, reason):
    with pytest.raises(RetryRefused, match=reason):
        parse_recorded(text, 'args', kind)


def limited():
    """A task whose max_retries flower's app knows."""


@pytest.fixture(scope='module')
def app():
    app = Celery('retry-states', set_as_current=False)
    app.task(name='limited', max_retries=2)(limited)
    return app


@pytest.mark.parametrize('state, retries, allowed', [
    ('FAILURE', 0, True), ('REVOKED', 0, True), ('REJECTED', 0, True),
    ('RETRY', 2, True), ('RETRY', 1, False),
    ('SUCCESS', 0, False), ('STARTED', 0, False), ('RECEIVED', 0, False), ('PENDING', 0, False),
])
def test_the_states_a_task_may_be_retried_from(app, state, retries, allowed):
    task = Task(uuid='t1', name='limited', state=state, retries=retries)

    if allowed:
        check_state(app, task)
    else:
        with pytest.raises(RetryRefused, match=state):
            check_state(app, task)


def test_a_retry_state_of_a_task_flower_has_no_code_for_is_refused(app):
    with pytest.raises(RetryRefused, match='retries left'):
        check_state(app, Task(uuid='t2', name='unknown', state='RETRY', retries=99))
