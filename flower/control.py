"""What Flower does to a cluster: remote-control commands, task submission, results.

Shared by the HTTP API and the web pages. Every operation is a coroutine that
runs the blocking Celery call in the IO loop's default executor. Worker
commands return the worker's own reply; a refusal, a missing reply or an
unreachable broker raises a :class:`ControlError` saying so, never a fake
success.
"""
import asyncio
import datetime
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from celery import Celery, states
from celery.backends.base import DisabledBackend
from celery.contrib.abortable import AbortableAsyncResult
from celery.result import AsyncResult

from flower.utils.blocking import CONNECTION_ERRORS
from flower.utils.broker import DetachedPool, broadcast_connection, run_detached

#: The longest ``timeout`` a request may wait for a task's result, in seconds.
MAX_RESULT_TIMEOUT = 300

#: Result backend polls of every waiting request go through these few threads.
_RESULT_POLLS = DetachedPool(size=4, name='flower-result-poll')


class ControlError(Exception):
    """An operation did not take effect; ``str(exc)`` says why."""


class CommandRefused(ControlError):
    """The worker answered with an error."""


class UnknownTask(CommandRefused):
    """The worker has no task of that name."""


class NoReply(ControlError):
    """No worker answered within the timeout."""


class BrokerUnavailable(ControlError):
    """The broker (or result backend) could not be reached."""


class NoResultBackend(ControlError):
    """The operation needs a result backend and none is configured."""


class InspectionFailed(ControlError):
    """Inspecting workers failed; ``str(exc)`` names what the broker raised."""


