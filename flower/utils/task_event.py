"""A task event applied to a task as Celery's :meth:`celery.events.state.Task.event`
applies it, keeping only some of its keys, in one pass over them: Celery's copies
the event into a new dict first and looks up both states' precedence through a
function each, on every event Flower sees."""
import sys
from collections.abc import Mapping, Set
from typing import Any

from celery.events.state import TASK_EVENT_TO_STATE
from celery.states import NONE_PRECEDENCE as LOWEST
from celery.states import PRECEDENCE_LOOKUP as PRECEDENCE
from celery.states import RETRY

#: Keys whose text values are interned (few distinct values, on many tasks).
INTERNED = ('name', 'exchange', 'routing_key')


def apply_task_event(task: Any, type_: str, timestamp: float | None,
                     fields: Mapping[str, Any], kept: Set[str]) -> None:
    """Apply the event ``type_`` (``'succeeded'``, ...) to ``task``: the keys of ``fields``
    in ``kept`` and, unless it comes from before the task's current state, the
    state and time; one that does merges what ``task.merge_rules`` lets it tell."""
    values = task.__dict__
    state = TASK_EVENT_TO_STATE.get(type_)
    if state is not None:
        values[type_] = timestamp  # e.g. ``succeeded``: the event's time
    else:
        state = type_.upper()  # a custom state
    current = task.state
    newer = (state == RETRY or current == RETRY
             or PRECEDENCE.get(state, LOWEST) <= PRECEDENCE.get(current, LOWEST))
    if not newer:
        keep = task.merge_rules.get(state)
        if keep is not None:
            kept = kept & frozenset(keep)
    if fields:
        for key, value in fields.items():
            if key in kept:
                values[key] = value
        for key in INTERNED:
            value = fields.get(key)
            if type(value) is str and key in kept:
                values[key] = sys.intern(value)
        if fields.get('root_id') == task.uuid and 'root_id' in kept:
            values['root_id'] = task.uuid  # one string, not an equal copy (most are roots)
    if newer:
        values['state'] = state
        values['timestamp'] = timestamp
