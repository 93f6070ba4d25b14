"""Names Flower 2.2 users import from configuration files, providers and scripts
(``../shared/reference/python-api-contract.md``), with the meaning their names say."""
import asyncio
import concurrent.futures
import contextlib
import logging
import re
import sqlite3
import subprocess
import sys
import threading
import time
import types

import kombu.exceptions
import pytest
from tornado.ioloop import IOLoop

from flower.utils.broker import (
    Broker, Redis, RedisBase, RedisSentinel, RedisSocket, RedisSsl, validate_broker_api,
)
from flower.utils.template import format_count, format_duration, format_value, task_link
from flower.views.tasks import visible_task_columns
from flower.views.worker import WorkerView as WorkerPage
from flower.views.workers import WorkerView


@pytest.mark.parametrize('value, text', [
    (None, ''), (0, '0'), (999, '999'), (1234567, '1,234,567'), (12.0, '12')])
def test_format_count(value, text):
    assert format_count(value) == text


@pytest.mark.parametrize('seconds, text', [
    (None, ''), (0.0123, '12.3 ms'), (0.5, '500 ms'), (42.5, '42.5 s'), (60, '1 min'),
    (3725, '1 h 2 min 5 s'), (7200.4, '2 h')])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_value_renders_any_field():
    assert format_value(None) == ''
    assert format_value(True) == 'true'
    assert format_value(1500) == '1,500'
    assert format_value(0.000123456789) == '0.000123457'
    assert format_value(['a', 1]) == 'a, 1'
    assert format_value('x' * 50, length=10) == 'xxxxxxx...'


def test_task_link_is_an_escaped_link_to_the_task_page():
    class Task:
        uuid = 'abc-1'

    assert task_link('abc-1') == '<a href="/task/abc-1">abc-1</a>'
    assert task_link(Task(), url_prefix='/flower/') == '<a href="/flower/task/abc-1">abc-1</a>'
    hostile = '"><script>alert(1)</script>'
    link = task_link(hostile)
    assert '<script>' not in link and '&lt;script&gt;' in link
    assert 'href="/task/%22%3E%3Cscript%3E' in link


def test_redis_brokers_share_redis_base():
    for url, adapter in [('redis://localhost:6379/0', Redis), ('rediss://h:6380/1', RedisSsl),
                         ('redis+socket:///tmp/redis.sock', RedisSocket),
                         ('sentinel://h:26379', RedisSentinel)]:
        broker = Broker(url)
        assert type(broker) is adapter and isinstance(broker, RedisBase)
    assert not isinstance(Broker('amqp://guest@localhost//'), RedisBase)


@pytest.mark.parametrize('url', ['http://guest:guest@localhost:15672/api/',
                                 'https://rabbit.example.com/api/'])
def test_validate_broker_api_accepts_management_api_urls(url):
    assert validate_broker_api(url) == url


@pytest.mark.parametrize('url', ['', 'localhost:15672', 'amqp://guest@localhost//', 'http://'])
def test_validate_broker_api_refuses_what_cannot_be_the_management_api(url):
    with pytest.raises(ValueError, match='management API'):
        validate_broker_api(url)


def test_visible_task_columns_follow_the_option():
    assert visible_task_columns('name,state,bogus,name') == ['name', 'state']
    assert visible_task_columns(None)[:3] == ['name', 'uuid', 'state']
    assert 'eta' in visible_task_columns('all')


def test_the_worker_page_handler_is_importable_from_views_workers():
    assert WorkerView is WorkerPage


@pytest.mark.parametrize('misplaced', [['--broker=redis://127.0.0.1:1/0'], ['-A', 'proj'],
                                       ['--workdir', '/tmp']])
