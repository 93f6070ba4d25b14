"""The graphs page (``/monitor``) and the numbers it draws (``/monitor/data``)."""
from flower.task_stats import GROUPINGS
from flower.views import BaseHandler, JsonPageHandler, RequestError

#: The time windows the page offers, in seconds.
WINDOWS = (900, 3600, 6 * 3600, 24 * 3600)


class MonitorView(BaseHandler):
    def get(self) -> None:
        self.render('monitor.html', windows=WINDOWS, active_page='monitor')


class MonitorData(JsonPageHandler):
    """The graphs' data, with the number of the last change it counts (``last_event_id``)
    so the page can count the next ones from the stream; ``parts=queues`` asks for the
    queue lengths only (sampled by Flower, they do not come with the stream)."""

    def get(self) -> None:
        queues = self.application.queue_history.series()
        parts = self.get_argument('parts', '')
        if parts not in ('', 'queues'):
            raise RequestError(400, f"'parts' must be 'queues' or left out, not {parts!r}")
        if parts == 'queues':
            self.write({'queues': queues})
            return
        window = self.get_argument('window', default=3600, type=int)
        if window not in WINDOWS:
            raise RequestError(400, f"'window' must be one of {', '.join(map(str, WINDOWS))}")
        group_by = self.get_argument('group_by', 'name')
        if group_by not in GROUPINGS:
            raise RequestError(400, f"'group_by' must be one of {', '.join(GROUPINGS)}")
        data = dict(self.application.task_stats.snapshot(window, group_by))
        data.update(queues=queues, window=window,
                    last_event_id=self.application.events.changes.last_id)
        self.write(data)
