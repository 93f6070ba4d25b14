"""Endpoints for machines: the health check and the Prometheus scrape."""
import prometheus_client

from flower.views import BaseHandler


class Healthcheck(BaseHandler):
    """Always open: it only says ``OK``, and probes cannot log in."""

    def is_public(self):
        return True

    async def get(self):
        self.write("OK")


class Metrics(BaseHandler):
    """The application's metrics (see ``docs/prometheus.rst``) in Prometheus' text format."""

    def is_public(self):
        return self.application.options.unauthenticated_metrics

    async def get(self):
        self.set_header('Content-Type', prometheus_client.CONTENT_TYPE_LATEST)
        self.write(self.application.metrics.exposition(self.application.events.state.workers))
