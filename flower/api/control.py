"""``/api/workers``, ``/api/worker/...`` and the task control endpoints.

The handlers only check the request and call one operation of
:mod:`flower.control`; its failures become JSON errors through
:data:`flower.base_handler.ERROR_STATUS`: 403 when the worker refused, 404
for a task the worker does not know, 503 when no reply came or the broker is
unreachable.
"""
from collections.abc import Awaitable, Callable
from typing import Any

from celery import states
from celery.utils.time import rate

from flower import control
from flower.api import (
    BaseApiHandler, RequestError, json_text, non_negative_float, non_negative_int, positive_int,
    signal_name,
)
from flower.workers import worker_rows


#: The states of a task that revoking can no longer stop.
FINISHED_STATES = states.READY_STATES


def rate_limit_value(value: str) -> str:
    """A Celery rate limit such as ``'10/m'``, ``'2.5/s'`` or ``'100'`` (``'0'``: none)."""
    try:
        rate(value or None)
    except (KeyError, ValueError):
        raise ValueError("not a rate limit such as 10/s, 10/m or 10/h") from None
    if not value:
        raise ValueError("empty; use 0 to remove the rate limit")
    return value


class ControlHandler(BaseApiHandler):
    """Runs :mod:`flower.control` operations with the inspect timeout."""

    @property
    def control_timeout(self) -> float:
        return self.application.options.inspect_timeout / 1000.0

    async def control(self, operation: Callable[..., Awaitable[Any]], *args: Any,
                      **kwargs: Any) -> Any:
        """Await ``operation(capp, *args, timeout=..., **kwargs)``; its failures are
        answered by :data:`flower.base_handler.ERROR_STATUS`."""
        return await operation(self.capp, *args, timeout=self.control_timeout, **kwargs)


class ListWorkers(ControlHandler):
    async def get(self) -> None:
        refresh = self.get_argument('refresh', default=False, type=bool)
        status = self.get_argument('status', default=False, type=bool)
        workername = self.get_optional_argument('workername')
        if workername and not await self.application.knows_worker(workername):
            raise RequestError(404, f"Unknown worker '{workername}'")
        if refresh:
            await self.application.update_workers(workername)
        answers = self.application.worker_answers
        if status:
            rows = worker_rows(self.application.events.state, self.application.workers)
            info = {row['hostname']: row['status'] for row in rows}
        elif not workername:
            self.write_json_text(answers.json_text(self.application.workers, json_text))
            return
        else:
            info = answers.answers(self.application.workers)
        if workername:
            info = {workername: info.get(workername, {})}
        self.write_json(info)


class WorkerShutDown(ControlHandler):
    async def post(self, workername: str) -> None:
        self.require_worker(workername)
        await self.control(control.shutdown, workername)
        self.write_json({'message': "Shutting down!"})


class WorkerPoolRestart(ControlHandler):
    async def post(self, workername: str) -> None:
        self.require_worker(workername)
        await self.control(control.pool_restart, workername)
        self.write_json({'message': f"Restarting '{workername}' worker's pool"})


class PoolResize(ControlHandler):
    """Grows or shrinks a worker's pool by ``n`` processes (1 by default)."""

    resize = staticmethod(control.pool_grow)
    doing = 'Growing'

    async def post(self, workername: str) -> None:
        n = self.get_argument('n', default=1, type=positive_int)
        self.require_worker(workername)
        await self.control(self.resize, workername, n)
        self.write_json({'message': f"{self.doing} '{workername}' worker's pool by {n}"})


class WorkerPoolGrow(PoolResize):
    pass


class WorkerPoolShrink(PoolResize):
    resize = staticmethod(control.pool_shrink)
    doing = 'Shrinking'


class WorkerPoolAutoscale(ControlHandler):
    async def post(self, workername: str) -> None:
        minimum = self.get_argument('min', type=non_negative_int)
        maximum = self.get_argument('max', type=non_negative_int)
        if minimum > maximum:
            raise RequestError(400, f"Invalid arguments: min ({minimum}) is greater than max ({maximum})")
        self.require_worker(workername)
        await self.control(control.autoscale, workername, minimum, maximum)
        self.write_json({'message': f"Autoscaling '{workername}' worker (min={minimum}, max={maximum})"})


class QueueConsumer(ControlHandler):
    """Makes a worker start (or stop) consuming from the ``queue`` argument."""

    change = staticmethod(control.add_consumer)

    async def post(self, workername: str) -> None:
        queue = self.get_argument('queue')
        self.require_worker(workername)
        reply = await self.control(self.change, workername, queue)
        self.write_json({'message': reply})


class WorkerQueueAddConsumer(QueueConsumer):
    pass


class WorkerQueueCancelConsumer(QueueConsumer):
    change = staticmethod(control.cancel_consumer)


class TaskRevoke(ControlHandler):
    async def post(self, taskid: str) -> None:
        terminate = self.get_argument('terminate', default=False, type=bool)
        signal = self.get_argument('signal', default='SIGTERM', type=signal_name)
        online = sum(1 for _ in self.application.events.state.alive_workers())
        await self.control(control.revoke, taskid, terminate=terminate, signal=signal,
                           expected_replies=online)
        task = self.tasks.get(taskid)
        if task is not None and task.state in FINISHED_STATES:
            # Workers flag the id all the same, but a finished task has nothing left to stop.
            self.write_json({'message': f"'{taskid}' had already finished ({task.state}): "
                                        "revoking it had no effect", 'effect': 'none'})
        else:
            self.write_json({'message': f"Revoked '{taskid}'"})


class TaskTimeout(ControlHandler):
    async def post(self, taskname: str) -> None:
        workername = self.get_argument('workername')
        self.audit_targets = [taskname, workername]
        soft = self.get_optional_argument('soft', type=non_negative_float)
        hard = self.get_optional_argument('hard', type=non_negative_float)
        self.require_worker(workername)
        reply = await self.control(control.time_limit, workername, taskname, soft=soft, hard=hard)
        self.write_json({'message': reply})


#: The name users of the original API import.
TaskTimout = TaskTimeout


class TaskRateLimit(ControlHandler):
    async def post(self, taskname: str) -> None:
        workername = self.get_argument('workername')
        self.audit_targets = [taskname, workername]
        ratelimit = self.get_argument('ratelimit', type=rate_limit_value)
        self.require_worker(workername)
        reply = await self.control(control.rate_limit, workername, taskname, ratelimit)
        self.write_json({'message': reply})
