"""End-to-end check of the live demo launcher (``examples/demo.py``).

Runs the real thing: a private Redis, two workers, the task stream and
``celery flower``; then Ctrl-C's it and checks nothing is left behind.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request

from tests.support.processes import (
    REPO_DIR, free_port, port_is_open, session_members,
)

DEMO = os.path.join(REPO_DIR, 'examples', 'demo.py')


def _read(path):
    with open(path, 'rb') as fh:
        return fh.read().decode('utf-8', 'replace')


def _healthcheck(port):
    url = f'http://127.0.0.1:{port}/healthcheck'
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode().strip()
    except OSError:
        return None, None


def _kill_session(sid):
    """Leave nothing behind, even when the test failed half-way."""
    for pid in session_members(sid):
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_demo_starts_cluster_and_stops_cleanly_on_ctrl_c(artifacts_dir):
    port, redis_port = free_port(), free_port()
    log_path = os.path.join(artifacts_dir, 'demo-output.log')
    with open(log_path, 'wb') as log:
        demo = subprocess.Popen(
            [sys.executable, DEMO, '--port', str(port),
             '--redis-port', str(redis_port), '--log-dir', artifacts_dir],
            cwd=REPO_DIR, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    sid = demo.pid  # session leader: the demo's children share its session
    try:
        # Flower is only started once both workers answered a ping, so a
        # healthy Flower means the whole cluster is up.
        deadline = time.monotonic() + 60
        while _healthcheck(port) != (200, 'OK'):
            assert demo.poll() is None, (
                f'demo exited early ({demo.returncode}):\n{_read(log_path)}')
            assert time.monotonic() < deadline, (
                f'Flower not healthy after 60 s:\n{_read(log_path)}')
            time.sleep(0.5)
        assert port_is_open(redis_port)
        output = _read(log_path)
        assert 'demo1@' in output and 'demo2@' in output
        # Broker, 2 workers (with 2 pool processes each) and Flower at least.
        assert len(session_members(sid)) >= 1 + 1 + 2 * 3 + 1

        time.sleep(2)  # let a few demo tasks flow

        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        try:
            code = demo.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f'demo still running 30 s after SIGINT:\n{_read(log_path)}')
        assert code == 0, _read(log_path)
        assert session_members(sid) == [], _read(log_path)
        assert not port_is_open(redis_port)
        assert not port_is_open(port)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        _kill_session(sid)
