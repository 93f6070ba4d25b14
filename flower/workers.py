"""Worker summaries for the dashboard, derived from event state and inspect replies."""
import time

#: How long an inspect reply keeps a worker that sends no events counted as online.
INSPECT_FRESHNESS = 60.0

TASK_COUNTERS = (
    ('processed', 'task-received'),
    ('failed', 'task-failed'),
    ('succeeded', 'task-succeeded'),
    ('retried', 'task-retried'),
)


def _said_goodbye(worker, inspected):
    """The worker's last event is a worker-offline received after its last inspect reply.

    Celery's state empties the heartbeats on worker-offline, so without this a
    worker inspected shortly before its shutdown stayed "online" until the
    inspect reply went stale.
    """
    return (getattr(worker, 'type', None) == 'worker-offline'
            and (getattr(worker, 'local_received', None) or 0) >= inspected.get('timestamp', 0))


def _is_online(worker, inspected, now):
    if worker is not None and worker.heartbeats:
        return worker.alive
    if worker is not None and _said_goodbye(worker, inspected):
        return False
    return now - inspected.get('timestamp', 0) < INSPECT_FRESHNESS


def _active_count(worker, inspected):
    if worker is not None and worker.active is not None:
        return worker.active
    return len(inspected.get('active') or ())


def worker_rows(state, inspected_workers):
    """One dict per known worker, sorted by name: status, task counters, load average."""
    now = time.time()
    names = set(state.workers.keys()) | set(inspected_workers.keys())
    rows = []
    for name in sorted(names):
        worker = state.workers.get(name)
        inspected = inspected_workers.get(name, {})
        counter = state.counter.get(name, {})
        row = {
            'hostname': name,
            'status': _is_online(worker, inspected, now),
            'active': _active_count(worker, inspected),
            'loadavg': list(worker.loadavg) if worker is not None and worker.loadavg else None,
        }
        for column, event_type in TASK_COUNTERS:
            row[column] = counter.get(event_type, 0)
        rows.append(row)
    return rows


def totals(rows):
    """The totals row of the dashboard table."""
    summed = ('active',) + tuple(column for column, _ in TASK_COUNTERS)
    return {column: sum(row[column] for row in rows) for column in summed}
