"""End-to-end check of the README's first command, ``bash scripts/demo.sh``.

Runs the real thing as a user does, from the checkout: the demo's own venv
(flower's wheel, no test extras: here the session's ``user_venv``), a
private Redis, two workers, the task stream and that venv's ``celery
flower``; then Ctrl-C's it and checks nothing is left behind.
"""

import os
import signal
import subprocess
import time
import urllib.request

from tests.support.processes import (
    REPO_DIR, free_port, port_is_open, session_members,
)

DEMO = os.path.join(REPO_DIR, 'scripts', 'demo.sh')


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


def _command_line(pid):
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as fh:
            return fh.read().decode().split('\0')
    except OSError:
        return []


def test_demo_starts_cluster_and_stops_cleanly_on_ctrl_c(artifacts_dir, user_venv):
    port, redis_port = free_port(), free_port()
    log_path = os.path.join(artifacts_dir, 'demo-output.log')
    with open(log_path, 'wb') as log:
        env = {key: value for key, value in os.environ.items()
               if key not in ('PYTHONPATH', 'VIRTUAL_ENV')}
        env['FLOWER_DEMO_VENV'] = str(user_venv)
        demo = subprocess.Popen(
            ['bash', DEMO, '--port', str(port),
             '--redis-port', str(redis_port), '--log-dir', artifacts_dir],
            cwd=REPO_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    sid = demo.pid  # session leader: the demo's children share its session
    try:
        # Flower is only started once both workers answered a ping, so a
        # healthy Flower means the whole cluster is up.
        deadline = time.monotonic() + 180  # the demo builds and installs flower's wheel first
        while _healthcheck(port) != (200, 'OK'):
            assert demo.poll() is None, (
                f'demo exited early ({demo.returncode}):\n{_read(log_path)}')
            assert time.monotonic() < deadline, (
                f'Flower not healthy after 180 s:\n{_read(log_path)}')
            time.sleep(0.5)
        assert port_is_open(redis_port)
        output = _read(log_path)
        assert 'demo1@' in output and 'demo2@' in output
        # Broker, 2 workers (with 2 pool processes each) and Flower at least.
        assert len(session_members(sid)) >= 1 + 1 + 2 * 3 + 1
        # Everything runs on the demo venv's interpreter, Flower from its celery script.
        command_lines = [_command_line(pid) for pid in session_members(sid)]
        pythons = {line[0] for line in command_lines if line and 'python' in line[0]}
        assert pythons == {str(user_venv / 'bin' / 'python')}, command_lines
        assert any(line[1:2] == [str(user_venv / 'bin' / 'celery')] and 'flower' in line
                   for line in command_lines), command_lines

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
