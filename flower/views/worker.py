"""The page of one worker (``/worker/<name>``): its inspect replies, tab by tab."""
import logging

from flower.views import BaseHandler, RequestError
from flower.workers import worker_detail

logger = logging.getLogger(__name__)


class WorkerView(BaseHandler):
    async def get(self, name: str) -> None:
        if not await self.application.knows_worker(name):
            raise RequestError(404, f"Unknown worker '{name}'")
        refresh_error = None
        try:
            await self.application.update_workers(workername=name)
        except Exception as exc:  # whatever the broker raised: show what Flower last knew
            logger.warning("Inspecting worker %s failed: %s: %s", name, type(exc).__name__, exc)
            refresh_error = f"{type(exc).__name__}: {exc}"
        state, inspected = self.application.events.state, self.application.workers
        self.render('worker.html', worker=worker_detail(state, inspected, name),
                    refresh_error=refresh_error, active_page='workers')
