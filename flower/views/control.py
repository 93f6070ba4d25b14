"""What the pages' buttons post to: the API's control endpoints under page access rules.

Every ``/api/worker/...`` and ``/api/task/...`` control endpoint has a twin
at ``/control/...`` (the same path with ``/api`` replaced), handled by the
API's own handler class: the same validation, the same call to
:mod:`flower.control`, the same JSON reply or error. Only who may call
differs. The API is meant for scripts and stays closed until authentication
is configured; these twins follow the pages' rules instead (page
authentication when configured) and, since a browser sends them, require the
XSRF token. ``--read_only`` refuses them like the API's.
"""
import tornado.web

from flower.api import control as api_control
from flower.views import BaseHandler, RequestError


class PageAccess:
    """Put first in the bases of an API handler to apply the pages' access rules."""

    check_xsrf_cookie = tornado.web.RequestHandler.check_xsrf_cookie

    def prepare(self):
        BaseHandler.prepare(self)
        if self.application.options.read_only:
            raise RequestError(403, "Flower runs in read-only mode (--read_only): control "
                                    "commands are refused")


class WorkerShutDown(PageAccess, api_control.WorkerShutDown):
    pass


class WorkerPoolRestart(PageAccess, api_control.WorkerPoolRestart):
    pass


class WorkerPoolGrow(PageAccess, api_control.WorkerPoolGrow):
    pass


class WorkerPoolShrink(PageAccess, api_control.WorkerPoolShrink):
    pass


class WorkerPoolAutoscale(PageAccess, api_control.WorkerPoolAutoscale):
    pass


class WorkerQueueAddConsumer(PageAccess, api_control.WorkerQueueAddConsumer):
    pass


class WorkerQueueCancelConsumer(PageAccess, api_control.WorkerQueueCancelConsumer):
    pass


class TaskRevoke(PageAccess, api_control.TaskRevoke):
    pass


class TaskTimeout(PageAccess, api_control.TaskTimeout):
    pass


class TaskRateLimit(PageAccess, api_control.TaskRateLimit):
    pass


handlers = [
    (r"/control/worker/shutdown/(.+)", WorkerShutDown),
    (r"/control/worker/pool/restart/(.+)", WorkerPoolRestart),
    (r"/control/worker/pool/grow/(.+)", WorkerPoolGrow),
    (r"/control/worker/pool/shrink/(.+)", WorkerPoolShrink),
    (r"/control/worker/pool/autoscale/(.+)", WorkerPoolAutoscale),
    (r"/control/worker/queue/add-consumer/(.+)", WorkerQueueAddConsumer),
    (r"/control/worker/queue/cancel-consumer/(.+)", WorkerQueueCancelConsumer),
    (r"/control/task/revoke/(.+)", TaskRevoke),
    (r"/control/task/timeout/(.+)", TaskTimeout),
    (r"/control/task/rate-limit/(.+)", TaskRateLimit),
]
