"""flower started as a user starts it: its own process and process group, logs in a file.

``start_flower(argv, env=None, cwd=None)`` (a fixture) starts one and kills it at teardown.
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support.openapi import check_api_answer

CELERY = [sys.executable, '-m', 'celery']


class FlowerProcess:
    """``flower`` started as a user would, in its own process group.

    ``env`` adds to this process's environment (less its ``FLOWER_*``
    variables); a variable set to ``None`` there is left out.
    """

    def __init__(self, argv, log_path, env=None, cwd=None):
        environ = {key: value for key, value in os.environ.items()
                   if not key.startswith('FLOWER_')}
        environ.update(env or {})
        environ = {key: value for key, value in environ.items() if value is not None}
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=environ, cwd=cwd, start_new_session=True)

    def log(self):
        with open(self.log_path, encoding='utf-8', errors='replace') as log:
            return log.read()

    def wait_http(self, port, path='/healthcheck', timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"flower exited with {self.process.returncode}:\n{self.log()}")
            try:
                return http_get(port, path)
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"flower did not answer on port {port}:\n{self.log()}")

    def stop(self, signum=signal.SIGTERM, timeout=15):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture
def start_flower(artifacts_dir):
    processes = []

    def start(argv, **kwargs):
        log_path = os.path.join(artifacts_dir, f'flower-{len(processes)}.log')
        process = FlowerProcess(argv, log_path, **kwargs)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop(signal.SIGKILL)


def http_get(port, path, host='127.0.0.1'):
    status, _, body = http_fetch(port, path, host)
    return status, body


def http_fetch(port, path, host='127.0.0.1'):
    """GET ``path``: ``(status, Content-Type, body text)``."""
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request('GET', path)
        response = connection.getresponse()
        return response.status, response.getheader('Content-Type', ''), \
            response.read().decode('utf-8')
    finally:
        connection.close()


def wait_until(predicate, timeout=15, message='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


def get_json(port, path):
    """GET ``path`` of a flower on ``port``: its JSON answer, which must be a 200
    (and, from the API, match the API's OpenAPI document)."""
    status, content_type, body = http_fetch(port, path)
    assert status == 200, body
    check_api_answer('GET', path, status, content_type, body)
    return json.loads(body)
