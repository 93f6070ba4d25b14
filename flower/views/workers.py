"""The workers dashboard (``/`` and ``/workers``)."""
from collections.abc import Callable
from typing import Any

from tornado.escape import url_escape, xhtml_escape

from flower.control import InspectionFailed
from flower.utils import encodable
from flower.utils.template import format_count
from flower.views import BaseHandler
from flower.views.worker import WorkerView
from flower.workers import totals, worker_rows

#: Flower 2.2 users import the worker page's handler from here too.
__all__ = ['WorkerRowsHtml', 'WorkerView', 'WorkersView']

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


def _count_cell(value: Any) -> tuple[str, str]:
    """A counter's ``data-value`` and its text when it is not a number: a worker's events
    may say anything for its number of active tasks."""
    return xhtml_escape(str(value)), xhtml_escape(format_count(value))


class WorkerRowsHtml:
    """The dashboard table's rows as HTML, one application's.

    With hundreds of workers the template engine spent most of the page's time
    on the rows; here each row is joined from its parts. The parts that depend
    only on a worker's name (its escaped name, its links) are kept from one
    request to the next, for the workers the last request showed.
    """

    def __init__(self, url: Callable[[str], str]) -> None:
        self._url = url
        self._links = count_links(url)
        self._columns = tuple(column for column, _, _, _ in self._links)
        self._named = {}  # worker name -> (row head, (before value, between value and count)...)

    def _name_parts(self, hostname: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        name = encodable(hostname)
        escaped, query = xhtml_escape(name), url_escape(name)
        link = xhtml_escape(self._url('/worker/' + url_escape(name, plus=False)))
        head = (f'\n<tr data-worker="{escaped}">\n<td class="worker-name"><a href="{link}">'
                f'{escaped}</a></td>\n<td data-column="status"><span class="status ')
        cells = tuple((f'\n<td class="num" data-column="{escaped_column}" data-value="',
                       f'"><a href="{link_start}{query}" title="{title}{escaped}">')
                      for _, escaped_column, link_start, title in self._links)
        return head, cells

    def render(self, rows: list[dict[str, Any]]) -> bytes:
        """The ``<tr>`` of each of ``rows`` (:func:`flower.workers.worker_rows`), escaped, in
        UTF-8 with any lone surrogate as a backslash escape (as :func:`flower.utils.encodable`
        leaves text): the page's text is not searched for them again."""
        named, kept, parts = self._named, {}, []
        add, columns = parts.append, self._columns
        for row in rows:
            hostname = row['hostname']
            head, cells = kept[hostname] = named.get(hostname) or self._name_parts(hostname)
            online = row['status']
            add(head)
            add('online">Online</span></td>\n' if online else 'offline">Offline</span></td>\n')
            for column, (before, between) in zip(columns, cells):
                value = row[column]
                if type(value) is int:
                    add(f'{before}{value}{between}{value:,}</a></td>\n')
                else:
                    value, text = _count_cell(value)
                    add(f'{before}{value}{between}{text}</a></td>\n')
            loadavg = row['loadavg']
            shown = ('—' if not online else
                     xhtml_escape(', '.join('%.2f' % load for load in loadavg)) if loadavg else '')
            add(f'\n<td data-column="loadavg">{shown}</td>\n</tr>\n')
        self._named = kept
        return ''.join(parts).encode('utf-8', 'backslashreplace')


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
            self.render('workers.html', rows_html=self.application.worker_rows_html.render(rows),
                        worker_count=len(rows), online=sum(1 for row in rows if row['status']),
                        totals=totals(rows), active_page='workers', count_states=COUNT_STATES)