def test_celery_options_after_flower_exit_2_with_one_line_naming_them(misplaced, tmp_path):
    done = subprocess.run([sys.executable, '-m', 'celery', 'flower', '--port=5599', *misplaced],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert misplaced[0] in line and "go before 'flower'" in line


def test_warn_about_celery_args_returns_them(capsys):
    from celery.bin.celery import celery

    from flower.command import warn_about_celery_args_used_in_flower_command
    context = celery.make_context('celery', ['flower'], resilient_parsing=True)
    assert warn_about_celery_args_used_in_flower_command(
        context, ['--port=1', '-b', 'x', '--broker=y']) == ['-b', '--broker=y']
    assert '-b, --broker=y' in capsys.readouterr().err
    assert warn_about_celery_args_used_in_flower_command(context, ['--port=1']) == []


# -- flower.utils.search (the parser's own tests are in tests/test_search.py) ----------

def test_the_search_names_of_flower_2_2_are_one_parser_and_one_matcher():
    from flower.utils import search

    assert search.parse_query('state:FAILURE args:1') == search.And((
        search.Term('state', 'FAILURE'), search.Term('args', '1')))
    assert issubclass(search.QuerySyntaxError, ValueError)
    with pytest.raises(search.QuerySyntaxError, match='character 6'):
        search.parse_query('args:"unclosed')
    failed = types.SimpleNamespace(args='(1,)', kwargs='{}', result=None, state='FAILURE')
    assert search.TaskSearchEngine('state:FAILURE args:1').matches(failed)
    assert search.satisfies_search_terms(failed, search.parse_search_terms('args:1'))


def test_the_task_filter_holds_the_parsed_tree():
    from flower.tasks import TaskFilter
    from flower.utils.search import QuerySyntaxError, Term, TaskSearchEngine

    task_filter = TaskFilter(search='result:42')
    assert task_filter.query == Term('result', '42')
    assert isinstance(task_filter.search_engine, TaskSearchEngine)
    assert TaskFilter().query is None and TaskFilter().search_engine is None
    with pytest.raises(QuerySyntaxError):
        TaskFilter(search='"')


# -- flower.utils.blocking ------------------------------------------------------------

def run_coroutine(coroutine):
    """Run ``coroutine`` on an event loop of a thread of its own (the test session's
    thread may run one already)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_the_blocking_runner_runs_off_the_loop_and_logs_how_long(caplog):
    from flower.utils.blocking import BlockingOperationRunner

    def blocking(a, b):
        time.sleep(0.05)
        return threading.current_thread().name, a + b

    async def scenario():
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='blocking') as pool:
            runner = BlockingOperationRunner(pool)
            return threading.current_thread().name, await runner.run(
                'reading the queues', 'redis://127.0.0.1:6379/0', blocking, 1, 2)

    with caplog.at_level(logging.DEBUG, logger='flower.utils.blocking'):
        loop_thread, (call_thread, total) = run_coroutine(scenario())
    assert total == 3
    assert call_thread.startswith('blocking') and call_thread != loop_thread
    [line] = [record.getMessage() for record in caplog.records]
    # How long a busy machine makes it take varies; it cannot take less than the call.
    took = re.fullmatch(r'reading the queues on redis://127\.0\.0\.1:6379/0: done in (\d+\.\d{3}) s',
                        line)
    assert took and float(took.group(1)) >= 0.05, line
    assert float(line.split(' in ')[1].removesuffix(' s')) >= 0.05


@pytest.mark.parametrize('failure', [
    ConnectionRefusedError(111, 'Connection refused'), TimeoutError('timed out'),
    kombu.exceptions.OperationalError('Error 111 connecting to 127.0.0.1:1'),
])
def test_an_unreachable_service_is_a_503_naming_it(failure):
    from flower.base_handler import error_message, error_status
    from flower.utils.blocking import BlockingOperationRunner, ServiceUnavailable

    def blocking():
        raise failure

    with pytest.raises(ServiceUnavailable) as caught:
        run_coroutine(BlockingOperationRunner(None).run('polling the result', 'the result backend',
                                                        blocking))
    cause = caught.value.__cause__  # asyncio hands a TimeoutError on as a copy
    assert type(cause) is type(failure) and cause.args == failure.args
    assert error_status(caught.value) == 503
    message = error_message(caught.value, 503, 'Service Unavailable')
    assert message.startswith('polling the result failed: cannot reach the result backend (')
    assert str(failure) in message


def test_other_failures_of_a_blocking_call_are_raised_as_they_are():
    from flower.utils.blocking import BlockingOperationRunner

    def blocking():
        raise KeyError('no such task')

    with pytest.raises(KeyError):
        run_coroutine(BlockingOperationRunner(None).run('reading', 'the backend', blocking))


# -- flower.utils.authentication and flower.views.auth --------------------------------

def test_the_credential_checks_are_one_implementation_importable_from_both_modules():
    from flower.utils import authentication
    from flower.views import auth

    assert auth.authenticate is authentication.authenticate
    assert auth.validate_auth_option is authentication.validate_auth_option
    assert auth.authenticate(r'.*@example\.com', 'ann@example.com')
    assert not auth.authenticate(r'.*@example\.com', 'ann@example.com.evil.org')
    assert not auth.authenticate(r'.*@example\.com', None)
    assert auth.validate_auth_option(r'ann@example\.com|bob@example\.com')
    assert not auth.validate_auth_option('(unclosed') and not auth.validate_auth_option('')


@pytest.mark.parametrize('url, safe', [
    ('/tasks?state=FAILURE', True), ('/flower/worker/celery@host', True), ('/', True),
    ('//evil.example/', False), ('https://evil.example/', False), ('/\\evil.example', False),
    ('/%2F/evil.example', False), ('/\t/evil.example', False), ('tasks', False), ('', False),
    (None, False),
])
def test_is_safe_redirect_accepts_paths_of_the_site_only(url, safe):
    from flower.views.auth import is_safe_redirect

    assert is_safe_redirect(url) is safe


class FakeLoginHandler:
    """What the login helpers use of a request handler: arguments and signed cookies."""

    class application:
        @staticmethod
        def url_for_path(path):
            return '/flower' + path

    def __init__(self, **arguments):
        self.arguments = arguments
        self.cookies = {}

    def get_argument(self, name, default=None):
        return self.arguments.get(name, default)

    def set_signed_cookie(self, name, value, **kwargs):
        self.cookies[name] = (value, kwargs)

    def get_signed_cookie(self, name, max_age_days=31):
        return self.cookies.get(name, (None,))[0]

    def clear_cookie(self, name):
        self.cookies.pop(name, None)


def test_get_next_url_keeps_a_safe_next_only():
    from flower.views.auth import get_next_url

    assert get_next_url(FakeLoginHandler(next='/flower/tasks')) == '/flower/tasks'
    assert get_next_url(FakeLoginHandler(next='//evil.example')) == '/flower/'
    assert get_next_url(FakeLoginHandler()) == '/flower/'
    assert get_next_url(FakeLoginHandler(next='https://evil.example'), '/home') == '/home'


def test_the_oauth2_state_round_trips_once_and_refuses_a_mismatch():
    from flower.base_handler import RequestError
    from flower.views.auth import GithubLoginHandler, GoogleAuth2LoginHandler, OAuth2StateMixin

    class Handler(OAuth2StateMixin, FakeLoginHandler):
        pass

    assert issubclass(GoogleAuth2LoginHandler, OAuth2StateMixin)
    assert issubclass(GithubLoginHandler, OAuth2StateMixin)
    handler = Handler()
    state = handler.issue_state('/flower/tasks')
    value, cookie = handler.cookies[OAuth2StateMixin.state_cookie]
    assert cookie['httponly'] and cookie['expires_days'] * 24 * 60 <= 10
    assert len(state) >= 32 and state != Handler().issue_state('/')
    handler.arguments['state'] = state
    assert handler.check_state() == '/flower/tasks'
    with pytest.raises(RequestError) as replayed:
        handler.check_state()  # the cookie was consumed
    assert replayed.value.status_code == 403

    handler.issue_state('/flower/tasks')
    handler.arguments['state'] = 'forged'
    with pytest.raises(RequestError) as forged:
        handler.check_state()
    assert (forged.value.status_code, forged.value.message) == (
        403, 'Login failed: the OAuth state does not match')


# -- flower.utils ---------------------------------------------------------------------

def test_abs_path_expands_the_home_and_the_current_directory(monkeypatch, tmp_path):
    from flower.utils import abs_path

    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.chdir(tmp_path)
    assert abs_path('~/flower.db') == str(tmp_path / 'home' / 'flower.db')
    assert abs_path('data/../flower.db') == str(tmp_path / 'flower.db')
    assert abs_path('/var/lib/flower.db') == '/var/lib/flower.db'


def test_gen_cookie_secret_is_long_random_and_cookie_safe():
    from flower.utils import gen_cookie_secret

    secrets_made = {gen_cookie_secret() for _ in range(50)}
    assert len(secrets_made) == 50
    assert all(len(secret) >= 40 and re.fullmatch(r'[A-Za-z0-9_-]+', secret)
               for secret in secrets_made)


@pytest.mark.parametrize('value, expected', [
    ('yes', True), ('Y', True), ('true', True), (' On ', True), ('1', True), ('t', True),
    ('no', False), ('N', False), ('FALSE', False), ('off', False), ('0', False), ('f', False),
    (True, True), (False, False),
])
def test_strtobool(value, expected):
    from flower.utils import strtobool

    assert strtobool(value) is expected


@pytest.mark.parametrize('value', ['', 'maybe', '2', 'yess'])
def test_strtobool_refuses_other_words(value):
    from flower.utils import strtobool

    with pytest.raises(ValueError, match='invalid truth value'):
        strtobool(value)


def test_bugreport_names_the_versions_and_the_broker_transport():
    import celery
    import humanize
    import tornado

    from flower import __version__
    from flower.utils import bugreport

    report = bugreport()
    for expected in (f'flower:{__version__}', f'tornado:{tornado.version}',
                     f'humanize:{humanize.__version__}', f'celery:{celery.__version__}',
                     f'kombu:{kombu.__version__}'):
        assert expected in report
    assert 'transport' not in report
    app = celery.Celery('report', broker='redis://ann:s3cret@127.0.0.1:1/0')
    with_app = bugreport(app)
    assert 'broker   -> transport:redis' in with_app
    assert 's3cret' not in with_app  # Celery's own report masks it


# -- flower.events.Events ---------------------------------------------------------------

def test_enable_events_is_awaited_and_a_failure_is_one_log_line(caplog, monkeypatch):
    import celery

    from flower import events as events_module
    from flower.events import Events

    assert asyncio.iscoroutinefunction(Events.on_enable_events)
    monkeypatch.setattr(events_module, 'broadcast_connection',
                        lambda capp: contextlib.nullcontext(None))
    capp = celery.Celery('enable', broker='memory://')
    sent = []

    def refused(connection=None):
        raise ConnectionRefusedError(111, 'Connection refused')

    async def scenario():
        events = Events(capp, IOLoop.current(), enable_events=True, max_tasks_in_memory=10)
        events.broker_connected = True
        monkeypatch.setattr(capp.control, 'enable_events', refused)
        await events.on_enable_events()
        failed_count = events.enable_events_sent
        monkeypatch.setattr(capp.control, 'enable_events',
                            lambda connection=None: sent.append(connection))
        await events.on_enable_events()
        return failed_count, events.enable_events_sent

    with caplog.at_level(logging.WARNING, logger='flower.events'):
        counts = run_coroutine(scenario())
    assert counts == (0, 1) and sent == [None]
    [record] = caplog.records
    assert record.getMessage() == ('Failed to enable events: ConnectionRefusedError: '
                                   '[Errno 111] Connection refused')
    assert record.exc_info is None and '\n' not in record.getMessage()


def history_events(path):
    import celery

    from flower.events import Events
    from flower.metrics import PrometheusMetrics

    return Events(celery.Celery(broker='memory://'), IOLoop.current(), db=str(path),
                  persistent=True, enable_events=False, max_tasks_in_memory=100,
                  metrics=PrometheusMetrics())


def task_events(state, uuid, outcome='task-succeeded', clock=0):
    from celery.events import Event

    now = time.time()
    for offset, kind in enumerate(('task-received', outcome)):
        fields = {'result': '3'} if kind == 'task-succeeded' else {'exception': 'boom'}
        state.event(Event(kind, uuid=uuid, hostname='w1@h', clock=clock + offset,
                          timestamp=now, local_received=now, name='tasks.add', args='(1, 2)',
                          kwargs='{}', **fields))


def stored_states(path):
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return dict(connection.execute('SELECT uuid, state FROM tasks'))


def test_a_failed_save_keeps_the_previous_history_and_the_changes(tmp_path, caplog):
    path = tmp_path / 'history.db'

    def failing_retention(*args):
        raise sqlite3.OperationalError('disk I/O error')

    async def scenario():
        events = history_events(path)
        events.open_history()
        task_events(events.state, 'first')
        events.save_state()
        before = stored_states(path)

        task_events(events.state, 'second', outcome='task-failed', clock=10)
        events.store._apply_retention = failing_retention  # fails inside the transaction
        with pytest.raises(sqlite3.OperationalError):
            events.save_state()
        after_failure = stored_states(path)

        del events.store._apply_retention
        events.save_state()  # the changes of the failed save were kept for this one
        after_retry = stored_states(path)

        task_events(events.state, 'third', clock=20)
        events.store._apply_retention = failing_retention
        events.stop()  # the last save fails: logged, and the file is closed all the same
        return before, after_failure, after_retry, events.store

    with caplog.at_level(logging.ERROR, logger='flower.history'):
        before, after_failure, after_retry, store = run_coroutine(scenario())
    assert before == {'first': 'SUCCESS'}
    assert after_failure == before
    assert after_retry == {'first': 'SUCCESS', 'second': 'FAILURE'}
    assert store is None
    assert stored_states(path) == after_retry
    [record] = caplog.records
    assert record.getMessage() == (f'Writing the task history to {path} at shutdown failed: '
                                   'OperationalError: disk I/O error. The file keeps the '
                                   'history written before')
    assert record.exc_info is None
