"""What the pages show about workers, derived from event state and inspect replies.

The dashboard's rows and totals, one worker's detail page, and forgetting
workers that have been offline for too long.
"""
import time
from collections.abc import Callable, Mapping
from typing import Any

from celery.events.state import Worker

from flower.state import EventsState
from flower.utils.masking import mask_worker_info

#: Inspect replies by worker name, then by method (see :class:`flower.inspector.Inspector`).
Inspected = Mapping[str, dict[str, Any]]

#: How long an inspect reply keeps a worker that sends no events counted as online.
INSPECT_FRESHNESS = 60.0

#: How much later than the worker sent it an inspect reply may be recorded: the
#: inspector records replies once every method's timeout has passed.
INSPECT_REPLY_DELAY = 5.0

TASK_COUNTERS = (
    ('processed', 'task-received'),
    ('failed', 'task-failed'),
    ('succeeded', 'task-succeeded'),
    ('retried', 'task-retried'),
)


def _said_goodbye(worker: Worker, inspected: dict[str, Any]) -> bool:
    """The worker's last event is a worker-offline, and no inspect reply came after it.

    Celery's state empties the heartbeats on worker-offline, so without this a
    worker inspected shortly before its shutdown stayed "online" until the
    inspect reply went stale. A reply recorded just after the goodbye was sent
    before it (see :data:`INSPECT_REPLY_DELAY`): the worker is still gone.
    """
    goodbye = getattr(worker, 'local_received', None) or 0
    return (getattr(worker, 'type', None) == 'worker-offline'
            and goodbye + INSPECT_REPLY_DELAY >= inspected.get('timestamp', 0))


def _is_online(worker: Worker | None, inspected: dict[str, Any], now: float) -> bool:
    if worker is not None and worker.heartbeats:
        return worker.alive
    if worker is not None and _said_goodbye(worker, inspected):
        return False
    return now - inspected.get('timestamp', 0) < INSPECT_FRESHNESS


def _active_count(worker: Worker | None, inspected: dict[str, Any]) -> int:
    if worker is not None and worker.active is not None:
        return worker.active
    return len(inspected.get('active') or ())


def _last_seen(worker: Worker | None, inspected: dict[str, Any]) -> float | None:
    """When Flower last heard from the worker: an event or an inspect reply."""
    moments = [inspected.get('timestamp') or 0]
    if worker is not None:
        moments.append(getattr(worker, 'local_received', None) or 0)
        moments.extend(worker.heartbeats[-1:])
    return max(moments) or None


def _worker(state: EventsState, name: str) -> Worker | None:
    """Worker ``name`` of the state, read without making it the most recently used: the
    state's cache of workers is kept in the order events touch them, and reading every
    worker for a page costs a lock and a move each otherwise."""
    return state.workers.data.get(name)


def _known_names(state: EventsState, inspected_workers: Inspected) -> set[str]:
    return set(state.workers.keys()) | set(inspected_workers.keys())


def is_known(state: EventsState, inspected_workers: Inspected, name: str) -> bool:
    """True if Flower has heard of worker ``name``, through events or inspection."""
    return name in state.workers or name in inspected_workers


def expected_repliers(state: EventsState, inspected_workers: Inspected,
                      surveyed: bool) -> set[str] | None:
    """The workers a refresh of every worker may stop waiting for once they replied, or
    ``None`` to wait for replies until the inspect timeout passes without one.

    Only heartbeats tell Flower which workers are there without asking them. So
    a refresh stops early only once an inspection of every worker has waited
    its whole timeout (``surveyed``: it finds the workers that send none), and
    only while every worker Flower knows sends heartbeats or said goodbye: a
    worker known only from inspection hints at others Flower has not heard of.
    The workers expected are then those online by their heartbeats; one whose
    heartbeats stopped is not waited for (its reply is kept if it comes first).
    """
    if not surveyed:
        return None
    expected = set()
    for name in _known_names(state, inspected_workers):
        worker = _worker(state, name)
        inspected = inspected_workers.get(name, {})
        if worker is not None and worker.heartbeats:
            if worker.alive:
                expected.add(name)
        elif worker is None or not _said_goodbye(worker, inspected):
            return None
    return expected or None


def worker_row(state: EventsState, inspected_workers: Inspected, name: str,
               now: float | None = None) -> dict[str, Any]:
    """The dashboard row of one worker: status, task counters, load average, last seen."""
    now = time.time() if now is None else now
    worker = _worker(state, name)
    inspected = inspected_workers.get(name, {})
    counter = state.counter.get(name, {})
    row = {
        'hostname': name,
        'status': _is_online(worker, inspected, now),
        'active': _active_count(worker, inspected),
        'loadavg': list(worker.loadavg) if worker is not None and worker.loadavg else None,
        'last_seen': _last_seen(worker, inspected),
    }
    for column, event_type in TASK_COUNTERS:
        row[column] = counter.get(event_type, 0)
    return row


