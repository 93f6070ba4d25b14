"""The command as users start it: ``celery ... flower ...``, ``python -m flower``, packaging."""
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import zipfile

import pytest

from tests.support.command import CELERY, http_get, wait_until
from tests.support.processes import EXAMPLES_DIR, REPO_DIR, free_port


def test_celery_app_option_before_the_subcommand_and_flower_options_after(
        broker_url, worker_factory, start_flower):
    worker = worker_factory(broker_url, pool='threads', concurrency=1)
    port = free_port()
    flower = start_flower(CELERY + ['-A', 'tasks', '--workdir', EXAMPLES_DIR, 'flower',
                                    f'--port={port}', '--address=127.0.0.1'],
                          env={'CELERY_BROKER_URL': broker_url})
    assert flower.wait_http(port) == (200, 'OK')

    def listed():
        status, body = http_get(port, '/workers?json=1')
        return worker.hostname in [row['hostname'] for row in json.loads(body)['data']]
    wait_until(listed, message='worker listed by flower started with -A')
    assert "'tasks.add'" in flower.log()  # the app's registered tasks were loaded
    assert flower.stop(signal.SIGTERM) == 0


def test_broker_option_and_space_separated_flower_options(broker_url, start_flower):
    port = free_port()
    flower = start_flower(CELERY + [f'--broker={broker_url}', 'flower', '--port', str(port),
                                    '--address', '127.0.0.1'])
    assert flower.wait_http(port) == (200, 'OK')
    password_free_url = broker_url.replace('redis://', 'redis://:**@')
    assert f'Broker: {password_free_url}' in flower.log()
    assert flower.stop(signal.SIGINT) == 0


def test_python_dash_m_flower(broker_url, start_flower):
    port = free_port()
    flower = start_flower([sys.executable, '-m', 'flower', '--broker', broker_url,
                           f'--port={port}', '--address=127.0.0.1'])
    assert flower.wait_http(port) == (200, 'OK')
    status, page = http_get(port, '/')
    assert status == 200 and '<h1>Workers</h1>' in page
    assert flower.stop() == 0


