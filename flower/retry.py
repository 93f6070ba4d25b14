"""Retrying a task: sending a new task with the original's name, arguments and routing.

Where the arguments come from, in this order: the result backend when it
keeps them (Celery's ``result_extended``), else the text the task's events
carried, only when it parses back (:func:`ast.literal_eval`, never ``eval``)
to exactly that text and Celery did not cut it short. Otherwise the retry is
refused with the reason and nothing is sent. See docs/acting.rst.
"""
import ast
import collections
import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery, states
from celery.backends.rpc import RPCBackend
from celery.events.state import Task
from celery.utils.saferepr import saferepr

from flower import control
from flower.store import TaskStore
from flower.tasks import Tasks

#: States a task may be retried from; RETRY too, once its retries are exhausted.
RETRYABLE_STATES = frozenset({states.FAILURE, states.REVOKED, states.REJECTED})

#: What Celery appends to a string (or bytes) it cuts short in ``argsrepr``/``kwargsrepr``
#: (:func:`celery.utils.text.truncate`); a cut container gets ``, ...`` instead, which
#: parses back as ``Ellipsis``.
TRUNCATION_MARKER = '...'

#: The keys of a retry's JSON body that override the original's.
OVERRIDES = ('args', 'kwargs', 'queue', 'countdown', 'priority')


class RetryRefused(Exception):
    """The task cannot be retried (its state, or its arguments cannot be recovered)."""


class UnknownTaskId(Exception):
    """Flower has never heard of the task."""


@dataclasses.dataclass
class TaskCall:
    """What a retry sends: the task's name, arguments and ``apply_async`` options."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]


def check_state(capp: Celery, task: Task) -> None:
    """Refuse a task that is not failed, revoked, rejected, or out of retries.

    A task in RETRY is retried only when Celery will not try it again
    itself: its ``retries`` reached the ``max_retries`` of the task as
    Flower's Celery app defines it.
    """
    state = task.state
    if state in RETRYABLE_STATES:
        return
    if state == states.RETRY:
        registered = capp.tasks.get(task.name) if task.name else None
        max_retries = getattr(registered, 'max_retries', None)
        if max_retries is not None and (task.retries or 0) >= max_retries:
            return
        raise RetryRefused(f"Task '{task.uuid}' is in RETRY with retries left: Celery will "
                           "run it again itself")
    raise RetryRefused(f"Task '{task.uuid}' is {state}: only FAILURE, REVOKED, REJECTED tasks "
                       "(or RETRY ones out of retries) can be retried")


def _cut_short(value: Any) -> bool:
    """True if ``value`` holds a mark of Celery's truncation (or of its depth limit)."""
    if value is Ellipsis:
        return True
    if isinstance(value, str):
        return value.endswith(TRUNCATION_MARKER)
    if isinstance(value, bytes):
        return value.endswith(TRUNCATION_MARKER.encode())
    if isinstance(value, dict):
        return any(_cut_short(key) or _cut_short(item) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_cut_short(item) for item in value)
    return False


def parse_recorded(text: str | None, what: str, kind: type, max_levels: int = 3) -> Any:
    """The value whose repr an event recorded as ``text``, or ``RetryRefused`` saying why not.

    The text must parse as a Python literal of ``kind`` (list for ``args``,
    dict for ``kwargs``) that Celery writes back as exactly ``text`` (its
    repr does not escape every character Python's does), and hold no sign
    of truncation: a string ending with ``...`` or an ``Ellipsis``.
    """
    if text is None:
        raise RetryRefused(f"the task's events carry no {what}")
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        if TRUNCATION_MARKER in text:
            raise RetryRefused(f"its {what} were truncated by Celery (argsrepr_maxsize, "
                               "kwargsrepr_maxsize), or are not a Python literal") from None
        raise RetryRefused(f"its {what} {text[:80]!r} are not a Python literal") from None
    if kind is list and isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, kind):
        raise RetryRefused(f"its {what} {text[:80]!r} are not a {kind.__name__}")
    if _cut_short(value):
        raise RetryRefused(f"its {what} were truncated by Celery (argsrepr_maxsize, "
                           "kwargsrepr_maxsize or task_repr_maxlevels), or end with '...'")
    original = tuple(value) if kind is list and text.startswith('(') else value
    if saferepr(original, maxlevels=max_levels) != text:
        raise RetryRefused(f"its {what} {text[:80]!r} do not parse back to the same text")
    if kind is dict and not all(isinstance(key, str) for key in value):
        raise RetryRefused(f"its {what} have keys that are not strings")
    return value


def from_events(capp: Celery, task: Task) -> tuple[list[Any], dict[str, Any]]:
    """``(args, kwargs)`` recovered from the text the task's events carried."""
    levels = capp.conf.get('task_repr_maxlevels', 3)
    try:
        args = parse_recorded(task.args, 'args', list, levels)
        kwargs = parse_recorded(task.kwargs, 'kwargs', dict, levels)
    except RetryRefused as exc:
        raise RetryRefused(f"Cannot retry task '{task.uuid}' from its events: {exc}; "
                           "the result backend does not keep its arguments "
                           "(result_extended)") from None
    return args, kwargs


def _extended_meta(capp: Celery, task_id: str) -> dict[str, Any] | None:
    """The backend's record of the task with name and arguments, or ``None``."""
    meta = capp.backend.get_task_meta(task_id)
    if meta.get('name') and isinstance(meta.get('args'), (list, tuple)) \
            and isinstance(meta.get('kwargs'), dict):
        return meta
    return None