def worker_rows(state: EventsState, inspected_workers: Inspected) -> list[dict[str, Any]]:
    """One dict per known worker, sorted by name (see :func:`worker_row`)."""
    now = time.time()
    return [worker_row(state, inspected_workers, name, now)
            for name in sorted(_known_names(state, inspected_workers))]


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The totals row of the dashboard table."""
    summed = ('active',) + tuple(column for column, _ in TASK_COUNTERS)
    return {column: sum(row[column] for row in rows) for column in summed}


def long_offline_workers(state: EventsState, inspected_workers: Inspected, max_age: float,
                         now: float | None = None) -> list[str]:
    """The workers offline and unheard of for more than ``max_age`` seconds, by name.

    Only says which: forgetting them is the application's job
    (:meth:`flower.app.Flower.forget_worker`).
    """
    now = time.time() if now is None else now
    names = []
    for name in sorted(_known_names(state, inspected_workers)):
        worker = _worker(state, name)
        inspected = inspected_workers.get(name, {})
        if _is_online(worker, inspected, now):
            continue
        if now - (_last_seen(worker, inspected) or 0) > max_age:
            names.append(name)
    return names


def _registered_task(entry: str) -> dict[str, str | None]:
    """``'tasks.add [rate_limit=10/m]'`` (Celery's ``registered`` reply) → a dict."""
    name, _, fields = entry.partition(' [')
    task = {'name': name, 'rate_limit': None}
    for field in fields.rstrip(']').split():
        key, _, value = field.partition('=')
        task[key] = value
    return task


def _as_python(value: Any) -> str:
    """Arguments as Python writes them; a worker's own repr (a string) as it is."""
    return value if isinstance(value, str) else repr(value)


def _task(entry: dict[str, Any]) -> dict[str, Any]:
    """A task of an ``active``/``reserved`` reply, its arguments as text."""
    return dict(entry, args=_as_python(entry.get('args', ())),
                kwargs=_as_python(entry.get('kwargs', {})))


def _scheduled_task(entry: dict[str, Any]) -> dict[str, Any]:
    """A ``scheduled`` reply entry as the task's own fields plus its ``eta``."""
    return dict(_task(entry.get('request') or {}), eta=entry.get('eta'),
                priority=entry.get('priority'))


def api_worker_info(info: dict[str, Any]) -> dict[str, Any]:
    """One worker's inspect replies as ``/api/workers`` gives them, with Flower 2.2's
    keys: secrets masked, and the broker's ``alternates`` left out of ``stats``."""
    answer = mask_worker_info(info)
    stats = answer.get('stats')
    broker = stats.get('broker') if isinstance(stats, dict) else None
    if isinstance(broker, dict) and 'alternates' in broker:
        broker = {key: value for key, value in broker.items() if key != 'alternates'}
        answer['stats'] = dict(stats, broker=broker)
    return answer


class WorkerAnswers:
    """:func:`api_worker_info` of every worker, worked out (and encoded) again only for the
    workers whose replies changed: masking is what ``/api/workers`` spends most on."""

    def __init__(self) -> None:
        self._entries = {}  # name -> [the replies answered for, the answer, its text or None]

    def _refresh(self, inspected_workers: Inspected) -> dict[str, list]:
        kept = {}
        for name, info in inspected_workers.items():
            replies = list(info.items())
            entry = self._entries.get(name)
            # The inspector replaces replies, never changes one: equal is mostly identical.
            if entry is None or entry[0] != replies:
                entry = [replies, api_worker_info(info), None]
            kept[name] = entry
        self._entries = kept
        return kept

    def answers(self, inspected_workers: Inspected) -> dict[str, dict[str, Any]]:
        """``{name: api_worker_info(info)}`` for every worker of ``inspected_workers``."""
        return {name: entry[1] for name, entry in self._refresh(inspected_workers).items()}

    def json_text(self, inspected_workers: Inspected, encode: Callable[[Any], str]) -> str:
        """``encode(self.answers(inspected_workers))``, each worker's answer encoded once.

        ``encode`` must write dicts as :func:`json.dumps` does by default.
        """
        parts = []
        for name, entry in self._refresh(inspected_workers).items():
            if entry[2] is None:
                entry[2] = encode(entry[1])
            parts.append(f'{encode(name)}: {entry[2]}')
        return '{' + ', '.join(parts) + '}'


def worker_detail(state: EventsState, inspected_workers: Inspected, name: str) -> dict[str, Any]:
    """Everything the worker page shows about worker ``name``; secrets masked."""
    info = mask_worker_info(inspected_workers.get(name, {}))
    stats = info.get('stats') or {}
    return {
        'row': worker_row(state, inspected_workers, name),
        'inspected_at': info.get('timestamp'),
        'pool': stats.get('pool') or {},
        'autoscaler': stats.get('autoscaler') or {},
        'broker': stats.get('broker') or {},
        'queues': info.get('active_queues') or [],
        'task_counts': sorted((stats.get('total') or {}).items()),
        'active': [_task(entry) for entry in info.get('active') or ()],
        'scheduled': [_scheduled_task(entry) for entry in info.get('scheduled') or ()],
        'reserved': [_task(entry) for entry in info.get('reserved') or ()],
        'revoked': sorted(info.get('revoked') or []),
        'registered': [_registered_task(entry) for entry in info.get('registered') or ()],
        'config': sorted((info.get('conf') or {}).items()),
        'system': {key: stats.get(key) for key in ('pid', 'clock', 'uptime', 'prefetch_count')},
        'rusage': sorted((stats.get('rusage') or {}).items()),
    }
