"""Task statistics for the graphs: outcomes over time and the runtime distribution.

Computed from the tasks Flower keeps in memory, so the graphs need no other
service. The result only changes when events are applied or the time window
moves on by a bucket, so it is cached until then and an auto-refreshing page
costs little.
"""
import bisect
import math
import time
from collections.abc import Iterable
from typing import Any, Protocol

from celery.events.state import State, Task

OUTCOMES = ('succeeded', 'failed', 'retried')
GROUPINGS = ('name', 'worker')
POINTS = 60  # time buckets per graph


class EventSource(Protocol):
    """What the statistics read of :class:`flower.events.Events` (a layer above this one)."""

    applied_count: int
    state: State


def _label(task: Task, group_by: str) -> str:
    if group_by == 'worker':
        worker = task.worker
        return getattr(worker, 'hostname', None) or 'unknown worker'
    return task.name or 'unknown task'


def outcomes_over_time(tasks: Iterable[Task], now: float, window: float,
                       group_by: str) -> dict[str, Any]:
    """Succeeded, failed and retried tasks per time bucket of the last ``window`` seconds.

    Returns ``{'timestamps': [bucket end, ...], 'succeeded': {label: [count, ...]}, ...}``
    where a label is the task name or the worker, as ``group_by`` says.
    """
    step = window / POINTS
    start = now - window
    counts = {outcome: {} for outcome in OUTCOMES}
    for task in tasks:
        for outcome in OUTCOMES:
            moment = getattr(task, outcome, None)
            if moment is None or not start < moment <= now:
                continue
            bucket = min(int((moment - start) / step), POINTS - 1)
            series = counts[outcome].setdefault(_label(task, group_by), [0] * POINTS)
            series[bucket] += 1
    timestamps = [start + step * (index + 1) for index in range(POINTS)]
    return dict(counts, timestamps=timestamps)


def runtime_distribution(tasks: Iterable[Task], buckets: Iterable[float]) -> dict[str, list]:
    """How many finished tasks took at most each bucket's seconds (and more than the previous);
    ``edges`` are those seconds, for a page that counts new tasks itself."""
    edges = sorted(buckets)
    counts = [0] * (len(edges) + 1)
    for task in tasks:
        runtime = task.runtime
        if runtime is not None and not math.isnan(runtime):
            counts[bisect.bisect_left(edges, runtime)] += 1
    labels = [f'≤ {edge:g} s' for edge in edges] + [f'> {edges[-1]:g} s' if edges else 'all']
    return {'buckets': labels, 'counts': counts, 'edges': edges}


class TaskStatistics:
    """Builds the graphs' data for a Flower app, recomputed only after new events."""

    def __init__(self, events: EventSource, runtime_buckets: Iterable[float]) -> None:
        self.events = events
        self.runtime_buckets = runtime_buckets
        self._cached_key = None
        self._cached = None

    def snapshot(self, window: float, group_by: str, now: float | None = None) -> dict[str, Any]:
        """The graphs' data; reused while no event arrived and the time bucket is the same."""
        now = time.time() if now is None else now
        key = (self.events.applied_count, window, group_by, int(now // (window / POINTS)))
        if key != self._cached_key:
            tasks = list(self.events.state.tasks.values())
            self._cached = {
                'outcomes': outcomes_over_time(tasks, now, window, group_by),
                'runtime': runtime_distribution(tasks, self.runtime_buckets),
            }
            self._cached_key = key
        return self._cached
