"""Every Flower option, defined once on Tornado's global option registry.

Importing this module (or :mod:`flower.command`) is enough to have the options
defined; ``default_options`` is the registry itself so that ``options.port``
and ``options.mockable()`` work as Tornado users expect.
"""
import types

from prometheus_client import Histogram
from tornado.options import define, options

# The groups ``celery flower --help`` lists the options in, in this order.
SERVER = 'server'
AUTH = 'auth'
BROKER = 'broker'
TASKS = 'tasks'
PERSISTENCE = 'persistence'
METRICS = 'metrics'
OPTION_GROUPS = (SERVER, AUTH, BROKER, TASKS, PERSISTENCE, METRICS)

DEFAULT_CONFIG_FILE = 'flowerconfig.py'
DEFAULT_TASKS_COLUMNS = 'name,uuid,state,args,kwargs,result,received,started,runtime,worker'
DEFAULT_MAX_BODY_SIZE = 10 * 1024 * 1024
DEFAULT_RUNTIME_BUCKETS = [bucket for bucket in Histogram.DEFAULT_BUCKETS if bucket != float('inf')]

# -- Where and how Flower serves

define("port", default=5555, type=int, help="run on the given port", group=SERVER)
define("address", default='', type=str, help="run on the given address (all interfaces when empty)", group=SERVER)
define("unix_socket", default='', type=str, help="path to unix socket to bind", group=SERVER)
define("certfile", type=str, default=None, help="SSL certificate file", group=SERVER)
define("keyfile", type=str, default=None, help="SSL key file", group=SERVER)
define("ca_certs", type=str, default=None, help="SSL certificate authority (CA) file", group=SERVER)
define("xheaders", type=bool, default=False,
       help="trust X-Real-Ip/X-Forwarded-For and X-Scheme/X-Forwarded-Proto headers", group=SERVER)
define("url_prefix", type=str, default='', help="base url prefix, to serve Flower below a path", group=SERVER)
define("cookie_secret", type=str, default=None, help="secret key for signing cookies", group=SERVER)
define("conf", default=DEFAULT_CONFIG_FILE, help="configuration file", group=SERVER)
define("debug", default=False, type=bool, help="run in debug mode", group=SERVER)
define("allowed_hosts", type=str, default=[], multiple=True,
       help="host names Flower answers to in the Host header (comma separated; '*' for any); "
            "IP addresses and localhost always work", group=SERVER)
define("max_body_size", type=int, default=DEFAULT_MAX_BODY_SIZE,
       help="largest request body accepted, in bytes; larger ones get 413", group=SERVER)

# -- Who may see and change what

define("auth", default='', type=str,
       help="regexp of emails to grant access (must match the whole e-mail)", group=AUTH)
define("basic_auth", type=str, default=[], multiple=True,
       help="enable http basic authentication (user:password, comma separated)", group=AUTH)
define("oauth2_key", type=str, default=None, help="OAuth2 key (requires --auth)", group=AUTH)
define("oauth2_secret", type=str, default=None, help="OAuth2 secret (requires --auth)", group=AUTH)
define("oauth2_redirect_uri", type=str, default=None, help="OAuth2 redirect uri (requires --auth)", group=AUTH)
define("auth_provider", default=None, type=str,
       help="auth handler class (e.g. flower.views.auth.GithubLoginHandler)", group=AUTH)
define("read_only", type=bool, default=False,
       help="refuse every control command and task submission", group=AUTH)
define("unauthenticated_api", type=bool, default=False,
       help="without authentication, still open the API and the control buttons to anyone",
       group=AUTH)
define("max_audit_records", type=int, default=1000,
       help="audit records kept in memory (the newest); --persistent keeps every one in --db",
       group=AUTH)
define("revoke_sessions", type=bool, default=False,
       help="end every OAuth session at start (kept in the history with --persistent)", group=AUTH)

# -- Talking to the broker and the workers

define("broker_api", type=str, default=None,
       help="URL of the RabbitMQ management HTTP API, with credentials", group=BROKER)
define("inspect_timeout", default=1000, type=float, help="inspect timeout (in milliseconds)", group=BROKER)
define("enable_events", type=bool, default=True, help="periodically enable Celery events", group=BROKER)

# -- Tasks and workers kept, and how pages show them

define("max_workers", type=int, default=5000, help="maximum number of workers to keep in memory", group=TASKS)
define("max_tasks", type=int, default=100000, help="maximum number of tasks to keep in memory", group=TASKS)
define("auto_refresh", default=True, type=bool, help="refresh dashboards automatically", group=TASKS)
define("purge_offline_workers", default=None, type=int,
       help="time (in seconds) after which offline workers are purged from the dashboard", group=TASKS)
define("format_task", type=types.FunctionType, default=None,
       help="task formatter function, defined in the configuration file", group=TASKS)
define("natural_time", type=bool, default=False, help="show times relative to now first (absolute in the tooltip)", group=TASKS)
define("stream_buffer", type=int, default=10000,
       help="task and worker changes /api/events keeps for clients that reconnect", group=TASKS)
define("bulk_action_limit", type=int, default=10000,
       help="most tasks one bulk revoke, terminate or retry may act on", group=TASKS)
define("tasks_columns", type=str, default=DEFAULT_TASKS_COLUMNS,
       help="comma separated list of columns on the tasks page ('all' for every column)", group=TASKS)

# -- The task history on disk

define("persistent", type=bool, default=False,
       help="keep the task history, workers and counters in --db across restarts", group=PERSISTENCE)
define("db", type=str, default='flower',
       help="where --persistent keeps the history: an SQLite file, or a postgresql:// URL "
            "(which turns --persistent on)", group=PERSISTENCE)
define("state_save_interval", type=int, default=0,
       help="how often (in milliseconds) --persistent writes changes; 0 means every second", group=PERSISTENCE)
define("db_max_tasks", type=int, default=1000000,
       help="most tasks the --persistent history keeps (the newest); 0 for no limit", group=PERSISTENCE)
define("db_max_age", type=float, default=0,
       help="seconds after which --persistent forgets a task; 0 for no limit", group=PERSISTENCE)
define("replica_poll_interval", type=int, default=1000,
       help="how often (in milliseconds) a follower replica reads what the leader wrote "
            "to a PostgreSQL --db", group=PERSISTENCE)

# -- Prometheus

define("unauthenticated_metrics", type=bool, default=False,
       help="serve /metrics without authentication, for Prometheus scrapers", group=METRICS)
define("task_runtime_metric_buckets", type=float, default=DEFAULT_RUNTIME_BUCKETS, multiple=True,
       help="task runtime buckets of the flower_task_runtime_seconds histogram", group=METRICS)

default_options = options