def _routing(task: Task, backend_queue: str | None) -> dict[str, Any]:
    """Where the original went: its exchange and routing key from ``task-sent``, or the
    backend's queue; nothing known leaves the task's own routing."""
    exchange = getattr(task, 'exchange', None)
    routing_key = getattr(task, 'routing_key', None)
    if exchange and routing_key:
        return {'exchange': exchange, 'routing_key': routing_key}
    if routing_key:
        return {'queue': routing_key}  # the default exchange routes by queue name
    if backend_queue:
        return {'queue': backend_queue}
    return {}


async def plan(capp: Celery, task: Task, changes: Mapping[str, Any] | None = None) -> TaskCall:
    """What retrying ``task`` sends, with ``changes`` (checked ``args``, ``kwargs``,
    ``queue``, ``countdown``, ``priority``) applied; ``RetryRefused`` if it cannot be
    retried. Arguments both given in ``changes`` need not be recovered."""
    check_state(capp, task)
    changes = changes or {}
    meta = None
    # The rpc:// backend sends results to the client that sent the task: flower has none.
    if control.has_result_backend(capp) and not isinstance(capp.backend, RPCBackend):
        meta = await control.backend_call(capp, _extended_meta, capp, task.uuid)
    if meta is not None:
        call = TaskCall(meta['name'], list(meta['args']), dict(meta['kwargs']),
                        _routing(task, meta.get('queue')))
    elif not task.name:
        raise RetryRefused(f"Cannot retry task '{task.uuid}': its name is unknown (no event "
                           "carried it, and the result backend does not keep it)")
    elif 'args' in changes and 'kwargs' in changes:
        call = TaskCall(task.name, [], {}, _routing(task, None))
    else:
        args, kwargs = from_events(capp, task)
        call = TaskCall(task.name, args, kwargs, _routing(task, None))
    return override(call, changes) if changes else call


def override(call: TaskCall, changes: Mapping[str, Any]) -> TaskCall:
    """``call`` with the ``args``, ``kwargs``, ``queue``, ``countdown`` or ``priority`` of
    ``changes``; a new queue replaces the original's routing."""
    options = dict(call.options)
    if 'queue' in changes:
        options = {'queue': changes['queue']}
    for name in ('countdown', 'priority'):
        if name in changes:
            options[name] = changes[name]
    return TaskCall(call.name, list(changes.get('args', call.args)),
                    dict(changes.get('kwargs', call.kwargs)), options)


async def send(capp: Celery, call: TaskCall) -> str:
    """Publish ``call``; the new task's id. A task Flower has no code for is sent by name."""
    sent = await control.send_task(capp, call.name, call.args, call.kwargs, call.options,
                                   by_name=call.name not in capp.tasks)
    return sent['task-id']


def find(tasks: Tasks, task_id: str) -> Task:
    """The task ``task_id`` from memory or the history; ``UnknownTaskId`` if Flower never saw it."""
    task = tasks.get(task_id)
    if task is None:
        raise UnknownTaskId(f"Unknown task '{task_id}'")
    return task


async def retry(capp: Celery, tasks: Tasks, links: 'RetryLinks', task_id: str,
                changes: Mapping[str, Any] | None = None, save: bool = True) -> str:
    """Retry the task ``task_id`` (see :func:`plan`), remember the link (``save``: in the
    history too, at once); the new task's id."""
    call = await plan(capp, find(tasks, task_id), changes)
    new_id = await send(capp, call)
    links.add(task_id, new_id, save=save)
    return new_id


class RetryLinks:
    """Which task is a retry of which, both ways, for the newest ``limit`` retries.

    With ``--persistent`` they are kept beside the history (a setting of
    the store, as the session generations are), so a restart keeps them.
    """

    setting_name = 'retry_links'

    def __init__(self, store_getter: Callable[[], TaskStore | None] = lambda: None,
                 limit: int = 10_000) -> None:
        self.limit = limit
        self._store = store_getter
        self._original: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._retries: dict[str, list[str]] = {}

    def load(self) -> None:
        """Read the links kept in the history, if there is one."""
        store = self._store()
        saved = store.load_setting(self.setting_name) if store is not None else None
        for retry, original in json.loads(saved) if saved else ():
            self._link(original, retry)

    def add(self, original: str, retry: str, save: bool = True) -> None:
        """Link ``retry`` to ``original``; ``save=False`` leaves the history to :meth:`save`."""
        self._link(original, retry)
        if save:
            self.save()

    def save(self) -> None:
        """Write the links to the history, if there is one."""
        store = self._store()
        if store is not None:
            store.save_setting(self.setting_name, json.dumps(list(self._original.items())))

    def _link(self, original: str, retry: str) -> None:
        self._original[retry] = original
        self._retries.setdefault(original, []).append(retry)
        while len(self._original) > self.limit:
            oldest, its_original = self._original.popitem(last=False)
            kept = [task_id for task_id in self._retries.get(its_original, ()) if task_id != oldest]
            if kept:
                self._retries[its_original] = kept
            else:
                self._retries.pop(its_original, None)

    def original_of(self, task_id: str) -> str | None:
        """The task ``task_id`` retried, if it is a retry."""
        return self._original.get(task_id)

    def retries_of(self, task_id: str) -> list[str]:
        """The retries of ``task_id``, oldest first."""
        return list(self._retries.get(task_id, ()))
