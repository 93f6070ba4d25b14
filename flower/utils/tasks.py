"""Kept for users' imports: the task listing functions as configuration files and
scripts call them, on an events object (``app.events``).

Flower itself selects tasks through :mod:`flower.tasks`; these functions make a
:class:`~flower.tasks.TaskFilter` of their keyword arguments and ask
:class:`~flower.tasks.Tasks`.
"""
import datetime
from collections.abc import Iterator
from typing import Any

from celery.events.state import Task

from flower.tasks import (
    DATE_FORMAT, SORT_FIELDS, TASK_FIELDS, Pair, TaskFilter, Tasks, as_dict, parse_date,
    parse_sort_by, shallow_copy, sort_tasks,
)

__all__ = [
    'DATE_FORMAT', 'SORT_FIELDS', 'TASK_FIELDS', 'as_dict', 'count_tasks', 'get_task_by_id',
    'iter_tasks', 'parse_date', 'parse_sort_by', 'shallow_copy', 'sort_tasks',
]

Moment = datetime.datetime | str | None


def _tasks(events: Any) -> Tasks:
    return Tasks(events.state, events.store)


def _filter(type: str | None, worker: str | None, state: str | None, received_start: Moment,
            received_end: Moment, started_start: Moment, started_end: Moment,
            search: str | None) -> TaskFilter:
    """A filter of the keyword arguments; dates may be text in :data:`DATE_FORMAT`."""
    def moment(value: Moment) -> datetime.datetime | None:
        return parse_date(value) if isinstance(value, str) else value

    return TaskFilter(name=type, worker=worker, state=state,
                      received_start=moment(received_start), received_end=moment(received_end),
                      started_start=moment(started_start), started_end=moment(started_end),
                      search=search or None)


def iter_tasks(events: Any, limit: int | None = None, offset: int | None = None,
               type: str | None = None, worker: str | None = None, state: str | None = None,
               sort_by: str | None = None, received_start: Moment = None,
               received_end: Moment = None, started_start: Moment = None,
               started_end: Moment = None, search: str | None = None) -> Iterator[Pair]:
    """The ``(uuid, task)`` pairs of ``events.state``, then of its history, that match
    (``type`` is the task name): see :meth:`flower.tasks.Tasks.select`."""
    task_filter = _filter(type, worker, state, received_start, received_end, started_start,
                          started_end, search)
    return _tasks(events).select(task_filter, sort_by, offset or 0, limit)


def count_tasks(events: Any, type: str | None = None, worker: str | None = None,
                state: str | None = None, received_start: Moment = None,
                received_end: Moment = None, started_start: Moment = None,
                started_end: Moment = None, search: str | None = None) -> tuple[int, int]:
    """``(total, filtered)`` for the filters of :func:`iter_tasks`."""
    task_filter = _filter(type, worker, state, received_start, received_end, started_start,
                          started_end, search)
    return _tasks(events).count(task_filter)


def get_task_by_id(events: Any, task_id: str) -> Task | None:
    """The task ``task_id`` of ``events.state`` or of its history, or ``None``."""
    return _tasks(events).get(task_id)
