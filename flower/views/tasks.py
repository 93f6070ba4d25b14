"""The tasks pages: the table (``/tasks``), its data (``/tasks/datatable``) and one task."""
import datetime

from flower.options import DEFAULT_TASKS_COLUMNS
from flower.tasks import SORT_FIELDS, TaskFilter, Tasks, as_dict, parse_date
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


class TaskArguments:
    """The tasks of the application and the filter of a request, for handlers.

    The one place that knows how a query string spells the filters: the task
    name is ``taskname``; the worker is ``workername`` in the API and
    ``worker`` on the tasks page.
    """

    def task_filter(self: BaseHandler, worker_argument: str = 'workername',
                    search_argument: str | None = 'search') -> TaskFilter:
        """The request's filter; a 400 names an argument that is not valid."""
        def text(name: str) -> str | None:
            return self.get_argument(name, '') or None

        def moment(name: str) -> datetime.datetime | None:
            return self.get_argument(name, type=parse_date) if text(name) else None

        return TaskFilter(
            name=text('taskname'), worker=text(worker_argument), state=text('state'),
            received_start=moment('received_start'), received_end=moment('received_end'),
            started_start=moment('started_start'), started_end=moment('started_end'),
            search=self.get_search_argument(search_argument) if search_argument else None,
        )

    @property
    def tasks(self: BaseHandler) -> Tasks:
        """The tasks in memory and, with ``--persistent``, in the history."""
        events = self.application.events
        return Tasks(events.state, events.store)


class TasksView(TaskArguments, BaseHandler):
    def get(self):
        columns = visible_task_columns(self.application.options.tasks_columns)
        workers = sorted(self.application.events.state.workers)
        task_names = sorted(self.application.events.state.task_types())
        # The search box shows the ``search`` argument as it is; the table's requests check it.
        self.render('tasks.html', columns=columns, states=TASK_STATES, workers=workers,
                    task_names=task_names,
                    task_filter=self.task_filter(worker_argument='worker', search_argument=None),
                    active_page='tasks')


class TasksDataTable(TaskArguments, JsonPageHandler):
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


class TaskView(TaskArguments, BaseHandler):
    def get(self, task_id):
        task = self.tasks.get(task_id)
        if task is None:
            raise RequestError(404, f"Unknown task '{task_id}'")
        self.render('task.html', task=as_dict(self.format_task(task)), active_page='tasks')
