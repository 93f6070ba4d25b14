"""The route table and the Tornado settings of a Flower application, made from its options.

``handlers`` and ``settings``, which users' code imports from here, are made
on access from the options as they are then.
"""
import os
from typing import Any

from tornado.options import OptionParser
from tornado.web import url

from flower.api import ApiNotFound
from flower.api import actions as api_actions
from flower.api import control as api_control
from flower.api import audit as api_audit
from flower.api import openapi as api_openapi
from flower.api import queues as api_queues
from flower.api import stream as api_stream
from flower.api import tasks as api_tasks
from flower.api import workflow as api_workflow
from flower.options import default_options
from flower.utils import gen_cookie_secret
from flower.views import StaticFiles
from flower.views.audit import AuditView
from flower.views.auth import DEFAULT_PROVIDER, LoginHandler, LogoutHandler, load_provider
from flower.views.broker import BrokerView
from flower.views.error import NotFoundErrorHandler
from flower.views.monitor import Healthcheck, Metrics
from flower.views.statistics import MonitorData, MonitorView
from flower.views.tasks import TasksDataTable, TasksView, TaskView
from flower.views.worker import WorkerView
from flower.views.workers import WorkersView
from flower.views.workflow import WorkflowData, WorkflowView

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

#: The endpoints that change something on the workers or the broker. Each is served twice by
#: the same handler: under ``/api`` for scripts, and under ``/control`` for the
#: pages' buttons, with the pages' access rules (``access='page'``).
CONTROL_ENDPOINTS = [
    (r"/worker/shutdown/(.+)", api_control.WorkerShutDown),
    (r"/worker/pool/restart/(.+)", api_control.WorkerPoolRestart),
    (r"/worker/pool/grow/(.+)", api_control.WorkerPoolGrow),
    (r"/worker/pool/shrink/(.+)", api_control.WorkerPoolShrink),
    (r"/worker/pool/autoscale/(.+)", api_control.WorkerPoolAutoscale),
    (r"/worker/queue/add-consumer/(.+)", api_control.WorkerQueueAddConsumer),
    (r"/worker/queue/cancel-consumer/(.+)", api_control.WorkerQueueCancelConsumer),
    (r"/task/revoke/(.+)", api_control.TaskRevoke),
    (r"/task/timeout/(.+)", api_control.TaskTimeout),
    (r"/task/rate-limit/(.+)", api_control.TaskRateLimit),
    (r"/queues/purge/(.+)", api_queues.QueuePurge),
    (r"/task/retry/(.+)", api_actions.TaskRetry),
    (r"/tasks/revoke", api_actions.BulkRevoke),
    (r"/tasks/terminate", api_actions.BulkTerminate),
    (r"/tasks/retry", api_actions.BulkRetry),
]


def routes(options: OptionParser = default_options) -> list:
    """Every route of the application; ``/login`` is the ``--auth_provider``'s handler
    when ``--auth`` is set. Patterns are relative to ``--url_prefix``."""
    login = load_provider(options.auth_provider or DEFAULT_PROVIDER) if options.auth \
        else LoginHandler
    return [
        url(r"/", WorkersView, name='main'),
        url(r"/workers", WorkersView, name='workers'),
        url(r"/worker/(.+)", WorkerView, name='worker'),
        url(r"/broker", BrokerView, name='broker'),
        url(r"/tasks", TasksView, name='tasks'),
        url(r"/tasks/datatable", TasksDataTable, name='tasks-datatable'),
        url(r"/task/(.+)", TaskView, name='task'),
        url(r"/workflow/(.+)", WorkflowView, name='workflow'),
        url(r"/workflow-data/(.+)", WorkflowData, name='workflow-data'),
        url(r"/monitor", MonitorView, name='monitor'),
        url(r"/audit", AuditView, name='audit'),
        url(r"/monitor/data", MonitorData, name='monitor-data'),
        url(r"/login", login, name='login'),
        url(r"/logout", LogoutHandler, name='logout'),
        url(r"/healthcheck", Healthcheck, name='healthcheck'),
        url(r"/metrics", Metrics, name='metrics'),
        # HTTP API (see docs/api.rst); the last entry answers unknown /api/ URLs with JSON.
        (r"/api/workers/?", api_control.ListWorkers),
        *[(r"/api" + path, handler) for path, handler in CONTROL_ENDPOINTS],
        (r"/api/tasks/?", api_tasks.ListTasks),
        (r"/api/task/types/?", api_tasks.ListTaskTypes),
        (r"/api/queues/length/?", api_tasks.GetQueueLengths),
        (r"/api/task/info/(.*)", api_tasks.TaskInfo),
        (r"/api/task/apply/(.+)", api_tasks.TaskApply),
        (r"/api/task/async-apply/(.+)", api_tasks.TaskAsyncApply),
        (r"/api/task/send-task/(.+)", api_tasks.TaskSend),
        (r"/api/task/result/(.+)", api_tasks.TaskResult),
        (r"/api/task/abort/(.+)", api_tasks.TaskAbort),
        (r"/api/audit/?", api_audit.AuditListing),
        (r"/api/events/?", api_stream.EventStream),
        (r"/api/workflow/(.+)", api_workflow.WorkflowInfo),
        (r"/api/openapi\.json", api_openapi.OpenApiDocument),
        (r"/api(?:/.*)?", ApiNotFound),
        *[(r"/control" + path, handler, {'access': 'page'}) for path, handler in CONTROL_ENDPOINTS],
        # The tasks page follows /api/events under the pages' access rules.
        (r"/tasks/live", api_stream.EventStream, {'access': 'page'}),
    ]


def app_settings(options: OptionParser = default_options) -> dict[str, Any]:
    """Tornado's settings for the application; a fresh cookie secret unless
    ``--cookie_secret`` gives one (sessions then end when Flower restarts)."""
    return dict(
        template_path=os.path.join(_PACKAGE_DIR, 'templates'),
        static_path=os.path.join(_PACKAGE_DIR, 'static'),
        static_url_prefix='/static/',
        cookie_secret=options.cookie_secret or gen_cookie_secret(),
        login_url='/login',
        xsrf_cookies=True,
        default_handler_class=NotFoundErrorHandler,
        static_handler_class=StaticFiles,
        compiled_template_cache=not options.debug,
        static_hash_cache=not options.debug,
    )


def __getattr__(name: str) -> Any:
    """``flower.urls.handlers`` and ``flower.urls.settings``, made from the current options."""
    if name == 'handlers':
        return routes(default_options)
    if name == 'settings':
        return app_settings(default_options)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
