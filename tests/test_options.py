"""Option parsing: defaults, both value forms, precedence of the three sources, bad input."""
import os
import subprocess
import sys
import textwrap

import celery
import pytest
from tornado.options import options

from flower import command
from flower.options import default_options

EXPECTED_DEFAULTS = {
    'port': 5555,
    'address': '',
    'unix_socket': '',
    'debug': False,
    'inspect_timeout': 1000,
    'auth': '',
    'basic_auth': [],
    'oauth2_key': None,
    'oauth2_secret': None,
    'oauth2_redirect_uri': None,
    'auth_provider': None,
    'max_workers': 5000,
    'max_tasks': 100000,
    'db': 'flower',
    'persistent': False,
    'state_save_interval': 0,
    'replica_poll_interval': 1000,
    'db_max_tasks': 1000000,
    'db_max_age': 0,
    'broker_api': None,
    'ca_certs': None,
    'certfile': None,
    'keyfile': None,
    'xheaders': False,
    'auto_refresh': True,
    'purge_offline_workers': None,
    'cookie_secret': None,
    'conf': 'flowerconfig.py',
    'enable_events': True,
    'format_task': None,
    'natural_time': False,
    'stream_buffer': 10000,
    'bulk_action_limit': 10000,
    'tasks_columns': 'name,uuid,state,args,kwargs,result,received,started,runtime,worker',
    'url_prefix': '',
    'task_runtime_metric_buckets': [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
                                    0.75, 1.0, 2.5, 5.0, 7.5, 10.0],
    'read_only': False,
    'unauthenticated_api': False,
    'allowed_hosts': [],
    'max_body_size': 10 * 1024 * 1024,
    'revoke_sessions': False,
    'max_audit_records': 1000,
    'unauthenticated_metrics': False,
    'logging': 'info',
    'log_file_prefix': None,
}


@pytest.fixture(autouse=True)
def restore_options(monkeypatch, tmp_path):
    """Keep Tornado's global options, the environment and the cwd as they were."""
    saved = {name: option._value for name, option in options._options.items()}
    for variable in list(os.environ):
        if variable.startswith('FLOWER_'):
            monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)
    yield
    for name, value in saved.items():
        options._options[name]._value = value


def test_every_option_has_its_documented_default():
    values = default_options.as_dict()
    for name, expected in EXPECTED_DEFAULTS.items():
        assert values[name] == expected, name


def test_no_option_is_missing_from_the_expected_set():
    defined = set(default_options.as_dict()) - {'help', 'log_to_stderr', 'log_file_max_size',
                                                 'log_file_num_backups', 'log_rotate_when',
                                                 'log_rotate_interval', 'log_rotate_mode'}
    assert defined == set(EXPECTED_DEFAULTS)


def test_equals_and_space_forms_both_work():
    command.apply_options('flower', ['--port=5566', '--address', '127.0.0.6',
                                     '--max_tasks', '10', '--url-prefix=flower'])
    assert options.port == 5566
    assert options.address == '127.0.0.6'
    assert options.max_tasks == 10
    assert options.url_prefix == 'flower'


def test_bool_flags_alone_or_with_a_value():
    command.apply_options('flower', ['--debug', '--auto_refresh', 'false', '--xheaders=yes',
                                     '--natural_time=True'])
    assert options.debug is True
    assert options.auto_refresh is False
    assert options.xheaders is True
    assert options.natural_time is True


def test_basic_auth_accepts_repeated_flags():
    command.apply_options('flower', ['--basic_auth=a:1', '--basic_auth', 'c:3'])
    assert options.basic_auth == ['a:1', 'c:3']


def test_list_of_floats_for_runtime_buckets():
    command.apply_options('flower', ['--task_runtime_metric_buckets=0.1,1,10'])
    assert options.task_runtime_metric_buckets == [0.1, 1.0, 10.0]


def test_environment_variables_are_applied(monkeypatch):
    monkeypatch.setenv('FLOWER_PORT', '6001')
    monkeypatch.setenv('FLOWER_BASIC_AUTH', 'foo:bar')
    monkeypatch.setenv('FLOWER_PERSISTENT', 'true')
    command.apply_env_options()
    assert options.port == 6001
    assert options.basic_auth == ['foo:bar']
    assert options.persistent is True


