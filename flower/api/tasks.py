"""``/api/tasks``, ``/api/task/...`` and ``/api/queues/length``.

Listing endpoints read the events state through :mod:`flower.utils.tasks`;
submission, results and abort go through :mod:`flower.control`; queue
lengths come from :mod:`flower.utils.broker`.
"""
import asyncio

from tornado.iostream import StreamClosedError

from flower import control
from flower.api import (
    BaseApiHandler, RequestError, json_text, non_negative_float, non_negative_int,
)
from flower.utils.tasks import (
    as_dict, get_task_by_id, parse_date, parse_sort_by, search_tasks,
)


class BaseTaskHandler(BaseApiHandler):
    """Task listings, submission and results."""

    def require_task(self, taskname):
        if taskname not in self.capp.tasks:
            raise RequestError(404, f"Unknown task '{taskname}'")

    def task_as_dict(self, task):
        """The task's fields after the configuration's ``format_task``."""
        return as_dict(self.format_task(task))

    def task_info(self, task):
        """What ``/api/task/info`` says of ``task``: its fields, the uuid as ``task-id``."""
        info = self.task_as_dict(task)
        info['task-id'] = info.pop('uuid')
        return dict(sorted(info.items()))

    def task_filters(self):
        """The task filters of the query string, parsed, as :func:`iter_tasks` takes them
        (the API's ``taskname`` and ``workername`` are the task's name and worker)."""
        return {
            'type': self.get_optional_argument('taskname'),
            'worker': self.get_optional_argument('workername'),
            'state': self.get_optional_argument('state'),
            'received_start': self.get_optional_argument('received_start', type=parse_date),
            'received_end': self.get_optional_argument('received_end', type=parse_date),
            'started_start': self.get_optional_argument('started_start', type=parse_date),
            'started_end': self.get_optional_argument('started_end', type=parse_date),
            'search': self.get_search_argument('search'),
        }


class ListTasks(BaseTaskHandler):
    """Large listings are written in chunks, so other requests are served in between."""

    chunk_size = 200

    async def get(self):
        # The matching tasks are taken now (events keep arriving while we write).
        _, tasks = await search_tasks(
            self.application.events, self.application.search_executor,
            limit=self.get_optional_argument('limit', type=non_negative_int),
            offset=self.get_optional_argument('offset', type=non_negative_int),
            sort_by=self.get_optional_argument('sort_by', type=parse_sort_by),
            **self.task_filters(),
        )
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
    async def get(self):
        self.write_json({'task-types': self.application.events.state.task_types()})


class TaskInfo(BaseTaskHandler):
    async def get(self, taskid):
        task = get_task_by_id(self.application.events, taskid)
        if task is None:
            raise RequestError(404, f"Unknown task '{taskid}'")
        self.write_json(self.task_info(task))


class WaitingTaskHandler(BaseTaskHandler):
    """Waits for a task's result, and stops polling for it when the client goes away."""

    waiter = None

    async def wait_and_answer(self, operation, *args, **kwargs):
        self.waiter = asyncio.ensure_future(operation(self.capp, *args, **kwargs))
        try:
            result = await self.waiter
        except asyncio.CancelledError:
            return
        self.write_json(result)

    def on_connection_close(self):
        if self.waiter is not None:
            self.waiter.cancel()


class TaskApply(WaitingTaskHandler):
    """Runs the task and answers once its result is in (or the client went away)."""

    async def post(self, taskname):
        self.require_task(taskname)
        args, kwargs, options = self.get_task_call()
        await self.wait_and_answer(control.apply_task, taskname, args, kwargs, options)


class TaskAsyncApply(BaseTaskHandler):
    async def post(self, taskname):
        self.require_task(taskname)
        args, kwargs, options = self.get_task_call()
        self.write_json(await control.send_task(self.capp, taskname, args, kwargs, options))


class TaskSend(BaseTaskHandler):
    """Sends by name: works for tasks Flower has no code for."""

    async def post(self, taskname):
        args, kwargs, options = self.get_task_call()
        self.write_json(await control.send_task(self.capp, taskname, args, kwargs, options,
                                                by_name=True))


def result_timeout(value):
    """A ``timeout`` in seconds, from 0 to :data:`flower.control.MAX_RESULT_TIMEOUT`."""
    seconds = non_negative_float(value)
    if seconds > control.MAX_RESULT_TIMEOUT:
        raise ValueError(f"at most {control.MAX_RESULT_TIMEOUT} seconds")
    return seconds


class TaskResult(WaitingTaskHandler):
    async def get(self, taskid):
        timeout = self.get_optional_argument('timeout', type=result_timeout, default=0)
        await self.wait_and_answer(control.task_result, taskid, timeout=timeout)


class TaskAbort(BaseTaskHandler):
    async def post(self, taskid):
        await control.abort(self.capp, taskid)
        self.write_json({'message': f"Aborted '{taskid}'"})


class GetQueueLengths(BaseApiHandler):
    """Asks the broker now (the broker page's graph uses the sampled history instead)."""

    async def get(self):
        queues = await self.application.queue_lengths()
        self.write_json({'active_queues': queues})
