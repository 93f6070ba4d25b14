"""The workers dashboard (``/`` and ``/workers``)."""
import logging

from flower.views import BaseHandler
from flower.workers import purge_offline_workers, totals, worker_rows

logger = logging.getLogger(__name__)


class WorkersView(BaseHandler):
    async def get(self):
        refresh = self.get_argument('refresh', default=False, type=bool)
        as_json = self.get_argument('json', default=False, type=bool)
        if refresh:
            try:
                await self.application.update_workers()
            except Exception as exc:
                logger.warning("Refreshing workers failed: %s: %s", type(exc).__name__, exc)
        self.purge_offline_workers()
        rows = worker_rows(self.application.events.state, self.application.workers)
        if as_json:
            self.write({'data': rows})
        else:
            self.render('workers.html', workers=rows, totals=totals(rows), active_page='workers')

    def purge_offline_workers(self):
        """With ``--purge_offline_workers``, forget long-offline workers and their metrics."""
        max_age = self.application.options.purge_offline_workers
        if max_age is None:
            return
        for name in purge_offline_workers(self.application.events.state,
                                          self.application.workers, max_age):
            logger.info("Purged worker %s, offline for more than %s s", name, max_age)
            self.application.metrics.remove_worker(name)
