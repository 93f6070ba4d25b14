"""Finding the tasks of a workflow: in memory, in the ``--persistent`` history, and
the group each belongs to in the Celery app's result backend.

The walk follows the links events give (a task's parent, its children, the
tasks with it as their root) through the tasks in memory and, for those no
longer there, through the history. Group membership is not in events (see
:mod:`flower.workflow`): it is read from the result backend's record of each
task (``group_id``), which a task has once it finished (or started, with
``task_track_started``). Members of a group that no task links, such as a
group or a chord header sent by a client, each start a workflow of their own:
they are found among the tasks in memory without a parent that were sent
within :data:`GROUP_WINDOW` seconds of a member, by their records' group id.
Without a result backend, or when it cannot be reached, the workflow is what
the events link (``groups_known`` is false).
"""
import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from celery import Celery
from celery.backends.base import DisabledBackend

from flower.state import stored_task
from flower.store import TASK_COLUMNS, row_fields
from flower.tasks import Tasks, shallow_copy
from flower.utils import Throttle, describe_error
from flower.utils.broker import DetachedPool
from flower.workflow import build_workflow

logger = logging.getLogger(__name__)

#: The most tasks one workflow shows; a larger one is cut (``truncated``).
MAX_TASKS = 1000
#: Seconds around a group member's sending in which its unlinked siblings are looked for.
GROUP_WINDOW = 30.0
#: The most tasks in memory whose backend records are read to find unlinked siblings.
MAX_CANDIDATES = 2000
#: Rounds of "walk the links, then read groups" before the answer is given as it is.
MAX_ROUNDS = 4

#: Seconds a workflow waits for the result backend before it is answered without groups,
#: and a task page before it is shown without asking whether the task is in a group.
BACKEND_TIMEOUT = 5.0
PAGE_BACKEND_TIMEOUT = 1.0

_BACKEND_CALLS = DetachedPool(size=2, name='flower-workflow')
#: Live pages ask again on every change: a backend outage is logged once a minute.
_FAILURE_WARNINGS = Throttle(60.0)


