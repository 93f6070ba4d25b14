"""Endpoints for machines: the health check and the Prometheus scrape."""
import prometheus_client

from flower.views import BaseHandler


class Healthcheck(BaseHandler):
    """Always open, as probes cannot log in: ``OK``, or with ``verbose=1`` a JSON object
    that also says how far the ``--persistent`` history is loaded and written (nothing
    about the broker or the cluster, which only logged-in users may see)."""

    def is_public(self) -> bool:
        return True

    async def get(self) -> None:
        if not self.get_argument('verbose', False, type=bool):
            self.write("OK")
            return
        events = self.application.events
        status = {'status': 'OK', 'history': events.history_status()}
        replica = events.replica_status()
        if replica is not None:
            status['replica'] = replica
        self.write(status)


class Metrics(BaseHandler):
    """The application's metrics (see ``docs/prometheus.rst``) in Prometheus' text format."""

    def is_public(self) -> bool:
        return self.application.options.unauthenticated_metrics

    async def get(self) -> None:
        self.set_header('Content-Type', prometheus_client.CONTENT_TYPE_LATEST)
        self.write(self.application.metrics.exposition(self.application.events.state.workers))
