"""``celery flower --persistent`` as a user runs it. Killed with SIGKILL under real
workers, then restarted: every task that finished more than a second before the kill
comes back with all its fields, and the dashboard counters with it. Given a garbage
``--db`` file: one warning, the file moved aside, a fresh history that captures."""
import os
import signal
import time

from tests.support.processes import free_port
from tests.support.command import CELERY, FlowerProcess, get_json, wait_until

#: (task name, args) sent to the worker; ``tasks.error`` fails.
TASKS = [('tasks.add', (number, number)) for number in range(12)] + [
    ('tasks.echo', ('hello world',)), ('tasks.error', ('boom',)), ('tasks.echo', ('needle',))]


def counters(port, hostname):
    [row] = [row for row in get_json(port, '/workers?json=1')['data']
             if row['hostname'] == hostname]
    return {name: row[name] for name in ('processed', 'failed', 'succeeded', 'retried')}


def test_kill_9_then_restart_restores_finished_tasks_and_counters(
        tmp_path, broker_url, worker_factory, celery_client):
    db = tmp_path / 'history.db'
    port = free_port()
    argv = CELERY + ['-b', broker_url, 'flower', f'--port={port}', '--address=127.0.0.1',
                     '--persistent', f'--db={db}']
    env = {'FLOWER_UNAUTHENTICATED_API': 'true'}
    flower = FlowerProcess(argv, tmp_path / 'flower-1.log', env=env)
    try:
        flower.wait_http(port)
        worker = worker_factory(broker_url, pool='threads', concurrency=2)
        client = celery_client(broker_url)
        ids = [client.send_task(name, args).id for name, args in TASKS]

        def all_finished():
            tasks = get_json(port, '/api/tasks')
            return all(tasks.get(task_id, {}).get('state') in ('SUCCESS', 'FAILURE')
                       for task_id in ids) and tasks

        wait_until(all_finished, timeout=30, message='every task to finish')
        time.sleep(1.5)  # the tasks finished more than a second before the kill
        # Read just before the kill: the client's task-sent events can come after the
        # worker's, so a task's fields may still grow after it finished.
        before = get_json(port, '/api/tasks')
        before_counters = counters(port, worker.hostname)
        assert before_counters['processed'] == len(TASKS) and before_counters['failed'] == 1
        os.killpg(flower.process.pid, signal.SIGKILL)
        flower.process.wait(10)
    finally:
        flower.stop(signal.SIGKILL)

    restarted = FlowerProcess(argv, tmp_path / 'flower-2.log', env=env)
    try:
        restarted.wait_http(port)
        after = get_json(port, '/api/tasks')
        for task_id in ids:
            assert after[task_id] == before[task_id]
        assert after[ids[-2]]['state'] == 'FAILURE' and 'boom' in after[ids[-2]]['traceback']
        assert after[ids[0]]['worker'] == worker.hostname and after[ids[0]]['result'] == '0'
        assert counters(port, worker.hostname) == before_counters
        found = get_json(port, '/api/tasks?search=needle')
        assert list(found) == [ids[-1]]
        assert 'moved to' not in restarted.log()
    finally:
        restarted.stop()


def test_the_command_with_a_garbage_db_warns_once_moves_it_aside_and_starts_fresh(
        tmp_path, broker_url, worker_factory, celery_client):
    db = tmp_path / 'history.db'
    garbage = os.urandom(20_000)
    db.write_bytes(garbage)
    port = free_port()
    argv = CELERY + ['-b', broker_url, 'flower', f'--port={port}', '--address=127.0.0.1',
                     '--persistent', f'--db={db}']
    flower = FlowerProcess(argv, tmp_path / 'flower.log',
                           env={'FLOWER_UNAUTHENTICATED_API': 'true'})
    try:
        flower.wait_http(port)
        worker_factory(broker_url, pool='threads', concurrency=1)
        task_id = celery_client(broker_url).send_task('tasks.add', (2, 3)).id
        task = wait_until(lambda: get_json(port, '/api/tasks').get(task_id, {}).get('result'),
                          timeout=30, message='the task in the fresh history')
        assert task == '5'
        warnings = [line for line in flower.log().splitlines() if 'moved to' in line]
        assert len(warnings) == 1 and str(db) in warnings[0], flower.log()
        assert 'Traceback' not in flower.log()
    finally:
        flower.stop()
    [aside] = [path for path in tmp_path.iterdir() if path.name.startswith('history.db.unreadable-')]
    assert aside.read_bytes() == garbage