def write_config(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_precedence_command_line_over_environment_over_file_over_default(tmp_path, monkeypatch):
    write_config(tmp_path / 'flowerconfig.py', """
        port = 7001
        max_tasks = 7
        max_workers = 70
        inspect_timeout = 2500
    """)
    monkeypatch.setenv('FLOWER_PORT', '7002')
    monkeypatch.setenv('FLOWER_MAX_TASKS', '8')
    command.apply_env_options()
    command.apply_options('flower', ['--port=7003'])
    assert options.port == 7003            # command line beats environment and file
    assert options.max_tasks == 8          # environment beats file
    assert options.max_workers == 70       # file beats default
    assert options.inspect_timeout == 2500
    assert options.db == 'flower'          # default when nobody sets it


def test_conf_option_selects_another_file(tmp_path):
    other = write_config(tmp_path / 'other.py', "port = 7100\n")
    write_config(tmp_path / 'flowerconfig.py', "port = 7200\n")
    command.apply_options('flower', ['--conf', other])
    assert options.port == 7100


def test_config_file_may_define_format_task_and_override_celery_settings(tmp_path):
    write_config(tmp_path / 'flowerconfig.py', """
        from flower.utils.template import humanize

        task_default_queue = 'from-flowerconfig'
        helper_variable = 'ignored'

        def format_task(task):
            task.args = humanize(task.args, length=10)
            return task
    """)
    capp = celery.Celery('test')
    command.apply_options('flower', [], capp=capp)
    assert capp.conf.task_default_queue == 'from-flowerconfig'
    assert callable(options.format_task)
    assert options.format_task.__name__ == 'format_task'


def test_config_file_string_values_are_parsed_for_typed_options(tmp_path):
    write_config(tmp_path / 'flowerconfig.py', """
        port = '7300'
        basic_auth = 'x:1'
        task_runtime_metric_buckets = '0.5,5'
        logging = 'DEBUG'
    """)
    command.apply_options('flower', [])
    assert options.port == 7300
    assert options.basic_auth == ['x:1']
    assert options.task_runtime_metric_buckets == [0.5, 5.0]
    assert options.logging == 'DEBUG'


@pytest.mark.parametrize('argv, expected_error', [
    (['--port=abc'], "--port: invalid int value 'abc'"),
    (['--port'], "--port: option requires a value"),
    (['--no_such_option=1'], "unknown option --no_such_option"),
    (['--debug=maybe'], "--debug: invalid bool value 'maybe'"),
    (['stray'], "unexpected argument 'stray'"),
    (['--conf=does-not-exist.py'], "--conf: configuration file"),
])
def test_bad_command_line_raises_a_one_line_error(argv, expected_error):
    with pytest.raises(command.OptionError) as excinfo:
        command.apply_options('flower', argv)
    assert expected_error in str(excinfo.value)
    assert '\n' not in str(excinfo.value)


def run_flower(args, cwd, env=None):
    environ = dict(os.environ, **(env or {}))
    environ = {key: value for key, value in environ.items() if not key.startswith('FLOWER_')}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, '-m', 'celery', '--broker=redis://127.0.0.1:1/0', 'flower', *args],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize('args, files, env, named', [
    (['--port=abc'], {}, {}, '--port'),
    (['--bogus=1'], {}, {}, '--bogus'),
    (['--conf=missing.py'], {}, {}, '--conf'),
    ([], {'flowerconfig.py': 'port = (\n'}, {}, '--conf'),
    (['--conf=bad.py'], {'bad.py': 'def broken(:\n'}, {}, '--conf'),
    ([], {'flowerconfig.py': "port = 'abc'\n"}, {}, 'port'),
    ([], {}, {'FLOWER_PORT': 'abc'}, 'FLOWER_PORT'),
    (['--basic_auth=useronly'], {}, {}, '--basic_auth'),
    (['--certfile=cert.pem'], {}, {}, '--certfile'),
    (['--broker_api=ftp://x'], {}, {}, '--broker_api'),
    (['--auth=.*@example\\.com'], {}, {}, '--oauth2_key'),
    (['--auth=(unclosed', '--oauth2_key=k'], {}, {}, '--auth'),
    (['--auth_provider=flower.views.auth.GithubLoginHandler'], {}, {}, '--auth_provider'),
    (['--auth=.*@example\\.com', '--oauth2_key=k', '--oauth2_secret=s',
      '--oauth2_redirect_uri=http://flower.example.com/login', '--auth_provider=no.such.Handler'],
     {}, {}, '--auth_provider'),
    (['--auth=.*@example\\.com', '--oauth2_key=k', '--oauth2_secret=s'],
     {}, {}, '--oauth2_redirect_uri'),
    (['--persistent', '--db=/no/such/directory/history.db'], {}, {}, '--db'),
    (['--db_max_tasks=-1'], {}, {}, '--db_max_tasks'),
    (['--db_max_age=-60'], {}, {}, '--db_max_age'),
    (['--state_save_interval=-1'], {}, {}, '--state_save_interval'),
    (['--replica_poll_interval=0'], {}, {}, '--replica_poll_interval'),
    (['--max_audit_records=0'], {}, {}, '--max_audit_records'),
])
def test_bad_input_exits_2_with_one_line_naming_the_option(tmp_path, args, files, env, named):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = run_flower(args, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('flower: error: ')
    assert named in lines[0]
    assert 'Traceback' not in result.stderr
