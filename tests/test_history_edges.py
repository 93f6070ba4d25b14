"""Two edges of the ``--persistent`` history, with the real command and a real file.

* Restart: requests made while a 100,000-task history loads are answered
  promptly (the load gives the IO loop back every few milliseconds), and
  ``/healthcheck?verbose=1`` says how far it is.
* Full disk: on a tmpfs filled up, the log names the real cause once, flower
  keeps serving from memory, counts the failed writes and the pending
  changes in ``/metrics``, and writes everything once space is freed, so a
  kill -9 after that loses nothing.
"""
import os
import re
import signal
import subprocess
import time

import pytest

from tests.support.command import CELERY, FlowerProcess, get_json, http_get, wait_until
from tests.support.history import write_history
from tests.support.processes import free_port

OPEN_API = {'FLOWER_UNAUTHENTICATED_API': 'true'}


def metric(port, name):
    status, body = http_get(port, '/metrics')
    assert status == 200
    found = re.search(rf'^{name} ([0-9.e+]+)$', body, re.M)
    assert found, f'{name} not in /metrics'
    return float(found.group(1))


def start(tmp_path, broker_url, db, log_name, *extra):
    port = free_port()
    argv = CELERY + ['-b', broker_url, 'flower', f'--port={port}', '--address=127.0.0.1',
                     '--persistent', f'--db={db}', *extra]
    flower = FlowerProcess(argv, tmp_path / log_name, env=OPEN_API)
    flower.wait_http(port, timeout=60)
    return flower, port


def test_requests_made_while_a_large_history_loads_are_answered_promptly(tmp_path, broker_url):
    db = tmp_path / 'history.db'
    write_history(db, 100_000)
    flower, port = start(tmp_path, broker_url, db, 'flower.log')
    try:
        during, progress = [], []
        while True:
            status = get_json(port, '/healthcheck?verbose=1')
            history = status['history']
            progress.append(history['tasks_loaded'])
            if not history['loading']:
                break
            began = time.perf_counter()
            answered, _ = http_get(port, '/api/tasks?limit=100')
            during.append(time.perf_counter() - began)
            assert answered == 200
        assert history['tasks_loaded'] == history['tasks_to_load'] == 100_000
        assert status['status'] == 'OK' and history['writing'] == 'ok'
        assert len(during) >= 3, 'the load ended before requests could be made'
        assert progress == sorted(progress) and progress[0] < 100_000
        during.sort()
        p95 = during[min(len(during) - 1, int(len(during) * 0.95))]
        # The target is 50 ms (benchmarks/restore.py measures it); 10x for a busy CI machine.
        # Loading 5,000 tasks per IO loop turn, as before, made these 300-700 ms.
        assert p95 < 0.5, f'p95 {p95 * 1000:.0f} ms over {len(during)} requests'
        assert len(get_json(port, '/api/tasks?limit=100')) == 100
    finally:
        flower.stop()


def test_healthcheck_verbose_without_a_history_and_with_a_bad_value(tmp_path, broker_url):
    port = free_port()
    argv = CELERY + ['-b', broker_url, 'flower', f'--port={port}', '--address=127.0.0.1']
    flower = FlowerProcess(argv, tmp_path / 'flower.log', env=OPEN_API)
    try:
        flower.wait_http(port)
        assert get_json(port, '/healthcheck?verbose=1') == {'status': 'OK', 'history': None}
        assert http_get(port, '/healthcheck?verbose=0') == (200, 'OK')
        status, body = http_get(port, '/healthcheck?verbose=maybe')
        assert status == 400 and 'verbose' in body
    finally:
        flower.stop()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs: a filesystem that can really fill up."""
    mount_point = tmp_path / 'small-disk'
    mount_point.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', str(mount_point)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f'cannot mount a tmpfs (needs root): {mounted.stderr}'
    yield mount_point
    subprocess.run(['umount', '-l', str(mount_point)], check=False)


def fill(directory, leave=16 * 1024):
    """Fill the filesystem of ``directory`` up to ``leave`` bytes; return the filler's path."""
    filler = directory / 'filler'
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    with open(filler, 'wb') as out:
        out.write(b'\0' * max(0, free - leave))
    return filler


def test_a_full_disk_is_logged_once_with_its_cause_and_nothing_is_lost(
        tmp_path, small_disk, broker_url, worker_factory, celery_client):
    db = small_disk / 'history.db'
    flower, port = start(tmp_path, broker_url, db, 'flower-1.log')
    try:
        worker_factory(broker_url, pool='threads', concurrency=4)
        client = celery_client(broker_url)
        first = client.send_task('tasks.add', (1, 2))
        assert first.get(timeout=30) == 3
        wait_until(lambda: get_json(port, '/healthcheck?verbose=1')['history']['pending_changes'] == 0
                   and first.id in get_json(port, '/api/tasks'), message='the first task written')

        filler = fill(small_disk)
        payload = 'x' * 20_000
        results = [client.send_task('tasks.echo', (f'{number}-{payload}',)) for number in range(60)]
        for result in results:
            result.get(timeout=60)
        wait_until(lambda: metric(port, 'flower_history_write_errors_total') >= 2,
                   timeout=30, message='failed history writes counted')
        assert metric(port, 'flower_history_pending_changes') > 0
        assert get_json(port, '/healthcheck?verbose=1')['history']['writing'] == 'failing'
        listed = get_json(port, '/api/tasks')
        assert all(result.id in listed for result in results), 'served from memory meanwhile'

        log = flower.log()
        assert log.count('database or disk is full') == 1, log
        assert 'cannot rollback' not in log and 'Traceback' not in log, log

        filler.unlink()
        wait_until(lambda: 'works again' in flower.log(), timeout=30, message='writing again')
        wait_until(lambda: metric(port, 'flower_history_pending_changes') == 0, timeout=30,
                   message='pending changes written')
        assert get_json(port, '/healthcheck?verbose=1')['history']['writing'] == 'ok'
        assert flower.log().count('database or disk is full') == 1
        client.close()
    finally:
        flower.stop(signal.SIGKILL)

    restarted, port = start(tmp_path, broker_url, db, 'flower-2.log')
    try:
        wait_until(lambda: not get_json(port, '/healthcheck?verbose=1')['history']['loading'],
                   message='the history loaded')
        listed = get_json(port, '/api/tasks')
        for result in [first, *results]:
            assert listed[result.id]['state'] == 'SUCCESS', result.id
        assert listed[results[-1].id]['result'].startswith("'59-xxx")
    finally:
        restarted.stop()
