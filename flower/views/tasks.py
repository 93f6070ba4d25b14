"""The tasks pages: the table (``/tasks``), its data (``/tasks/datatable``) and one task."""
from flower.options import DEFAULT_TASKS_COLUMNS
from flower.utils.tasks import (
    SORT_FIELDS, as_dict, count_tasks, get_task_by_id, parse_date, search_tasks,
)
from flower.views import MAX_INTEGER, BaseHandler, JsonPageHandler, RequestError

#: Every column the table can show, in the default order of ``--tasks_columns=all``.
ALL_COLUMNS = ('name', 'uuid', 'state', 'args', 'kwargs', 'result', 'received', 'started',
               'runtime', 'worker', 'retries', 'revoked', 'exception', 'expires', 'eta')
TASK_STATES = ('PENDING', 'RECEIVED', 'STARTED', 'SUCCESS', 'FAILURE', 'RETRY', 'REVOKED',
               'REJECTED')
MAX_PAGE_LENGTH = 1000


def visible_task_columns(option: str | None) -> list[str]:
    """The columns ``--tasks_columns`` asks for, in its order; unknown names are ignored."""
    names = [name.strip() for name in (option or DEFAULT_TASKS_COLUMNS).split(',')]
    if 'all' in names:
        return list(ALL_COLUMNS)
    return [name for name in dict.fromkeys(names) if name in ALL_COLUMNS]


class TaskFilters:
    """The filters shared by the page's form and its data requests."""

    names = ('state', 'worker', 'taskname', 'received_start', 'received_end',
             'started_start', 'started_end')

    def __init__(self, handler):
        values = {name: handler.get_argument(name, '').strip() or None for name in self.names}
        for name in ('received_start', 'received_end', 'started_start', 'started_end'):
            if values[name] is not None:
                values[name] = handler.get_argument(name, type=parse_date)
        self.values = values

    def as_query(self):
        """Keyword arguments of :func:`flower.utils.tasks.iter_tasks`."""
        values = dict(self.values)
        values['type'] = values.pop('taskname')
        return values


class TasksView(BaseHandler):
    def get(self):
        columns = visible_task_columns(self.application.options.tasks_columns)
        workers = sorted(self.application.events.state.workers)
        task_names = sorted(self.application.events.state.task_types())
        self.render('tasks.html', columns=columns, states=TASK_STATES, workers=workers,
                    task_names=task_names, filters=TaskFilters(self).values,
                    active_page='tasks')


class TasksDataTable(JsonPageHandler):
    """The table's rows, in the DataTables server-side protocol.

    Only the requested page is sent; filtering, searching and sorting happen here.
    """

    async def get(self):
        draw = self.get_argument('draw', default=0, type=int)
        start = self.get_argument('start', default=0, type=int)
        length = self.get_argument('length', default=25, type=int)
        if not 0 <= start <= MAX_INTEGER or not 0 < length <= MAX_PAGE_LENGTH:
            raise RequestError(400, f"'start' must be >= 0 and at most {MAX_INTEGER}, and "
                                    f"'length' between 1 and {MAX_PAGE_LENGTH}")
        query = TaskFilters(self).as_query()
        query['search'] = self.get_search_argument('search[value]')
        sort_by = self.sort_by()
        events = self.application.events
        total = count_tasks(events)[0]
        filtered, tasks = await search_tasks(events, self.application.search_executor,
                                             limit=length, offset=start, sort_by=sort_by,
                                             count=True, **query)
        self.write({
            'draw': draw,
            'recordsTotal': total,
            'recordsFiltered': filtered,
            'data': [as_dict(self.format_task(task)) for _, task in tasks],
        })

    def sort_by(self):
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
    def get(self, task_id):
        task = get_task_by_id(self.application.events, task_id)
        if task is None:
            raise RequestError(404, f"Unknown task '{task_id}'")
        self.render('task.html', task=as_dict(self.format_task(task)), active_page='tasks')