def listening_addresses(port):
    """Local addresses of sockets listening on ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as rows:
            next(rows)
            for row in rows:
                local, state = row.split()[1], row.split()[3]
                address, _, hex_port = local.partition(':')
                if int(hex_port, 16) == port and state == '0A':  # 0A: LISTEN
                    found.add(address)
    return found


def test_default_address_is_every_interface_and_default_port_5555(broker_url, start_flower):
    flower = start_flower(CELERY + [f'--broker={broker_url}', 'flower'])
    assert flower.wait_http(5555) == (200, 'OK')
    addresses = listening_addresses(5555)
    assert addresses & {'00000000', '00000000000000000000000000000000'}, addresses
    assert flower.stop() == 0


def test_unix_socket(broker_url, start_flower, tmp_path):
    socket_path = str(tmp_path / 'flower.sock')
    flower = start_flower(CELERY + [f'--broker={broker_url}', 'flower',
                                    f'--unix_socket={socket_path}'])

    def answer():
        if not os.path.exists(socket_path):
            return None
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(5)
        try:
            client.connect(socket_path)
            client.sendall(b'GET /healthcheck HTTP/1.0\r\nHost: flower\r\n\r\n')
            data = b''
            while chunk := client.recv(4096):
                data += chunk
            return data.decode()
        finally:
            client.close()
    response = wait_until(answer, message='answer on the unix socket')
    assert response.startswith('HTTP/1.1 200') and response.endswith('OK')
    assert flower.stop() == 0


def test_the_wheel_carries_templates_static_files_and_the_celery_entry_point(tmp_path):
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(tmp_path), REPO_DIR], check=True, timeout=300,
                   cwd=tmp_path)
    wheel = next(tmp_path.glob('flower-*.whl'))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith('entry_points.txt')))
    for expected in ('flower/templates/base.html', 'flower/templates/workers.html',
                     'flower/static/css/flower.css', 'flower/static/js/flower.js',
                     'flower/command.py', 'flower/__main__.py'):
        assert expected in names
    assert not any(name.startswith(('tests/', 'examples/')) for name in names)
    assert b'[celery.commands]' in entry_points
    assert b'flower = flower.command:flower' in entry_points


def https_get(port, path, context):
    connection = http.client.HTTPSConnection('127.0.0.1', port, timeout=5, context=context)
    try:
        connection.request('GET', path)
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode('utf-8')
    finally:
        connection.close()


def test_tls_serves_https_with_a_self_signed_certificate(tmp_path, start_flower, broker_url):
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
                    '-keyout', str(key), '-out', str(cert)], check=True, capture_output=True)
    port = free_port()
    flower = start_flower([
        sys.executable, '-m', 'celery', f'--broker={broker_url}', 'flower', f'--port={port}',
        '--address=127.0.0.1', f'--certfile={cert}', f'--keyfile={key}',
        r'--auth=.*@example\.com', '--oauth2_key=id', '--oauth2_secret=secret',
        f'--oauth2_redirect_uri=https://127.0.0.1:{port}/login'])
    context = ssl.create_default_context(cafile=str(cert))

    deadline = time.monotonic() + 30
    while True:
        try:
            status, _, body = https_get(port, '/healthcheck', context)
            break
        except OSError:
            assert flower.process.poll() is None, flower.log()
            assert time.monotonic() < deadline, flower.log()
            time.sleep(0.1)
    assert (status, body) == (200, 'OK')
    assert f'https://127.0.0.1:{port}' in flower.log()

    status, headers, _ = https_get(port, '/login', context)
    assert status == 302
    state_cookie = headers['Set-Cookie']
    assert state_cookie.startswith('flower_oauth_state=')
    assert 'Secure' in state_cookie and 'HttpOnly' in state_cookie

    with pytest.raises((http.client.HTTPException, OSError)):
        http_get(port, '/healthcheck')  # plain HTTP is not served on the TLS port


def _help_sections(text):
    """``{section title: {flag: line}}`` of ``celery flower --help``."""
    sections, current = {}, None
    for line in text.splitlines():
        if line.endswith(':') and not line.startswith(' '):
            current = sections.setdefault(line[:-1], {})
        elif line.startswith('  --') and current is not None:
            current[line.split()[0].split('=')[0]] = line
    return sections


@pytest.mark.parametrize('argv', [
    CELERY + ['flower', '--help'],
    CELERY + ['flower', '-h'],
    [sys.executable, '-m', 'flower', '--help'],
], ids=['celery-flower--help', 'celery-flower-h', 'python-m-flower--help'])
def test_help_lists_every_option_grouped_with_its_default_and_exits_0(argv, tmp_path):
    from tornado.options import options

    from flower.options import OPTION_GROUPS
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    sections = _help_sections(done.stdout)
    assert list(sections)[:len(OPTION_GROUPS)] == [
        'Server', 'Authentication and access', 'Broker and workers',
        'Tasks, workers and pages', 'Persistence (task history)', 'Metrics']
    listed = {flag: (title, line) for title, flags in sections.items() for flag, line in flags.items()}
    for option in options._options.values():
        if option.name == 'help':
            continue
        flag = '--' + option.name.replace('-', '_')
        assert flag in listed, f'{flag} missing from --help'
        title, line = listed[flag]
        assert option.help in line and '(default: ' in line
    assert '--port=INT ' in sections['Server']['--port']
    assert '(default: 5555)' in sections['Server']['--port']
    assert '(default: flower)' in sections['Persistence (task history)']['--db']
    assert '(default: false)' in sections['Authentication and access']['--read_only']
    assert 'Usage: celery [celery options] flower [flower options]' in done.stdout


def test_every_flower_option_is_in_a_help_group():
    from tornado.options import options

    from flower.options import OPTION_GROUPS
    flower_options = [option for option in options._options.values()
                      if option.group_name.endswith(('flower/options.py', *OPTION_GROUPS))]
    assert flower_options
    ungrouped = [option.name for option in flower_options if option.group_name not in OPTION_GROUPS]
    assert ungrouped == [], 'define(..., group=<one of OPTION_GROUPS>) for these'


def test_an_unknown_option_next_to_help_still_exits_2_with_one_line(tmp_path):
    done = subprocess.run(CELERY + ['flower', '--prot=5555'], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ['flower: error: unknown option --prot']


def test_tune_process_sets_the_gil_switch_interval_and_the_collector_thresholds():
    """What ``celery flower`` does to the interpreter before it starts (in a process of
    its own: the settings are process-wide)."""
    script = ('import asyncio, gc, sys\n'
              'from flower.command import tune_process\n'
              'async def main():\n'
              '    freezer = tune_process()\n'
              '    print(sys.getswitchinterval(), *gc.get_threshold(), freezer.is_running())\n'
              '    freezer.stop()\n'
              'asyncio.run(main())\n')
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=60, cwd=REPO_DIR)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ['0.0005', '10000', '10', '10', 'True']
