"""Items 7 and 18 of issue 15: options that used to be read in a surprising way."""
import subprocess
import sys

import pytest
from tornado.options import options

from flower import command
from flower.options import default_options


@pytest.fixture(autouse=True)
def restore_options():
    saved = {name: default_options[name] for name in ('basic_auth', 'conf')}
    yield
    for name, value in saved.items():
        setattr(options, name, value)


@pytest.mark.parametrize('argv', [
    ['--basic_auth=admin:k9,Zq:7f'],
    ['--basic_auth', 'alice:s3cret,bob:hunter2'],
    ['--basic_auth=alice:ok', '--basic_auth=admin:k9,Zq:7f'],
])
def test_item07_basic_auth_comma_is_refused_not_split(argv):
    with pytest.raises(command.OptionError) as refused:
        command.apply_options('flower', argv)
    message = str(refused.value)
    assert message.startswith('--basic_auth: the entry of user ') and 'comma' in message
    assert '\n' not in message
    assert 'k9' not in message and '7f' not in message and 'hunter2' not in message


def test_item07_basic_auth_comma_in_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv('FLOWER_BASIC_AUTH', 'admin:k9,Zq:7f')
    with pytest.raises(command.OptionError, match='^FLOWER_BASIC_AUTH: the entry of user'):
        command.apply_env_options()


def test_item07_basic_auth_config_file_list_keeps_commas_a_string_is_refused(tmp_path):
    config = tmp_path / 'flowerconfig.py'
    config.write_text("basic_auth = ['admin:k9,Zq:7f', 'bob:hunter2']\n")
    command.apply_options('flower', [f'--conf={config}'])
    assert options.basic_auth == ['admin:k9,Zq:7f', 'bob:hunter2']
    config.write_text("basic_auth = 'admin:k9,Zq:7f'\n")
    with pytest.raises(command.OptionError, match="^basic_auth in .*: the entry of user 'admin'"):
        command.apply_options('flower', [f'--conf={config}'])


def test_item07_basic_auth_comma_stops_the_command_with_exit_2(broker_url):
    result = subprocess.run(
        [sys.executable, '-m', 'celery', f'--broker={broker_url}', 'flower',
         '--basic_auth=admin:k9,Zq:7f', '--port=0'],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('flower: error: --basic_auth: the entry')
    assert '7f' not in result.stderr


@pytest.mark.parametrize('argv, message', [
    (['--max_body_size=0'], '--max_body_size: must be at least 1 byte, not 0'),
    (['--allowed_hosts=flower.example.com/x'], "--allowed_hosts: 'flower.example.com/x' is not"),
])
def test_item11_and_item03_request_options_are_checked_at_start(argv, message):
    saved = {name: default_options[name] for name in ('max_body_size', 'allowed_hosts')}
    try:
        command.apply_options('flower', argv)
        with pytest.raises(command.OptionError) as refused:
            command.extract_settings()
        assert str(refused.value).startswith(message)
    finally:
        for name, value in saved.items():
            setattr(options, name, value)
