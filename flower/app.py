"""The Flower Tornado application: wires capture, inspection and the web handlers."""
import ipaddress
import logging
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import celery
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPMessageDelegate, HTTPServerRequest
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.log import access_log
from tornado.netutil import bind_unix_socket
from tornado.options import OptionParser

from flower import urls
from flower.audit import AuditTrail
from flower.control import InspectionFailed
from flower.events import Events
from flower.inspector import Inspection, Inspector
from flower.metrics import PrometheusMetrics
from flower.options import default_options
from flower.queue_history import QueueHistory
from flower.retry import RetryLinks
from flower.task_stats import TaskStatistics
from flower.utils import describe_error
from flower.utils.broker import BrokerError, active_queue_names, queue_lengths
from flower.security import Sessions, body_too_large_message, read_limit, redacted_uri
from flower.views import RefusedRequest
from flower.views.workers import WorkerRowsHtml
from flower.workers import WorkerAnswers, expected_repliers, is_known, long_offline_workers

logger = logging.getLogger(__name__)


def normalize_url_prefix(url_prefix: str | None) -> str:
    """``'flower'``, ``'/flower/'`` → ``'/flower'``; empty stays empty."""
    stripped = (url_prefix or '').strip('/')
    return '/' + stripped if stripped else ''


def rewrite_handler(handler: tornado.web.URLSpec | tuple,
                    url_prefix: str) -> tornado.web.URLSpec | tuple:
    """Return ``handler`` (a ``URLSpec`` or a tuple) with its pattern moved under ``url_prefix``."""
    prefix = normalize_url_prefix(url_prefix)
    if isinstance(handler, tornado.web.URLSpec):
        pattern = handler.regex.pattern
        return tornado.web.url(re.escape(prefix) + pattern, handler.handler_class, handler.kwargs,
                               handler.name)
    pattern, *rest = handler
    return (re.escape(prefix) + pattern, *rest)


def allowed_host_names(options: OptionParser) -> set[str] | None:
    """The host names ``--allowed_hosts`` lists, or by default the bound address and,
    bound to every interface, this machine's names; None when any name is allowed."""
    names = list(options.allowed_hosts)
    if not names:
        address = options.address if not options.unix_socket else ''
        names = [address] if address not in ('', '0.0.0.0', '::') else [
            socket.gethostname(), socket.getfqdn()]
    if '*' in names:
        return None
    return {host_name(name) for name in names if name.strip()}


def host_name(host: str) -> str:
    """``'Flower.Example.com.:5555'`` → ``'flower.example.com'``: how names are compared."""
    return re.sub(r':\d*$', '', host.strip().lower()).rstrip('.')


def host_allowed(host: str, allowed_names: set[str] | None) -> bool:
    """True if the ``Host`` header names an IP address, ``localhost`` or an allowed name.

    DNS rebinding needs a name the attacker controls, so addresses are always
    safe; a name starting with a dot allows the domain and its subdomains.
    """
    if allowed_names is None:
        return True
    name = host_name(host)
    try:
        ipaddress.ip_address(name.strip('[]'))
        return True
    except ValueError:
        pass
    if name == 'localhost' or name in allowed_names:
        return True
    return any(allowed.startswith('.') and (name.endswith(allowed) or name == allowed[1:])
               for allowed in allowed_names)


