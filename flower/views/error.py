"""Fallback handler: every URL no route matches gets the 404 page."""
import tornado.web

from flower.views import BaseHandler


class NotFoundErrorHandler(BaseHandler):
    def prepare(self) -> None:
        super().prepare()
        raise tornado.web.HTTPError(404, reason="Page not found")
