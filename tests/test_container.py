"""The container image, built from this tree and run with podman.

One image is built per test session (``podman build --format docker``, so
that HEALTHCHECK is kept) and every test runs it with ``--network=host``
against brokers and real ``celery worker`` processes on the host.
``scripts/podman-setup.sh`` (run by ``scripts/test.sh``) makes podman work on
the test machines. The tests are skipped only when podman cannot run a
container at all; an image that does not build or does not work fails them.
"""
import os
import shutil
import subprocess
import uuid

import pytest
import requests
from celery import Celery

from tests.support.host_network import network_changing
from tests.support.processes import REPO_DIR, free_port
from tests.support.rabbitmq import MANAGEMENT_API, amqp_url
from tests.support.waiting import wait_for

BASE_IMAGE = 'docker.io/library/python:3.11-slim'
HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
AUTH = ('admin', 'container-secret')
SETUP_HINT = 'scripts/podman-setup.sh (run by scripts/test.sh) sets podman up'


def podman(*args, timeout=120, check=True):
    """Run ``podman args``; on failure with ``check``, fail the test with its output."""
    result = subprocess.run(['podman', *args], capture_output=True, text=True, timeout=timeout,
                            check=False)
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {result.returncode}:\n"
                    f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope='session')
def podman_runs_containers():
    """Skip, loudly, where podman cannot run a container at all."""
    if shutil.which('podman') is None:
        pytest.skip(f"CONTAINER TESTS NOT RUN: podman is not installed; {SETUP_HINT}")
    probe = podman('run', '--rm', '--network=host', BASE_IMAGE, 'true', check=False)
    if probe.returncode != 0:
        pytest.skip(f"CONTAINER TESTS NOT RUN: podman cannot run {BASE_IMAGE} here "
                    f"({probe.stderr.strip()[-500:]}); {SETUP_HINT}")


@pytest.fixture(scope='session')
def flower_image(podman_runs_containers):
    """The image built from this tree, tagged for this session only, removed at the end."""
    tag = f'localhost/flower-test:{uuid.uuid4().hex[:10]}'
    podman('build', '--format', 'docker', '--network=host',
           '-v', f'{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro', '-t', tag, REPO_DIR, timeout=900)
    yield tag
    podman('rmi', '--force', tag, check=False)


class Container:
    """A podman container, by name."""

    def __init__(self, name):
        self.name = name

    @classmethod
    def run(cls, image, *args, env=None, volume=None, read_only=False):
        """``podman run -d --network=host image args``."""
        container = cls(f'flower-test-{uuid.uuid4().hex[:10]}')
        options = ['--network=host']
        if read_only:
            options.append('--read-only')
        for key, value in (env or {}).items():
            options += ['-e', f'{key}={value}']
        if volume:
            options += ['-v', volume]
        podman('run', '-d', '--name', container.name, *options, image, *args)
        return container

    def logs(self):
        result = podman('logs', self.name, check=False)
        return (result.stdout + result.stderr)[-4000:]

    def running(self):
        state = podman('inspect', '--format', '{{.State.Running}}', self.name, check=False)
        return state.stdout.strip() == 'true'

    def wait_answering(self, url, timeout=60):
        """Wait until ``url`` answers 200; fail with the logs if the container exits first."""
        def answers():
            if not self.running():
                pytest.fail(f"container {self.name} exited before answering {url}:\n"
                            f"{self.logs()}")
            try:
                return requests.get(url, timeout=5).status_code == 200
            except requests.ConnectionError:
                return False
        try:
            wait_for(answers, timeout=timeout, interval=0.5, what=url)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; logs of {self.name}:\n{self.logs()}") from None

    def health(self):
        """Run the image's HEALTHCHECK now: ``(status, output of the last probe)``."""
        podman('healthcheck', 'run', self.name, check=False)
        status = podman('inspect', '--format', '{{.State.Health.Status}}', self.name)
        output = podman('inspect', '--format',
                        '{{range .State.Health.Log}}{{.Output}}\n{{end}}', self.name)
        return status.stdout.strip(), output.stdout.strip().splitlines()[-1:]

    def stop(self):
        podman('stop', '--time', '20', self.name)

    def remove(self):
        podman('rm', '--force', '--time', '5', self.name, check=False)


@pytest.fixture
def containers(flower_image):
    """``containers(*args, **kw)`` runs the image (``Container.run``); removed at teardown."""
    started = []

    def run(*args, **kw):
        container = Container.run(flower_image, *args, **kw)
        started.append(container)
        return container

    yield run
    for container in started:
        container.remove()


