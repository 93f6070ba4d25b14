"""``/api/queues/purge/<queue>``: empty a queue on the broker (also the broker page's button)."""
from flower.api import BaseApiHandler, RequestError
from flower.utils.purge import purge_queue


class QueuePurge(BaseApiHandler):
    """Only the queues the broker page lists may be purged: those a worker consumes
    from and those the Celery app configures."""

    audit_action = 'queue.purge'

    async def post(self, queue: str) -> None:
        if queue not in self.get_active_queue_names():
            raise RequestError(404, f"Unknown queue '{queue}': no worker consumes from it and "
                                    "the Celery app does not configure it")
        purged = await purge_queue(self.capp, queue)
        self.write_json({'queue': queue, 'purged': purged})
