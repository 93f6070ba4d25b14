"""flower as users install it: a wheel or an sdist in a fresh venv, no test extras.

The venv is built by ``scripts/install-flower.sh``, the script the container
image runs too. The installed ``celery flower`` (not this test venv's) then
watches a private Redis, a Redis over TLS and a RabbitMQ vhost, each with a
real worker, and must show the worker's task in ``/api/tasks``. A runtime
dependency that only the test extras bring (kombu's Redis transport needs
``packaging``, which pytest happens to pull in) fails here.
"""
import subprocess
import sys
import tarfile
import urllib.parse
from pathlib import Path

import pytest

from tests.support.command import get_json, http_get
from tests.support.install import copy_tracked_files, install, make_venv, user_environment
from tests.support.processes import celery_client, free_port
from tests.support.rabbitmq import MANAGEMENT_API, amqp_url
from tests.support.tls import TlsRedisServer, make_certificates
from tests.support.waiting import wait_for


def venv_python(venv, code):
    return subprocess.run([str(venv / 'bin' / 'python'), '-c', code], capture_output=True,
                          text=True, timeout=60, env=user_environment(), cwd=venv)


@pytest.fixture
def installed_flower(user_venv, start_flower, tmp_path, monkeypatch):
    """``installed_flower(broker_url, *options)`` starts the venv's ``celery flower``; returns its port."""
    monkeypatch.delenv('PYTHONPATH', raising=False)

    def start(broker_url, *flower_options):
        port = free_port()
        argv = [str(user_venv / 'bin' / 'celery'), '--broker', broker_url, 'flower',
                f'--port={port}', '--address=127.0.0.1', *flower_options]
        process = start_flower(argv, env={'FLOWER_UNAUTHENTICATED_API': 'true'}, cwd=tmp_path)
        status, body = process.wait_http(port, timeout=60)
        assert (status, body.strip()) == (200, 'OK'), process.log()
        return port, process
    return start


def wait_until_worker_seen(port, process, hostname):
    """Events published before Flower subscribes are gone (pub/sub): wait for the worker's own."""
    def online():
        status, body = http_get(port, '/metrics')
        return status == 200 and f'flower_worker_online{{worker="{hostname}"}} 1.0' in body
    try:
        wait_for(online, timeout=30, what=f'{hostname} online in /metrics')
    except AssertionError:
        raise AssertionError(f'{hostname} never seen online; flower log:\n{process.log()}') from None


def assert_a_task_shows_up(installed_flower, worker_factory, url, *flower_options,
                           result_backend=None):
    """A real worker on ``url``, the installed flower watching it: its task is listed."""
    worker = worker_factory(url, result_backend=result_backend)
    port, process = installed_flower(url, *flower_options)
    wait_until_worker_seen(port, process, worker.hostname)
    client = celery_client(url, result_backend=result_backend)
    try:
        task_id = client.send_task('tasks.add', (20, 22)).id
    finally:
        client.close()

    def finished():
        task = get_json(port, '/api/tasks').get(task_id)
        return task is not None and task['state'] == 'SUCCESS' and task['result'] == '42'
    try:
        wait_for(finished, timeout=30, what=f'task {task_id} in /api/tasks')
    except AssertionError:
        raise AssertionError(f'task {task_id} not in /api/tasks; flower log:\n{process.log()}') from None
    return port


def test_the_user_venv_has_flower_and_its_runtime_dependencies_only(user_venv):
    where = venv_python(user_venv, 'import flower, kombu.transport.redis; print(flower.__file__)')
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(user_venv / 'lib')), where.stdout
    for test_only in ('pytest', 'playwright', 'sphinx'):
        assert venv_python(user_venv, f'import {test_only}').returncode != 0, test_only
    assert venv_python(user_venv, 'import hiredis, msgspec, packaging').returncode == 0


def test_the_installed_command_watches_a_redis_broker(installed_flower, redis_server, worker_factory):
    port = assert_a_task_shows_up(installed_flower, worker_factory, redis_server.url_for(3))
    assert get_json(port, '/api/openapi.json')['openapi'].startswith('3.1.')


def test_the_installed_command_watches_a_rediss_broker(installed_flower, worker_factory, tmp_path):
    certificates = make_certificates(str(tmp_path))
    server = TlsRedisServer(certificates, dir=str(tmp_path)).start()
    try:
        query = urllib.parse.urlencode({'ssl_cert_reqs': 'required',
                                        'ssl_ca_certs': certificates['ca.crt']})
        url = f'rediss://127.0.0.1:{server.tls_port}/2?{query}'
        assert_a_task_shows_up(installed_flower, worker_factory, url)
    finally:
        server.stop()


def test_the_installed_command_watches_a_rabbitmq_broker(installed_flower, vhost, worker_factory):
    port = assert_a_task_shows_up(installed_flower, worker_factory, amqp_url(vhost),
                                  f'--broker_api={MANAGEMENT_API}', result_backend='rpc://')
    queues = get_json(port, '/api/queues/length')['active_queues']
    assert 'celery' in [queue['name'] for queue in queues], queues


def test_the_sdist_carries_templates_static_files_docs_and_license(tmp_path):
    source = copy_tracked_files(tmp_path / 'source')
    # ``build`` (a test extra) builds it in an isolated environment of its own.
    subprocess.run([sys.executable, '-m', 'build', '--sdist', '--outdir', str(tmp_path / 'dist'),
                    str(source)], check=True, timeout=600, capture_output=True)
    sdist = next((tmp_path / 'dist').glob('flower-*.tar.gz'))
    with tarfile.open(sdist) as archive:
        names = {member.name.split('/', 1)[1] for member in archive.getmembers()
                 if member.isfile() and '/' in member.name}
    for expected in ('LICENSE', 'README.md', 'setup.py', 'flower/templates/base.html',
                     'flower/static/css/flower.css', 'flower/static/js/flower.js',
                     'flower/static/favicon.svg', 'flower/api/openapi.json', 'docs/index.rst',
                     'docs/install.rst'):
        assert expected in names, expected

    venv = make_venv(tmp_path / 'venv')
    install(venv, sdist, tmp_path)
    installed = venv_python(venv, 'import flower, os; print(os.path.dirname(flower.__file__))')
    package = installed.stdout.strip()
    assert package.startswith(str(venv)), installed
    tracked = {name for name in names if name.startswith(('flower/templates/', 'flower/static/'))
               or name == 'flower/api/openapi.json'}
    missing = [name for name in tracked
               if not (Path(package) / name.removeprefix('flower/')).is_file()]
    assert missing == []
    shown = subprocess.run([str(venv / 'bin' / 'celery'), 'flower', '--help'], capture_output=True,
                           text=True, timeout=60, env=user_environment(), cwd=tmp_path)
    assert shown.returncode == 0 and '--port=INT' in shown.stdout, shown.stderr
