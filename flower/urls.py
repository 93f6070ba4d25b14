"""The route table and the default Tornado settings of the Flower application."""
import os

from tornado.web import url

from flower.api import ApiNotFound
from flower.api import control as api_control
from flower.api import stream as api_stream
from flower.api import tasks as api_tasks
from flower.utils import gen_cookie_secret
from flower.views.auth import LoginHandler, LogoutHandler
from flower.views import StaticFiles
from flower.views import control as page_control
from flower.views.broker import BrokerView
from flower.views.error import NotFoundErrorHandler
from flower.views.monitor import Healthcheck, Metrics
from flower.views.statistics import MonitorData, MonitorView
from flower.views.tasks import TasksDataTable, TasksView, TaskView
from flower.views.worker import WorkerView
from flower.views.workers import WorkersView

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

settings = dict(
    template_path=os.path.join(_PACKAGE_DIR, 'templates'),
    static_path=os.path.join(_PACKAGE_DIR, 'static'),
    static_url_prefix='/static/',
    cookie_secret=gen_cookie_secret(),
    login_url='/login',
    xsrf_cookies=True,
    default_handler_class=NotFoundErrorHandler,
    static_handler_class=StaticFiles,
)

handlers = [
    url(r"/", WorkersView, name='main'),
    url(r"/workers", WorkersView, name='workers'),
    url(r"/worker/(.+)", WorkerView, name='worker'),
    url(r"/broker", BrokerView, name='broker'),
    url(r"/tasks", TasksView, name='tasks'),
    url(r"/tasks/datatable", TasksDataTable, name='tasks-datatable'),
    url(r"/task/(.+)", TaskView, name='task'),
    url(r"/monitor", MonitorView, name='monitor'),
    url(r"/monitor/data", MonitorData, name='monitor-data'),
    url(r"/login", LoginHandler, name='login'),
    url(r"/logout", LogoutHandler, name='logout'),
    url(r"/healthcheck", Healthcheck, name='healthcheck'),
    url(r"/metrics", Metrics, name='metrics'),
    # HTTP API (see docs/api.rst); the last entry answers unknown /api/ URLs with JSON.
    (r"/api/workers/?", api_control.ListWorkers),
    (r"/api/worker/shutdown/(.+)", api_control.WorkerShutDown),
    (r"/api/worker/pool/restart/(.+)", api_control.WorkerPoolRestart),
    (r"/api/worker/pool/grow/(.+)", api_control.WorkerPoolGrow),
    (r"/api/worker/pool/shrink/(.+)", api_control.WorkerPoolShrink),
    (r"/api/worker/pool/autoscale/(.+)", api_control.WorkerPoolAutoscale),
    (r"/api/worker/queue/add-consumer/(.+)", api_control.WorkerQueueAddConsumer),
    (r"/api/worker/queue/cancel-consumer/(.+)", api_control.WorkerQueueCancelConsumer),
    (r"/api/tasks/?", api_tasks.ListTasks),
    (r"/api/task/types/?", api_tasks.ListTaskTypes),
    (r"/api/queues/length/?", api_tasks.GetQueueLengths),
    (r"/api/task/info/(.*)", api_tasks.TaskInfo),
    (r"/api/task/apply/(.+)", api_tasks.TaskApply),
    (r"/api/task/async-apply/(.+)", api_tasks.TaskAsyncApply),
    (r"/api/task/send-task/(.+)", api_tasks.TaskSend),
    (r"/api/task/result/(.+)", api_tasks.TaskResult),
    (r"/api/task/abort/(.+)", api_tasks.TaskAbort),
    (r"/api/task/revoke/(.+)", api_control.TaskRevoke),
    (r"/api/task/timeout/(.+)", api_control.TaskTimeout),
    (r"/api/task/rate-limit/(.+)", api_control.TaskRateLimit),
    (r"/api/events/?", api_stream.EventStream),
    (r"/api(?:/.*)?", ApiNotFound),
    # The pages' buttons: the control endpoints above under page access rules.
    *page_control.handlers,
]
