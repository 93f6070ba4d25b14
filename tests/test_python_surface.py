"""Names Flower 2.2 users import from configuration files, providers and scripts
(``../shared/reference/python-api-contract.md``), with the meaning their names say."""
import subprocess
import sys

import pytest

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