def api(base_url, path):
    response = requests.get(base_url + path, auth=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_task(base_url, task_id, state='SUCCESS'):
    """The task's entry in ``/api/tasks`` once it is in ``state``."""
    def task_in_state():
        task = api(base_url, '/api/tasks').get(task_id)
        return task if task and task['state'] == state else None
    return wait_for(task_in_state, timeout=30, interval=0.5,
                    what=f"task {task_id} {state} in /api/tasks")


def test_image_monitors_a_redis_broker_and_reports_healthy(
        containers, broker_url, worker_factory, celery_client):
    port = free_port()
    flower = containers(f'--port={port}', f'--basic_auth={AUTH[0]}:{AUTH[1]}',
                        env={'CELERY_BROKER_URL': broker_url})
    base_url = f'http://127.0.0.1:{port}'
    flower.wait_answering(base_url + '/healthcheck')
    assert requests.get(base_url + '/healthcheck', timeout=5).text == 'OK'
    assert requests.get(base_url + '/api/tasks', timeout=5).status_code == 401
    worker = worker_factory(broker_url)

    result = celery_client(broker_url).send_task('tasks.add', (2, 3))
    assert result.get(timeout=30) == 5
    task = wait_for_task(base_url, result.id)
    assert task['name'] == 'tasks.add'
    assert task['worker'] == worker.hostname
    assert worker.hostname in api(base_url, '/api/workers?refresh=1')

    status, output = flower.health()
    assert status == 'healthy', output
    assert output == [f'127.0.0.1:{port}/healthcheck: OK']


def test_healthcheck_follows_flower_port_and_url_prefix_from_the_environment(
        containers, broker_url):
    port = free_port()
    flower = containers(env={'CELERY_BROKER_URL': broker_url, 'FLOWER_PORT': str(port),
                             'FLOWER_URL_PREFIX': '/monitor/'})
    flower.wait_answering(f'http://127.0.0.1:{port}/monitor/healthcheck')

    status, output = flower.health()
    assert status == 'healthy', output
    assert output == [f'127.0.0.1:{port}/monitor/healthcheck: OK']


def management_api_answers():
    try:
        return requests.get(MANAGEMENT_API + 'overview', timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def test_image_reads_rabbitmq_queue_lengths_from_the_management_api(
        containers, vhost, worker_factory):
    wait_for(management_api_answers, timeout=30, interval=0.5, what="RabbitMQ's management API")
    url = amqp_url(vhost)
    port = free_port()
    flower = containers(f'--port={port}', f'--broker_api={MANAGEMENT_API}',
                        env={'CELERY_BROKER_URL': url, 'FLOWER_UNAUTHENTICATED_API': 'true'})
    base_url = f'http://127.0.0.1:{port}'
    flower.wait_answering(base_url + '/healthcheck')
    # One process, one message prefetched: the first task runs (acknowledged
    # when it starts), the second waits unacknowledged, the third stays ready.
    worker = worker_factory(url, concurrency=1, result_backend='rpc://',
                            extra_args=['--prefetch-multiplier', '1'])
    sender = Celery('container-test', broker=url, set_as_current=False)
    for _ in range(3):
        sender.send_task('tasks.sleep', (60,), queue='celery')

    expected = [{'name': 'celery', 'messages': 2, 'messages_ready': 1,
                 'messages_unacknowledged': 1, 'consumers': 1}]
    last = []

    counts = ('name', 'messages', 'messages_ready', 'messages_unacknowledged', 'consumers')

    def lengths_match():
        # Each queue also carries the rest of the management API's fields (vhost, node...).
        last[:] = [[{field: queue[field] for field in counts}
                    for queue in api(base_url, '/api/queues/length')['active_queues']]]
        return last[0] == expected
    try:
        wait_for(lengths_match, timeout=45, interval=1, what=f"queue lengths {expected}")
    except AssertionError:
        raise AssertionError(f"queue lengths stayed {last[0]}, expected {expected}") from None
    assert worker.hostname in api(base_url, '/api/workers?refresh=1')
    status, output = flower.health()
    assert status == 'healthy', output
    sender.close()
    worker.kill()  # rather than wait for its 60 s tasks


@pytest.fixture
def data_volume(podman_runs_containers):
    """A fresh named podman volume, removed (with any container still using it) at teardown."""
    name = f'flower-test-{uuid.uuid4().hex[:10]}'
    podman('volume', 'create', name)
    yield name
    podman('volume', 'rm', '--force', name, check=False)


def test_read_only_image_keeps_persistent_history_on_a_volume_across_containers(
        data_volume, containers, broker_url, worker_factory, celery_client):
    port = free_port()
    options = {'env': {'CELERY_BROKER_URL': broker_url, 'FLOWER_UNAUTHENTICATED_API': 'true'},
               'volume': f'{data_volume}:/data', 'read_only': True}
    arguments = (f'--port={port}', '--persistent', '--db=/data/flower.db')
    base_url = f'http://127.0.0.1:{port}'
    first = containers(*arguments, **options)
    first.wait_answering(base_url + '/healthcheck')
    assert first.health()[0] == 'healthy'
    worker = worker_factory(broker_url)
    result = celery_client(broker_url).send_task('tasks.mul', (6, 7))
    assert result.get(timeout=30) == 42
    wait_for_task(base_url, result.id)
    worker.stop()
    first.stop()

    # A new container on the same volume: the history can only come from the file.
    second = containers(*arguments, **options)
    second.wait_answering(base_url + '/healthcheck')
    task = api(base_url, '/api/tasks').get(result.id)
    assert task is not None, f"task {result.id} lost with the container:\n{second.logs()}"
    assert (task['name'], task['state'], task['worker']) == ('tasks.mul', 'SUCCESS', worker.hostname)
    assert second.health()[0] == 'healthy'


COMPOSE_FILE = os.path.join(REPO_DIR, 'examples', 'docker-compose.yml')
COMPOSE_REDIS_IMAGE = 'docker.io/library/redis:7'


@pytest.fixture
def compose_project(flower_image):
    """``examples/docker-compose.yml`` brought up with podman-compose on the session's image."""
    if shutil.which('podman-compose') is None:
        pytest.skip(f"COMPOSE EXAMPLE NOT RUN: podman-compose is not installed; {SETUP_HINT}")
    if podman('image', 'exists', COMPOSE_REDIS_IMAGE, check=False).returncode != 0:
        pytest.skip(f"COMPOSE EXAMPLE NOT RUN: no {COMPOSE_REDIS_IMAGE} image; {SETUP_HINT}")
    name = f'flowertest{uuid.uuid4().hex[:8]}'
    port = free_port()
    env = dict(os.environ, FLOWER_IMAGE=flower_image, FLOWER_HOST_PORT=str(port))

    def compose(*args, check=True):
        result = subprocess.run(['podman-compose', '-p', name, '-f', COMPOSE_FILE, *args],
                                capture_output=True, text=True, env=env, timeout=300, check=False)
        if check and result.returncode != 0:
            pytest.fail(f"podman-compose {' '.join(args)} exited {result.returncode}:\n"
                        f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
        return result

    with network_changing():  # a bridge network and its veth pairs come up
        compose('up', '-d')
    yield name, f'http://127.0.0.1:{port}'
    with network_changing():
        compose('down', '--volumes', '--timeout', '5', check=False)
        podman('network', 'rm', '--force', f'{name}_default', check=False)  # down leaves it


def test_the_compose_example_runs_redis_a_worker_and_flower(compose_project):
    name, base_url = compose_project
    flower = Container(f'{name}_flower_1')
    flower.wait_answering(base_url + '/healthcheck')
    compose_auth = ('admin', 'change-me')
    workers = wait_for(
        lambda: requests.get(base_url + '/api/workers?refresh=1', auth=compose_auth,
                             timeout=30).json(),
        timeout=60, interval=1, what="the compose worker in /api/workers")
    assert len(workers) == 1
    sent = podman('exec', f'{name}_worker_1', 'celery', '-A', 'tasks', '--workdir', '/app',
                  'call', 'tasks.add', '--args=[2, 3]')
    task_id = sent.stdout.strip()

    def task_done():
        task = requests.get(base_url + '/api/tasks', auth=compose_auth, timeout=30).json()
        return task.get(task_id, {}).get('state') == 'SUCCESS' and task[task_id]
    task = wait_for(task_done, timeout=30, interval=0.5, what=f"task {task_id} in /api/tasks")
    assert (task['name'], task['result'], task['worker']) == ('tasks.add', '5', next(iter(workers)))
    assert flower.health()[0] == 'healthy'