async def _backend(timeout: float, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a thread, given up after ``timeout`` seconds (a backend
    behind a dropped connection can take minutes to fail)."""
    return await asyncio.wait_for(_BACKEND_CALLS.run(function, *args), timeout)


def _linked_ids(task: Any) -> Iterable[str]:
    fields = task.__dict__
    yield from (fields.get('parent_id'), fields.get('root_id'))
    if hasattr(type(task), 'child_ids'):
        yield from task.child_ids


def _with_stored_fields(task: Any, row: tuple) -> Any:
    """``task`` (from memory) with the fields it lacks taken from its stored ``row``: a
    task seen again after it left memory may come back with only its last event's."""
    stored = row_fields(row)
    stored.pop('worker', None)
    missing = {name: value for name, value in stored.items() if task.__dict__.get(name) is None}
    if not missing:
        return task
    task = shallow_copy(task)
    task.__dict__.update(missing)
    return task


def walk(tasks: Tasks, start: Iterable[str], found: dict[str, Any]) -> bool:
    """Add to ``found`` the tasks linked to ``start`` (and to each other); ``True`` if
    :data:`MAX_TASKS` cut the walk short."""
    memory = tasks.state.tasks.data
    history = tasks.history
    wanted = [uuid for uuid in dict.fromkeys(start) if uuid]
    while wanted:
        new = []
        for uuid in wanted:
            if uuid in found:
                continue
            task = memory.get(uuid)
            if task is not None:
                found[uuid] = task
                new.append(uuid)
        if history is not None and wanted:
            for row in history.linked_tasks(wanted, ', '.join(TASK_COLUMNS), MAX_TASKS + 1):
                uuid = row[0]
                task = found.get(uuid, memory.get(uuid))
                if uuid not in found:
                    new.append(uuid)
                found[uuid] = stored_task(row) if task is None else _with_stored_fields(task, row)
        if len(found) > MAX_TASKS:
            for uuid in list(found)[MAX_TASKS:]:
                del found[uuid]
            return True
        wanted = [uuid for uuid in dict.fromkeys(
            linked for uuid in new for linked in _linked_ids(found[uuid]))
            if uuid and uuid not in found]
    return False


def _sending_time(task: Any) -> float | None:
    fields = task.__dict__
    return fields.get('sent') or fields.get('received')


def group_root_moments(found: dict[str, Any], group_ids: dict[str, str]) -> list[float]:
    """When the roots of ``found`` that are in a group were sent (or received)."""
    moments = [_sending_time(task) for uuid, task in found.items()
               if uuid in group_ids and not task.__dict__.get('parent_id')]
    return [moment for moment in moments if moment]


def unlinked_candidates(in_memory: list[tuple[str, Any]], moments: list[float],
                        excluded: set[str]) -> list[str]:
    """Tasks of ``in_memory`` (``(uuid, task)`` pairs) not ``excluded`` that may be
    unlinked members of a group whose roots were sent at ``moments``: without a
    parent, sent close to one, the closest first."""
    low, high = min(moments) - GROUP_WINDOW, max(moments) + GROUP_WINDOW
    candidates = []
    for uuid, task in in_memory:
        if uuid in excluded or task.__dict__.get('parent_id'):
            continue
        moment = _sending_time(task)
        if moment is not None and low <= moment <= high:
            candidates.append((abs(moment - moments[0]), uuid))
    candidates.sort()
    return [uuid for _, uuid in candidates[:MAX_CANDIDATES]]


def read_siblings(capp: Celery, in_memory: list[tuple[str, Any]], moments: list[float],
                  excluded: set[str]) -> tuple[list[str], dict[str, str]]:
    """``(candidates, {candidate: group id})``: :func:`unlinked_candidates` and their
    groups, in one call for a thread (scanning a large state takes a while)."""
    candidates = unlinked_candidates(in_memory, moments, excluded)
    return candidates, read_group_ids(capp, candidates)


def read_group_ids(capp: Celery, uuids: list[str]) -> dict[str, str]:
    """``{task id: group id}`` from the result backend's records (blocking: run it in
    a thread). A key-value backend (Redis...) is read in one round trip per chunk."""
    backend = capp.backend
    found = {}
    if hasattr(backend, 'mget') and hasattr(backend, 'get_key_for_task'):
        for start in range(0, len(uuids), 500):
            chunk = uuids[start:start + 500]
            values = backend.mget([backend.get_key_for_task(uuid) for uuid in chunk])
            for uuid, value in zip(chunk, values):
                meta = backend.decode_result(value) if value else None
                if isinstance(meta, dict) and meta.get('group_id'):
                    found[uuid] = str(meta['group_id'])
        return found
    for uuid in uuids:
        meta = backend.get_task_meta(uuid, cache=False)
        if isinstance(meta, dict) and meta.get('group_id'):
            found[uuid] = str(meta['group_id'])
    return found


async def find_workflow(tasks: Tasks, capp: Celery, task_id: str) -> dict[str, Any] | None:
    """The workflow of ``task_id`` (see :func:`flower.workflow.build_workflow`), or
    ``None`` if no such task is known."""
    start = tasks.get(task_id)
    if start is None:
        return None
    found = {task_id: start}
    truncated = walk(tasks, _linked_ids(start), found)
    backend_ok = not isinstance(capp.backend, DisabledBackend)
    group_ids: dict[str, str] = {}
    asked: set[str] = set()
    for _ in range(MAX_ROUNDS if backend_ok else 0):
        try:
            unread = [uuid for uuid in found if uuid not in asked]
            asked.update(unread)
            group_ids.update(await _backend(BACKEND_TIMEOUT, read_group_ids, capp, unread))
            moments = group_root_moments(found, group_ids)
            if not moments:
                break
            candidates, siblings = await _backend(
                BACKEND_TIMEOUT, read_siblings, capp, list(tasks.state.tasks.data.items()), moments,
                asked | set(found))
            asked.update(candidates)
        except Exception as exc:  # any backend failure: the workflow the events link
            if _FAILURE_WARNINGS.ready():
                logger.warning("Reading the groups of workflow %s from the result backend "
                               "failed: %s; workflows are shown without groups meanwhile",
                               task_id, describe_error(exc))
            backend_ok = False
            break
        groups = set(group_ids.values())
        joining = [uuid for uuid, group in siblings.items() if group in groups]
        group_ids.update((uuid, siblings[uuid]) for uuid in joining)
        if not joining or truncated:
            break
        truncated = walk(tasks, joining, found)
    return build_workflow(task_id, found, group_ids, truncated=truncated,
                          groups_known=backend_ok)


async def group_of(capp: Celery, task_id: str) -> str | None:
    """The group ``task_id`` belongs to, by its result backend record; ``None`` if it
    has none, or there is no backend, or it cannot be read."""
    if isinstance(capp.backend, DisabledBackend):
        return None
    try:
        return (await _backend(PAGE_BACKEND_TIMEOUT, read_group_ids, capp, [task_id])).get(task_id)
    except Exception as exc:  # the task page is shown anyway, without the group
        logger.debug("Reading the group of task %s failed: %s", task_id, describe_error(exc))
        return None
