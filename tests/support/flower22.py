"""Flower 2.2.0, the project we replace, installed from the package index for side-by-side tests.

``flower22_celery`` (session fixture): the ``celery`` program of a venv holding
``flower==2.2.0`` (made once per checkout under ``test-artifacts/``, reused while
it holds that version). ``start_flower22(broker_url, *flower_args, env=None)``
(fixture): a Flower 2.2.0 started as its users start it, answering on
``.port``, its API open (``FLOWER_UNAUTHENTICATED_API``), killed at teardown.
:func:`launch_flower22` starts one for fixtures of a wider scope (the caller
stops it). Its code is never imported into the test process, and it runs
without ``PYTHONPATH``, which would make it import this checkout's ``flower``.
"""
import fcntl
import os
import signal
import subprocess
import sys

import pytest

from tests.support.command import FlowerProcess
from tests.support.processes import REPO_DIR, free_port

FLOWER22_VERSION = '2.2.0'
VENV_DIR = os.path.join(REPO_DIR, 'test-artifacts', '_flower22-venv')


def _installed_version(python: str) -> str | None:
    # -I: neither PYTHONPATH nor the current directory, where a checkout of this project
    # (and its flower.egg-info) would answer for the venv's flower.
    done = subprocess.run([python, '-I', '-m', 'pip', 'show', 'flower'], capture_output=True,
                          text=True, timeout=120)
    for line in done.stdout.splitlines():
        if line.startswith('Version:'):
            return line.partition(':')[2].strip()
    return None


def flower22_venv() -> str:
    """The ``celery`` program of the Flower 2.2.0 venv, made first if it is missing.

    pytest-xdist workers may all ask at once: a lock file makes one of them build
    it while the others wait, then find it made.
    """
    python = os.path.join(VENV_DIR, 'bin', 'python')
    os.makedirs(os.path.dirname(VENV_DIR), exist_ok=True)
    with open(VENV_DIR + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(python) or _installed_version(python) != FLOWER22_VERSION:
            subprocess.run([sys.executable, '-m', 'venv', '--clear', VENV_DIR], check=True,
                           timeout=300)
            done = subprocess.run([python, '-m', 'pip', 'install', '-q',
                                   f'flower=={FLOWER22_VERSION}', 'redis', 'packaging'],
                                  capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, done.stdout + done.stderr
    return os.path.join(VENV_DIR, 'bin', 'celery')


@pytest.fixture(scope='session')
def flower22_celery() -> str:
    return flower22_venv()


def launch_flower22(celery_program: str, broker_url: str, log_path: str, *flower_args: str,
                    celery_args: tuple[str, ...] = (), env: dict | None = None,
                    cwd: str | None = None) -> FlowerProcess:
    """A Flower 2.2.0 answering on ``.port`` (``celery_args`` go before ``flower``, as
    ``-A tasks``); stop it with ``.stop()``."""
    port = free_port()
    argv = [celery_program, '-b', broker_url, *celery_args, 'flower', f'--port={port}',
            '--address=127.0.0.1', *flower_args]
    process = FlowerProcess(argv, log_path, cwd=cwd, env={
        'FLOWER_UNAUTHENTICATED_API': 'true', 'PYTHONPATH': None, **(env or {})})
    process.port = port
    try:
        process.wait_http(port)
    except BaseException:
        process.stop(signal.SIGKILL)
        raise
    return process


@pytest.fixture
def start_flower22(flower22_celery, artifacts_dir):
    started = []

    def start(broker_url: str, *flower_args: str, env: dict | None = None,
              cwd: str | None = None) -> FlowerProcess:
        log_path = os.path.join(artifacts_dir, f'flower22-{len(started)}.log')
        process = launch_flower22(flower22_celery, broker_url, log_path, *flower_args,
                                  env=env, cwd=cwd)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop(signal.SIGKILL)


if __name__ == '__main__':  # scripts/test.sh makes the venv with the other test dependencies
    print(flower22_venv())