class Flower(tornado.web.Application):
    """A Tornado application monitoring one Celery app."""

    pool_executor_cls = ThreadPoolExecutor
    max_executor_workers = 16
    #: Searches match every task in threads of their own, this many at a time.
    max_search_workers = 2
    queue_sample_interval = 10000  # milliseconds between two samples of the queue lengths

    def __init__(self, options: OptionParser | None = None, capp: celery.Celery | None = None,
                 events: Events | None = None, io_loop: IOLoop | None = None,
                 **kwargs: Any) -> None:
        self.options = options or default_options
        self.url_prefix = normalize_url_prefix(self.options.url_prefix)
        handlers = kwargs.pop('handlers', None) or urls.routes(self.options)
        settings = dict(urls.app_settings(self.options), **kwargs)
        if self.url_prefix:
            handlers = [rewrite_handler(handler, self.url_prefix) for handler in handlers]
            handlers.append((re.escape(self.url_prefix), tornado.web.RedirectHandler,
                             {'url': self.url_prefix + '/'}))
            settings['static_url_prefix'] = self.url_prefix + settings['static_url_prefix']
        super().__init__(handlers, **settings)

        self.io_loop = io_loop or IOLoop.current()
        self.ssl_options = kwargs.get('ssl_options')
        self.capp = capp or celery.Celery()
        self.capp.loader.import_default_modules()
        self.executor = self.pool_executor_cls(max_workers=self.max_executor_workers)
        self.io_loop.set_default_executor(self.executor)
        self.search_executor = ThreadPoolExecutor(max_workers=self.max_search_workers,
                                                  thread_name_prefix='flower-search')
        #: ``/api/workers``'s answer of each worker, masked once per reply.
        self.worker_answers = WorkerAnswers()
        #: The dashboard's rows, each worker's links escaped once.
        self.worker_rows_html = WorkerRowsHtml(self.url_for_path)
        self.inspector = Inspector(self.io_loop, self.capp, self.options.inspect_timeout / 1000.0,
                                   expected=self.expected_repliers)
        #: What ``/metrics`` serves; the state records events into it.
        self.metrics = (events.state.metrics if events is not None
                        else PrometheusMetrics(self.options.task_runtime_metric_buckets))
        self.events = events or Events(
            self.capp,
            io_loop=self.io_loop,
            db=self.options.db,
            persistent=self.options.persistent,
            enable_events=self.options.enable_events,
            state_save_interval=self.options.state_save_interval,
            db_max_tasks=self.options.db_max_tasks,
            db_max_age=self.options.db_max_age,
            stream_buffer=self.options.stream_buffer,
            replica_poll_interval=self.options.replica_poll_interval,
            max_workers_in_memory=self.options.max_workers,
            max_tasks_in_memory=self.options.max_tasks,
            metrics=self.metrics,
        )
        self.queue_history = QueueHistory()
        self.task_stats = TaskStatistics(self.events, self.options.task_runtime_metric_buckets)
        #: Which task is a retry of which (see :mod:`flower.retry`).
        self.retry_links = RetryLinks(lambda: self.events.store)
        self._queue_sampler = None
        self._sampling_queues = False
        self._purger = None
        self._sessions_reader = None
        self.started = False
        self._servers = []
        self.sessions = Sessions(lambda: self.events.store)
        #: Who changed what (see :mod:`flower.audit`), in the history with ``--persistent``.
        self.audit = AuditTrail(lambda: self.events.history, self.options.max_audit_records)
        self.allowed_hosts = allowed_host_names(self.options)

    def find_handler(self, request: HTTPServerRequest,
                     **kwargs: Any) -> HTTPMessageDelegate:
        """Refuse, before routing and before reading the body, a request whose ``Host``
        is not allowed (DNS rebinding) or whose body is larger than ``max_body_size``."""
        refusal = self.refusal(request)
        if refusal is not None:
            status_code, message = refusal
            return self.get_handler_delegate(request, RefusedRequest,
                                             {'status_code': status_code, 'message': message})
        return super().find_handler(request, **kwargs)

    def refusal(self, request: HTTPServerRequest) -> tuple[int, str] | None:
        """``(status, message)`` if ``request`` must be refused, else None."""
        # The health check says only "OK", to probes that may use any name.
        if (request.path != self.url_for_path('/healthcheck')
                and not host_allowed(request.host, self.allowed_hosts)):
            return 400, (f"Flower does not answer to the host name in this request "
                         f"({request.host_name!r}): add it to --allowed_hosts")
        length = request.headers.get('Content-Length', '')
        limit = self.options.max_body_size
        if length.isdigit() and int(length) > limit:
            return 413, body_too_large_message(int(length), limit)
        return None

    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        """Tornado's access log line, with OAuth codes and states left out."""
        request = handler.request
        status = handler.get_status()
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        access_log.log(level, "%d %s %s (%s) %.2fms", status, request.method,
                       redacted_uri(request.uri), request.remote_ip,
                       1000.0 * request.request_time())

    def url_for_path(self, path: str) -> str:
        """The public URL of a path of this app, ``url_prefix`` included."""
        return self.url_prefix + path

    def start(self) -> None:
        """Start capturing events, serve HTTP, and run the IO loop until :meth:`stop`."""
        self.listen_for_requests()
        self.events.start()
        self.sessions.load()
        self.retry_links.load()
        if self.options.revoke_sessions:
            self.sessions.revoke_all()
            logger.info("Every OAuth session was ended (--revoke_sessions)")
        self.io_loop.add_callback(self._inspect_at_start)
        if self.events.replication is not None:
            # A logout on another replica ends the session here too, a poll later.
            self._sessions_reader = PeriodicCallback(self.sessions.load,
                                                     self.options.replica_poll_interval)
            self._sessions_reader.start()
        self._queue_sampler = PeriodicCallback(self.sample_queues, self.queue_sample_interval)
        self._queue_sampler.start()
        self.io_loop.add_callback(self.sample_queues)
        max_age = self.options.purge_offline_workers
        if max_age is not None:
            # Often enough that a worker goes at most half its limit late; at most once a minute.
            interval = min(max(max_age / 2, 1), 60) * 1000
            self._purger = PeriodicCallback(self.purge_offline_workers, interval)
            self._purger.start()
        self.started = True
        self.io_loop.start()

    def listen_for_requests(self) -> None:
        """Open the TCP port or unix socket the options ask for."""
        # Bodies over max_body_size get a 413 from find_handler; Tornado still reads (and
        # drops) them up to its own limit, so that clients sending them see the answer.
        server = HTTPServer(self, xheaders=self.options.xheaders, ssl_options=self.ssl_options,
                            max_body_size=read_limit(self.options))
        if self.options.unix_socket:
            server.add_socket(bind_unix_socket(self.options.unix_socket))
        else:
            server.listen(self.options.port, address=self.options.address or None)
        self._servers.append(server)
        return server

    def stop(self) -> None:
        """Stop serving and capturing; safe to call more than once."""
        for server in self._servers:
            server.stop()
        self._servers.clear()
        for timer in (self._queue_sampler, self._purger, self._sessions_reader):
            if timer is not None:
                timer.stop()
        if self.started:
            self.events.stop()
            self.started = False
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.search_executor.shutdown(wait=False, cancel_futures=True)
        self.io_loop.stop()

    async def _inspect_at_start(self):
        try:
            await self.update_workers()
        except InspectionFailed:
            pass  # logged; the pages say what Flower knows from events meanwhile

    async def knows_worker(self, name: str) -> bool:
        """True if ``name`` is a worker heard of through events or inspection, once the
        inspections of every worker under way have answered. Never inspects: a
        request for a made-up name must not cost broadcasts."""
        if not is_known(self.events.state, self.workers, name):
            await self.inspector.inspections_under_way()
        return is_known(self.events.state, self.workers, name)

    def expected_repliers(self) -> set[str] | None:
        """Who a refresh of every worker waits for (see :func:`flower.workers.expected_repliers`)."""
        return expected_repliers(self.events.state, self.workers, self.inspector.surveyed)

    async def update_workers(self, workername: str | None = None) -> Inspection:
        """Refresh inspect replies for every worker, or only ``workername`` (see
        :meth:`flower.inspector.Inspector.inspect`).

        A failed refresh (logged by the inspector) raises :class:`InspectionFailed`.
        """
        inspection = await self.inspector.inspect(workername)
        if inspection.error is not None:
            raise InspectionFailed(f"Cannot inspect workers: {inspection.error}")
        return inspection

    def forget_worker(self, name: str) -> None:
        """Forget the worker ``name``: its state, event counters, inspect replies and
        metric series. It comes back if it sends events again."""
        state = self.events.state
        state.workers.pop(name, None)
        state.counter.pop(name, None)
        self.workers.pop(name, None)
        self.metrics.remove_worker(name)
        if self.events.history is not None:
            self.events.history.forget_worker(name)
        self.events.changes.publish([('worker-forgotten', name)])  # live dashboards drop it

    def purge_offline_workers(self) -> None:
        """With ``--purge_offline_workers``, forget the workers offline for longer (on a timer
        of the application, never as a side effect of a request)."""
        max_age = self.options.purge_offline_workers
        for name in long_offline_workers(self.events.state, self.workers, max_age):
            self.forget_worker(name)
            logger.info("Purged worker %s, offline for more than %s s", name, max_age)

    async def queue_lengths(self) -> list[dict[str, Any]]:
        """Lengths of the queues workers consume from and the configured ones.

        Bounded by ``inspect_timeout``; raises :class:`BrokerError` saying why
        the broker could not tell.
        """
        options = self.options
        return await queue_lengths(self.capp, active_queue_names(self.capp, self.workers),
                                   broker_api=options.broker_api,
                                   timeout=options.inspect_timeout / 1000.0,
                                   ca_certs=options.ca_certs)

    async def sample_queues(self) -> None:
        """Add the current queue lengths to ``queue_history`` and the queue gauge."""
        if self._sampling_queues or not self.started:
            return
        self._sampling_queues = True
        timestamp = time.time()
        try:
            lengths = await self.queue_lengths()
        except Exception as exc:  # the sampler keeps running whatever the broker does
            if not self.started:
                return
            error = str(exc) if isinstance(exc, BrokerError) else describe_error(exc)
            if error != self.queue_history.error:
                logger.warning("Sampling queue lengths failed: %s", error)
            self.queue_history.record_error(timestamp, error)
            self.metrics.forget_queue_lengths()
        else:
            self.queue_history.record(timestamp, lengths)
            self.metrics.set_queue_lengths(lengths)
        finally:
            self._sampling_queues = False

    @property
    def transport(self) -> str | None:
        """The broker transport's driver type, e.g. ``'redis'`` or ``'amqp'``."""
        return getattr(self.capp.connection().transport, 'driver_type', None)

    @property
    def workers(self) -> dict[str, dict[str, Any]]:
        """Latest inspect replies, keyed by worker name."""
        return self.inspector.workers
