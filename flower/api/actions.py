"""``/api/task/retry/...`` and the bulk actions ``/api/tasks/{revoke,terminate,retry}``.

The handlers check the request and call :mod:`flower.retry` or
:mod:`flower.bulk`; a task that cannot be retried is a 409, an unknown one a
404 (through :data:`flower.base_handler.ERROR_STATUS`). Each sets the
``audit_*`` attributes the API's audit trail records.
"""
from typing import Any

from flower import bulk, retry
from flower.api import RequestError, json_text, signal_name
from flower.api.control import ControlHandler

#: The keys a bulk action's JSON body may filter by, as ``/api/tasks`` spells them.
FILTER_KEYS = ('search', 'taskname', 'state', 'workername', 'received_start', 'received_end',
               'started_start', 'started_end')


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"'{name}' must be an integer from {low} to {high}, not "
                         f"{json_text(value)[:80]}")
    return value


def retry_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The overrides of a retry's JSON body, checked; a ``ValueError`` says what is wrong."""
    unknown = sorted(set(body) - set(retry.OVERRIDES))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; a retry may give "
                         f"{', '.join(retry.OVERRIDES)}")
    checks = {
        'args': lambda value: isinstance(value, list), 'kwargs': lambda value: isinstance(
            value, dict), 'queue': lambda value: isinstance(value, str) and value != '',
    }
    described = {'args': 'a JSON list', 'kwargs': 'a JSON object', 'queue': 'a queue name'}
    for name, check in checks.items():
        if name in body and not check(body[name]):
            raise ValueError(f"'{name}' must be {described[name]}, not {json_text(body[name])[:80]}")
    if 'countdown' in body:
        countdown = body['countdown']
        if isinstance(countdown, bool) or not isinstance(countdown, (int, float)) \
                or not 0 <= countdown <= 10**9:
            raise ValueError(f"'countdown' must be a number of seconds from 0, not "
                             f"{json_text(countdown)[:80]}")
    if 'priority' in body:
        _integer('priority', body['priority'], 0, 255)
    return dict(body)


class ActionHandler(ControlHandler):
    """What retry and bulk handlers share: the form or JSON body of a request."""

    def request_body(self) -> dict[str, Any]:
        """The JSON body; a page's form (the task page's button) has none."""
        content_type = self.request.headers.get('Content-Type', '')
        if content_type.startswith(('application/x-www-form-urlencoded', 'multipart/form-data')):
            return {}
        return self.get_json_body()

    @property
    def retry_links(self) -> retry.RetryLinks:
        return self.application.retry_links


class TaskRetry(ActionHandler):
    async def post(self, taskid: str) -> None:
        try:
            changes = retry_changes(self.request_body())
        except ValueError as exc:
            raise RequestError(400, f"Invalid retry: {exc}") from None
        self.audit_action = 'task.retry'
        self.audit_targets = [taskid]
        new_id = await retry.retry(self.capp, self.tasks, self.retry_links, taskid, changes)
        self.audit_outcome = {'retry': new_id}
        self.write_json({'task-id': new_id, 'retry-of': taskid})


class BulkAction(ActionHandler):
    """``{"ids": [...]}`` or filters (``FILTER_KEYS``), plus ``"dry_run": true``."""

    action = 'revoke'

    def selection(self, body: dict[str, Any]) -> tuple[list[str] | None, Any]:
        """``(ids, None)`` or ``(None, task_filter)`` from the body; a 400 says what is wrong."""
        filters = {key: body.pop(key) for key in FILTER_KEYS if key in body}
        ids = body.pop('ids', None)
        if body:
            raise RequestError(400, f"Invalid {self.action}: unknown key {sorted(body)[0]!r}; "
                                    f"give 'ids' or filters ({', '.join(FILTER_KEYS)}), and "
                                    "'dry_run'")
        if ids is not None and filters:
            raise RequestError(400, f"Invalid {self.action}: give either 'ids' or filters, "
                                    "not both")
        if ids is not None:
            if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
                raise RequestError(400, f"Invalid {self.action}: 'ids' must be a list of task "
                                        "ids (strings)")
            return ids, None
        if not filters:
            raise RequestError(400, f"Invalid {self.action}: give 'ids', or filters "
                                    f"({', '.join(FILTER_KEYS)}) selecting the tasks")
        for key, value in filters.items():
            if value is not None and not isinstance(value, str):
                raise RequestError(400, f"Invalid {self.action}: '{key}' must be a string, not "
                                        f"{json_text(value)[:80]}")

        def argument(name: str, type: Any = str) -> Any:
            value = filters.get(name)
            if not value:
                return None
            try:
                return type(value)
            except ValueError as exc:
                raise RequestError(400, f"Invalid value for '{name}': {value!r} ({exc})") \
                    from None

        return None, self.make_task_filter(argument)

    async def post(self) -> None:
        body = self.get_json_body()
        dry_run = body.pop('dry_run', False)
        if not isinstance(dry_run, bool):
            raise RequestError(400, f"Invalid {self.action}: 'dry_run' must be true or false")
        options = self.action_options(body)
        ids, task_filter = self.selection(body)
        self.audit_action = f'tasks.{self.action}'
        try:
            selected = await bulk.select(self.tasks, self.application.search_executor,
                                         self.application.options.bulk_action_limit, ids=ids,
                                         task_filter=task_filter)
        except bulk.SelectionTooLarge as exc:
            raise RequestError(400, str(exc)) from None
        self.audit_targets = selected
        outcomes = await self.act(selected, dry_run, **options)
        self.audit_outcome = dict(bulk.summary(outcomes), dry_run=dry_run)
        self.write_json({'action': self.action, 'dry_run': dry_run, 'count': len(selected),
                         'tasks': outcomes})

    def action_options(self, body: dict[str, Any]) -> dict[str, Any]:
        """The action's own keys, taken out of ``body``."""
        return {}

    async def act(self, ids: list[str], dry_run: bool, **options: Any) -> list[dict[str, Any]]:
        online = sum(1 for _ in self.application.events.state.alive_workers())
        return await bulk.revoke(self.capp, self.tasks, ids, dry_run=dry_run,
                                 timeout=self.control_timeout, expected_replies=online,
                                 **options)


class BulkRevoke(BulkAction):
    pass


class BulkTerminate(BulkAction):
    action = 'terminate'

    def action_options(self, body: dict[str, Any]) -> dict[str, Any]:
        signal = body.pop('signal', 'SIGTERM')
        try:
            if not isinstance(signal, str):
                raise ValueError("not a signal name")
            return {'terminate': True, 'signal': signal_name(signal)}
        except ValueError as exc:
            raise RequestError(400, f"Invalid value for 'signal': {json_text(signal)[:40]} "
                                    f"({exc})") from None


class BulkRetry(BulkAction):
    action = 'retry'

    async def act(self, ids: list[str], dry_run: bool, **options: Any) -> list[dict[str, Any]]:
        return await bulk.retry_all(self.capp, self.tasks, self.retry_links, ids, dry_run=dry_run)

