"""``/api/tasks``, ``/api/task/...`` and ``/api/queues/length``.

Listing endpoints read the tasks through :mod:`flower.tasks`;
submission, results and abort go through :mod:`flower.control`; queue
lengths come from :mod:`flower.utils.broker`.
"""
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tornado.iostream import StreamClosedError

from flower import control
from flower.api import (
    BaseApiHandler, RequestError, json_text, non_negative_float, non_negative_int,
)
from flower.tasks import as_dict, parse_sort_by


class BaseTaskHandler(BaseApiHandler):
    """Task listings, submission and results."""

    def require_task(self, taskname: str) -> None:
        if taskname not in self.capp.tasks:
            raise RequestError(404, f"Unknown task '{taskname}'")

    def task_as_dict(self, task: Any) -> dict[str, Any]:
        """The task's fields after the configuration's ``format_task``."""
        return as_dict(self.format_task(task))


class ListTasks(BaseTaskHandler):
    """Large listings are written in chunks, so other requests are served in between."""

    chunk_size = 200

    async def get(self) -> None:
        # The matching tasks are taken now (events keep arriving while we write).
        limit = self.get_optional_argument('limit', type=non_negative_int)
        offset = self.get_optional_argument('offset', type=non_negative_int, default=0)
        sort_by = self.get_optional_argument('sort_by', type=parse_sort_by)
        _, tasks = await self.tasks.page(self.task_filter(), self.application.search_executor,
                                         sort_by=sort_by, offset=offset, limit=limit)
        self.set_header('Content-Type', 'application/json; charset=UTF-8')
        separator = '{'
        for start in range(0, len(tasks), self.chunk_size):
            parts = []
            for uuid, task in tasks[start:start + self.chunk_size]:
                parts.append(separator + json_text(uuid) + ': ' + json_text(self.task_as_dict(task)))
                separator = ', '
            self.write(''.join(parts))
            try:
                await self.flush()
            except StreamClosedError:
                return  # the client went away
            await asyncio.sleep(0)
        self.finish('{}' if not tasks else '}')


class ListTaskTypes(BaseApiHandler):
    async def get(self) -> None:
        self.write_json({'task-types': self.application.events.state.task_types()})


class TaskInfo(BaseTaskHandler):
    async def get(self, taskid: str) -> None:
        task = self.tasks.get(taskid)
        if task is None:
            raise RequestError(404, f"Unknown task '{taskid}'")
        self.write_json(self.task_as_dict(task))


class WaitingTaskHandler(BaseTaskHandler):
    """Waits for a task's result, and stops polling for it when the client goes away."""

    waiter = None

    async def wait_and_answer(self, operation: Callable[..., Awaitable[Any]], *args: Any,
                              **kwargs: Any) -> None:
        self.waiter = asyncio.ensure_future(operation(self.capp, *args, **kwargs))
        try:
            result = await self.waiter
        except asyncio.CancelledError:
            return
        self.write_json(result)

    def on_connection_close(self) -> None:
        if self.waiter is not None:
            self.waiter.cancel()


class TaskApply(WaitingTaskHandler):
    """Runs the task and answers once its result is in (or the client went away)."""

    async def post(self, taskname: str) -> None:
        self.require_task(taskname)
        args, kwargs, options = self.get_task_call()
        await self.wait_and_answer(control.apply_task, taskname, args, kwargs, options)


class TaskAsyncApply(BaseTaskHandler):
    async def post(self, taskname: str) -> None:
        self.require_task(taskname)
        args, kwargs, options = self.get_task_call()
        self.write_json(await control.send_task(self.capp, taskname, args, kwargs, options))


class TaskSend(BaseTaskHandler):
    """Sends by name: works for tasks Flower has no code for."""

    async def post(self, taskname: str) -> None:
        args, kwargs, options = self.get_task_call()
        self.write_json(await control.send_task(self.capp, taskname, args, kwargs, options,
                                                by_name=True))


def result_timeout(value: str) -> float:
    """A ``timeout`` in seconds, from 0 to :data:`flower.control.MAX_RESULT_TIMEOUT`."""
    seconds = non_negative_float(value)
    if seconds > control.MAX_RESULT_TIMEOUT:
        raise ValueError(f"at most {control.MAX_RESULT_TIMEOUT} seconds")
    return seconds


class TaskResult(WaitingTaskHandler):
    async def get(self, taskid: str) -> None:
        timeout = self.get_optional_argument('timeout', type=result_timeout, default=0)
        await self.wait_and_answer(control.task_result, taskid, timeout=timeout)


class TaskAbort(BaseTaskHandler):
    async def post(self, taskid: str) -> None:
        await control.abort(self.capp, taskid)
        self.write_json({'message': f"Aborted '{taskid}'"})


class GetQueueLengths(BaseApiHandler):
    """Asks the broker now (the broker page's graph uses the sampled history instead)."""

    async def get(self) -> None:
        queues = await self.application.queue_lengths()
        self.write_json({'active_queues': queues})
