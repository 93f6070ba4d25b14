"""The page of one worker (``/worker/<name>``): its inspect replies, tab by tab."""
from flower.control import InspectionFailed
from flower.views import BaseHandler, RequestError
from flower.workers import worker_detail


class WorkerView(BaseHandler):
    async def get(self, name: str) -> None:
        if not await self.application.knows_worker(name):
            raise RequestError(404, f"Unknown worker '{name}'")
        refresh_error = None
        try:
            await self.application.update_workers(workername=name)
        except InspectionFailed as exc:  # logged; the page shows what Flower last knew
            refresh_error = str(exc)
        state, inspected = self.application.events.state, self.application.workers
        self.render('worker.html', worker=worker_detail(state, inspected, name),
                    refresh_error=refresh_error, active_page='workers')
