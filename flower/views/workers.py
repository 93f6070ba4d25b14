"""The workers dashboard (``/`` and ``/workers``)."""
from collections.abc import Callable

from tornado.escape import xhtml_escape

from flower.control import InspectionFailed
from flower.views import BaseHandler
from flower.views.worker import WorkerView
from flower.workers import totals, worker_rows

#: Flower 2.2 users import the worker page's handler from here too.
__all__ = ['WorkerView', 'WorkersView']

#: The dashboard's counters, each with the task state the tasks table shows for it
#: ('' for every state): every count links to the table filtered by worker and state.
COUNT_STATES = (('active', 'Active', 'STARTED'), ('processed', 'Processed', ''),
                ('failed', 'Failed', 'FAILURE'), ('succeeded', 'Succeeded', 'SUCCESS'),
                ('retried', 'Retried', 'RETRY'))


def count_links(url: Callable[[str], str]) -> list[tuple[str, str, str, str]]:
    """Per dashboard counter: its column, escaped, and the escaped beginnings of its link
    and its title, which each row ends with its worker's name (escaped once a row)."""
    return [(column, xhtml_escape(column),
             xhtml_escape(url('/tasks?' + ('state=' + state + '&' if state else '') + 'worker=')),
             xhtml_escape(label + ' tasks of ')) for column, label, state in COUNT_STATES]


class WorkersView(BaseHandler):
    async def get(self) -> None:
        refresh = self.get_argument('refresh', default=False, type=bool)
        as_json = self.get_argument('json', default=False, type=bool)
        if refresh:
            try:
                await self.application.update_workers()
            except InspectionFailed:
                pass  # logged; the table shows what Flower last knew
        rows = worker_rows(self.application.events.state, self.application.workers)
        if as_json:
            self.write({'data': rows})
        else:
            self.render('workers.html', workers=rows, totals=totals(rows), active_page='workers',
                        count_states=COUNT_STATES,
                        count_links=count_links(self.application.url_for_path))