async def _in_executor(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await run_detached(functools.partial(function, *args, **kwargs))


def _connection_errors(capp: Celery) -> tuple[type[BaseException], ...]:
    """What the broker's and the result backend's clients raise when unreachable."""
    connection = capp.connection_for_write()
    return (CONNECTION_ERRORS
            + tuple(connection.connection_errors) + tuple(connection.channel_errors)
            + tuple(getattr(capp.backend, 'connection_errors', ())))


def _broadcast(capp: Celery, command: str, arguments: dict[str, Any],
               destination: list[str] | None = None, reply: bool = True, timeout: float = 1.0,
               limit: int | None = None) -> dict[str, Any]:
    """Send ``command``; return the replies merged into ``{hostname: reply}``.

    The command goes out on a connection of its own, so that a call takes one
    connection from the app's pool (for the producer) rather than two nested
    ones: nested acquisitions deadlock once concurrent calls drain the pool.
    """
    try:
        with broadcast_connection(capp) as connection:
            replies = capp.control.broadcast(
                command, arguments=arguments, destination=destination, reply=reply,
                timeout=timeout, limit=limit, connection=connection)
    except _connection_errors(capp) as exc:
        raise BrokerUnavailable(f"Cannot send {command!r} through the broker: {exc}") from exc
    merged = {}
    for item in replies or ():
        merged.update(item)
    return merged


async def worker_command(capp: Celery, workername: str, command: str,
                         arguments: dict[str, Any] | None = None, timeout: float = 1.0) -> Any:
    """Send ``command`` to one worker; return the text of its ``ok`` reply."""
    replies = await _in_executor(_broadcast, capp, command, arguments or {},
                                 destination=[workername], timeout=timeout)
    reply = replies.get(workername)
    if reply is None:
        raise NoReply(f"Worker '{workername}' did not reply to {command!r} within {timeout:g} s")
    if 'error' in reply:
        raise CommandRefused(f"Worker '{workername}' refused {command!r}: {reply['error']}")
    return reply.get('ok')


async def shutdown(capp: Celery, workername: str, timeout: float = 1.0) -> None:
    """Shut a worker down, once it has answered a ping.

    The worker exits without replying to ``shutdown``; the ping first makes
    an absent worker an error rather than a silent no-op.
    """
    await worker_command(capp, workername, 'ping', timeout=timeout)
    await _in_executor(_broadcast, capp, 'shutdown', {}, destination=[workername],
                       reply=False, timeout=timeout)


async def pool_restart(capp: Celery, workername: str, timeout: float = 1.0) -> Any:
    """Restart the worker's pool (needs ``worker_pool_restarts`` on the worker)."""
    return await worker_command(capp, workername, 'pool_restart', {'reload': False}, timeout)


async def pool_grow(capp: Celery, workername: str, n: int = 1, timeout: float = 1.0) -> Any:
    return await worker_command(capp, workername, 'pool_grow', {'n': n}, timeout)


async def pool_shrink(capp: Celery, workername: str, n: int = 1, timeout: float = 1.0) -> Any:
    return await worker_command(capp, workername, 'pool_shrink', {'n': n}, timeout)


async def autoscale(capp: Celery, workername: str, min: int, max: int,
                    timeout: float = 1.0) -> Any:
    """Change the autoscale bounds (needs a worker started with ``--autoscale``)."""
    return await worker_command(capp, workername, 'autoscale', {'min': min, 'max': max}, timeout)


async def add_consumer(capp: Celery, workername: str, queue: str, timeout: float = 1.0) -> Any:
    return await worker_command(capp, workername, 'add_consumer', {'queue': queue}, timeout)


async def cancel_consumer(capp: Celery, workername: str, queue: str,
                          timeout: float = 1.0) -> Any:
    return await worker_command(capp, workername, 'cancel_consumer', {'queue': queue}, timeout)


async def _task_command(capp: Celery, workername: str, command: str, arguments: dict[str, Any],
                        timeout: float) -> Any:
    try:
        return await worker_command(capp, workername, command, arguments, timeout)
    except CommandRefused as exc:
        # Celery's exact answer when the worker does not know the task.
        if str(exc).endswith(': unknown task'):
            raise UnknownTask(f"Unknown task '{arguments['task_name']}' "
                              f"(worker '{workername}' answered: unknown task)") from exc
        raise


async def rate_limit(capp: Celery, workername: str, taskname: str, ratelimit: str,
                     timeout: float = 1.0) -> Any:
    """Set a task's rate limit on one worker (``'10/m'``; ``'0'`` removes it)."""
    return await _task_command(capp, workername, 'rate_limit',
                               {'task_name': taskname, 'rate_limit': ratelimit}, timeout)


async def time_limit(capp: Celery, workername: str, taskname: str, soft: float | None = None,
                     hard: float | None = None, timeout: float = 1.0) -> Any:
    """Set a task's soft and hard time limits on one worker (``None``: no limit)."""
    return await _task_command(capp, workername, 'time_limit',
                               {'task_name': taskname, 'soft': soft, 'hard': hard}, timeout)


async def revoke(capp: Celery, task_id: str, terminate: bool = False, signal: str = 'SIGTERM',
                 timeout: float = 1.0, expected_replies: int | None = None) -> dict[str, Any]:
    """Revoke a task on every worker; return ``{hostname: reply text}``.

    Revocations live in the workers' memory, so when no worker answers the
    revoke is lost: that is an error. Replies are awaited for ``timeout``, or
    until ``expected_replies`` of them came.
    """
    replies = await _in_executor(
        _broadcast, capp, 'revoke', {'task_id': task_id, 'terminate': terminate, 'signal': signal},
        timeout=timeout, limit=expected_replies or None)
    if not replies:
        raise NoReply(f"No worker replied to the revoke of '{task_id}' within {timeout:g} s; "
                      "it was not revoked")
    accepted = {name: reply['ok'] for name, reply in replies.items() if 'ok' in reply}
    if not accepted:
        errors = '; '.join(f"{name}: {reply.get('error')}" for name, reply in replies.items())
        raise CommandRefused(f"Every worker refused to revoke '{task_id}': {errors}")
    return accepted


def has_result_backend(capp: Celery) -> bool:
    return not isinstance(capp.backend, DisabledBackend)


def _require_result_backend(capp: Celery) -> None:
    if not has_result_backend(capp):
        raise NoResultBackend("No result backend is configured for the Celery app")


async def abort(capp: Celery, task_id: str) -> None:
    """Ask an ``AbortableTask`` to stop (it checks ``is_aborted()`` itself)."""
    _require_result_backend(capp)
    result = AbortableAsyncResult(task_id, app=capp)
    await _in_executor(_backend_call, capp, result.abort)


def _backend_call(capp: Celery, function: Callable[..., Any], *args: Any) -> Any:
    unreachable = _connection_errors(capp)
    try:
        return function(*args)
    except unreachable as exc:
        raise BrokerUnavailable(f"The broker or result backend cannot be reached: {exc}") from exc
    except RuntimeError as exc:
        # Celery's Redis result backend gives up reconnecting with a RuntimeError.
        if not isinstance(exc.__cause__, unreachable):
            raise
        raise BrokerUnavailable(
            f"The result backend cannot be reached: {exc.__cause__}") from exc


async def backend_call(capp: Celery, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, a blocking call to the broker or result backend, off the IO loop;
    an unreachable one is a :class:`BrokerUnavailable`."""
    return await _in_executor(_backend_call, capp, function, *args)


# -- task submission ----------------------------------------------------------

def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"option '{name}' must be a number of seconds, not {value!r}")
    return value


def _datetime(name: str, value: Any) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"option '{name}' must be an ISO 8601 date and time, not {value!r}") from None


def _number_or_datetime(name: str, value: Any) -> float | datetime.datetime:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else _datetime(name, value)


def _of_type(kind: type, described: str) -> Callable[[str, Any], Any]:
    """A validator accepting only values of ``kind`` (``described`` in its message)."""
    def check(name: str, value: Any) -> Any:
        if not isinstance(value, kind):
            raise ValueError(f"option '{name}' must be {described}, not {value!r}")
        return value
    return check


_text = _of_type(str, 'a string')
_flag = _of_type(bool, 'true or false')
_headers = _of_type(dict, 'an object')


def _priority(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise ValueError(f"option '{name}' must be an integer from 0 to 255, not {value!r}")
    return value


#: The ``apply_async`` options a request may set, with their validators.
APPLY_OPTIONS = {
    'countdown': _number,
    'eta': _datetime,
    'expires': _number_or_datetime,
    'queue': _text,
    'routing_key': _text,
    'exchange': _text,
    'priority': _priority,
    'task_id': _text,
    'shadow': _text,
    'headers': _headers,
    'time_limit': _number,
    'soft_time_limit': _number,
    'ignore_result': _flag,
}


def parse_apply_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``apply_async`` options from JSON; a ``ValueError`` names the bad one."""
    parsed = {}
    for name, value in options.items():
        validate = APPLY_OPTIONS.get(name)
        if validate is None:
            raise ValueError(f"unknown option {name!r}; known options: {', '.join(APPLY_OPTIONS)}")
        parsed[name] = validate(name, value)
    return parsed


class InvalidTaskCall(ValueError):
    """The arguments do not fit the task's signature; nothing was sent."""


def _send(capp: Celery, taskname: str, args: list[Any], kwargs: dict[str, Any],
          options: dict[str, Any], by_name: bool) -> AsyncResult:
    if by_name:
        return capp.send_task(taskname, args=args, kwargs=kwargs, **options)
    task = capp.tasks[taskname]
    # Celery checks them in apply_async too (``typing``), as a TypeError like any bug's.
    header = getattr(task, '__header__', None) if task.typing else None
    try:
        header and header(*args, **kwargs)
    except TypeError as exc:
        raise InvalidTaskCall(f"Invalid arguments for task '{taskname}': {exc}") from None
    return task.apply_async(args=args, kwargs=kwargs, **options)


async def _publish(capp: Celery, taskname: str, args: Iterable[Any],
                   kwargs: Mapping[str, Any] | None, options: Mapping[str, Any] | None,
                   by_name: bool = False) -> AsyncResult:
    return await _in_executor(_backend_call, capp, _send, capp, taskname, list(args),
                              dict(kwargs or {}), dict(options or {}), by_name)


async def send_task(capp: Celery, taskname: str, args: Iterable[Any] = (),
                    kwargs: Mapping[str, Any] | None = None,
                    options: Mapping[str, Any] | None = None,
                    by_name: bool = False) -> dict[str, Any]:
    """Publish a task; return ``{'task-id', 'state'}``.

    ``by_name`` sends it by name only, for tasks Flower has no code for; else
    the task must be registered in ``capp`` and its own settings apply.
    """
    result = await _publish(capp, taskname, args, kwargs, options, by_name)
    state = states.PENDING
    if has_result_backend(capp):
        state = await _in_executor(_backend_call, capp, lambda: result.state)
    return {'task-id': result.id, 'state': state}


async def apply_task(capp: Celery, taskname: str, args: Iterable[Any] = (),
                     kwargs: Mapping[str, Any] | None = None,
                     options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Publish a registered task and wait for its result (``{'task-id', 'state', 'result'}``)."""
    _require_result_backend(capp)
    result = await _publish(capp, taskname, args, kwargs, options)
    return await _wait_for_result(capp, result, timeout=None)


async def task_result(capp: Celery, task_id: str, timeout: float | None = 0) -> dict[str, Any]:
    """``{'task-id', 'state'}``, with ``'result'`` once the task is ready, when it is or
    ``timeout`` passed.

    ``timeout=None`` waits as long as it takes. A failed task's result is its
    exception's repr, with a ``traceback``.
    """
    _require_result_backend(capp)
    return await _wait_for_result(capp, capp.AsyncResult(task_id), timeout)


async def _wait_for_result(capp: Celery, result: AsyncResult,
                           timeout: float | None) -> dict[str, Any]:
    """Poll the backend through a few shared threads: a blocking ``get()`` would hold
    a thread per waiting request. Cancel the awaiting task to stop polling."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    delay = 0.05
    while not await _RESULT_POLLS.run(_backend_call, capp, result.ready):
        if deadline is not None and loop.time() >= deadline:
            break
        pause = delay if deadline is None else min(delay, max(0.0, deadline - loop.time()))
        await asyncio.sleep(pause)
        delay = min(delay * 2, 0.5)
    return await _RESULT_POLLS.run(_backend_call, capp, _result_payload, result)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _result_payload(result: AsyncResult) -> dict[str, Any]:
    """``result`` carries a ``result`` only once the task is ready, and a ``traceback``
    only when it failed (not when it was revoked), as in Flower 2.2."""
    state = result.state
    payload = {'task-id': result.id, 'state': state}
    if state in states.READY_STATES:
        if state in states.PROPAGATE_STATES:
            payload['result'] = repr(result.result)
            if state == states.FAILURE:
                payload['traceback'] = result.traceback
        else:
            payload['result'] = _jsonable(result.result)
    return payload
