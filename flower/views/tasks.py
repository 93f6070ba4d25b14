"""The tasks pages: the table (``/tasks``), its data (``/tasks/datatable``) and one task."""

from celery import states

from flower.options import DEFAULT_TASKS_COLUMNS
from flower.retry import RETRYABLE_STATES
from flower.task_listing import AtLeast
from flower.tasks import SORT_FIELDS, TaskFilter, as_dict
from flower.utils.search_hints import search_warnings
from flower.utils.template import format_duration
from flower.views import MAX_INTEGER, BaseHandler, JsonPageHandler, RequestError
from flower.workflow_lookup import group_of

#: Every column the table can show, in the default order of ``--tasks_columns=all``.
ALL_COLUMNS = ('name', 'uuid', 'state', 'args', 'kwargs', 'result', 'received', 'started',
               'runtime', 'worker', 'retries', 'revoked', 'exception', 'expires', 'eta')
TASK_STATES = ('PENDING', 'RECEIVED', 'STARTED', 'SUCCESS', 'FAILURE', 'RETRY', 'REVOKED',
               'REJECTED')
MAX_PAGE_LENGTH = 1000
#: The moments a task goes through, in order; the first of FINISHED_FIELDS found ends it.
FINISHED_FIELDS = ('succeeded', 'failed', 'rejected', 'revoked')

#: When each button of a task's page can work: (only in these states, never in these);
#: the page disables it otherwise, and follows the state live (static/js/actions.js).
ACTION_STATES = {
    'revoke': ((), tuple(sorted(states.READY_STATES))),
    'terminate': ((states.STARTED,), ()),
    'retry': (tuple(sorted(RETRYABLE_STATES | {states.RETRY})), ()),
}


def visible_task_columns(option: str | None) -> list[str]:
    """The columns ``--tasks_columns`` asks for, in its order; unknown names are ignored."""
    names = [name.strip() for name in (option or DEFAULT_TASKS_COLUMNS).split(',')]
    if 'all' in names:
        return list(ALL_COLUMNS)
    return [name for name in dict.fromkeys(names) if name in ALL_COLUMNS]


class TasksView(BaseHandler):
    def get(self) -> None:
        columns = visible_task_columns(self.application.options.tasks_columns)
        workers = sorted(self.application.events.state.workers)
        task_names = sorted(self.application.events.state.task_types())
        # The search box shows the ``search`` argument as it is; the table's requests check it.
        # Links (the dashboard's counts) name the worker as the API does: ``workername``.
        worker_argument = 'workername' if self.get_argument('workername', '') else 'worker'
        self.render('tasks.html', columns=columns, states=TASK_STATES, workers=workers,
                    task_names=task_names,
                    task_filter=self.task_filter(worker_argument=worker_argument,
                                                 search_argument=None),
                    active_page='tasks')


class TasksDataTable(JsonPageHandler):
    """The table's rows, in the DataTables server-side protocol.

    Only the requested page is sent; filtering, searching and sorting happen here.
    """

    async def get(self) -> None:
        draw = self.get_argument('draw', default=0, type=int)
        start = self.get_argument('start', default=0, type=int)
        length = self.get_argument('length', default=25, type=int)
        if not 0 <= start <= MAX_INTEGER or not 0 < length <= MAX_PAGE_LENGTH:
            raise RequestError(400, f"'start' must be >= 0 and at most {MAX_INTEGER}, and "
                                    f"'length' between 1 and {MAX_PAGE_LENGTH}")
        task_filter = self.task_filter(worker_argument='worker', search_argument='search[value]')
        sort_by = self.sort_by()
        listing = self.tasks
        total = listing.count(TaskFilter())[0]
        filtered, tasks = await listing.page(task_filter, self.application.search_executor,
                                             sort_by=sort_by, offset=start, limit=length,
                                             count=True)
        self.write({
            'draw': draw,
            'recordsTotal': total,
            'recordsFiltered': filtered,
            # A search's count stops at a thousand or so: "1,000+" (see AtLeast).
            'recordsFilteredAtLeast': isinstance(filtered, AtLeast),
            'data': [as_dict(self.format_task(task)) for _, task in tasks],
            'warnings': search_warnings(task_filter.search),
        })

    def sort_by(self) -> str | None:
        """``order[0][column]`` names a column index; its ``columns[i][data]`` is the field."""
        column = self.get_argument('order[0][column]', default=None, type=int)
        if column is None:
            return None
        field = self.get_argument(f'columns[{column}][data]', '')
        if field not in SORT_FIELDS:
            raise RequestError(400, f"Cannot sort by column {column} ({field!r})")
        direction = self.get_argument('order[0][dir]', 'asc')
        if direction not in ('asc', 'desc'):
            raise RequestError(400, f"'order[0][dir]' must be 'asc' or 'desc', not {direction!r}")
        return field if direction == 'asc' else '-' + field


class TaskView(BaseHandler):
    async def get(self, task_id: str) -> None:
        task = self.tasks.get(task_id)
        if task is None:
            raise RequestError(404, f"Unknown task '{task_id}'")
        fields = as_dict(self.format_task(task))
        linked = fields['parent_id'] or fields['children'] or \
            fields['root_id'] not in (None, task_id)
        # A group is only in the result backend's record: asked only when nothing else says.
        in_workflow = bool(linked) or await group_of(self.capp, task_id) is not None
        links = self.application.retry_links
        self.render('task.html', task=fields, in_workflow=in_workflow, active_page='tasks',
                    action_states=ACTION_STATES,
                    retry_of=links.original_of(task_id), retries=links.retries_of(task_id),
                    timeline=task_timeline(fields), related=self.related(fields))

    def related(self, fields: dict) -> dict:
        """The parent, root and children as ``{'id', 'name', 'state'}`` (name and state
        ``None`` when unknown), never the task itself: a Celery retry keeps the task's id
        and is sent from within the task, so it names the task as its own parent."""
        own = fields['uuid']

        def described(task_id: str) -> dict:
            task = self.tasks.get(task_id)
            return {'id': task_id, 'name': getattr(task, 'name', None),
                    'state': getattr(task, 'state', None)}

        return {
            'parent': described(fields['parent_id']) if fields['parent_id'] not in (None, own) else None,
            'root': described(fields['root_id']) if fields['root_id'] not in (None, own) else None,
            'children': [described(child) for child in fields['children'] or () if child != own],
        }


def task_timeline(fields: dict) -> list[tuple[str, str]]:
    """``(step, time since the step before)`` for the steps a task went
    through among sent, received, started and finished (the first step has no gap)."""
    finished = next((fields[name] for name in FINISHED_FIELDS if fields.get(name)), None)
    steps = [(step, moment) for step, moment in (
        ('sent', fields.get('sent')), ('received', fields.get('received')),
        ('started', fields.get('started')), ('finished', finished)) if moment]
    timeline = []
    for index, (step, moment) in enumerate(steps):
        gap = '' if index == 0 else format_duration(max(0.0, moment - steps[index - 1][1]))
        timeline.append((step, gap))
    return timeline
