"""Synthetic ``--persistent`` histories, written straight into an SQLite file."""
import time
import uuid

from flower.store import TASK_COLUMNS, TaskStore

TRACEBACK = 'Traceback (most recent call last):\n' + '  File "tasks.py", line 12, in run\n' * 8


def write_history(path, count: int, batch: int = 20000) -> None:
    """``count`` finished tasks, one in ten failed with a traceback, one a second up to now."""
    store = TaskStore(str(path))
    start = time.time() - count
    rows = []
    for seq in range(count):
        failed = seq % 10 == 0
        at = start + seq
        fields = {
            'uuid': str(uuid.uuid4()), 'seq': seq, 'name': f'tasks.job{seq % 20}',
            'state': 'FAILURE' if failed else 'SUCCESS', 'worker': f'w{seq % 4}@bench',
            'received': at, 'started': at + 0.01, 'timestamp': at + 0.02, 'runtime': 0.01,
            'args': f'({seq}, "order-{seq}")', 'kwargs': "{'user': 'u%d'}" % seq,
            'result': None if failed else f"'ok-{seq}'",
            'exception': "ValueError('bad')" if failed else None,
            'traceback': TRACEBACK if failed else None, 'clock': seq,
            'failed' if failed else 'succeeded': at + 0.02,
        }
        rows.append([fields.get(column) for column in TASK_COLUMNS])
        if len(rows) == batch:
            store.write(tasks=rows)
            rows = []
    store.write(tasks=rows)
    store.close()
