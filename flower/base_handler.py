"""The base request handler every page and API endpoint builds on.

It does, once for all of them: authentication, argument parsing, security
headers, and turning errors into answers. The failures of the operations
handlers call are answered by :data:`ERROR_STATUS` (an unknown task is a 404,
a refusal a 403, an unreachable broker or backend a 503), so no handler
catches them one by one.
"""
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import celery

import tornado.web

from flower import control, retry
from flower.utils import encodable, strtobool, template
from flower.utils.authentication import authenticate, basic_auth_user
from flower.utils.blocking import ServiceUnavailable
from flower.utils.broker import BrokerError, active_queue_names
from flower.utils.purge import UnknownQueue
from flower.tasks import TaskFilter, Tasks, parse_date, shallow_copy
from flower.utils.search import QuerySyntaxError, SearchTooLarge
from flower.security import (
    SESSION_DAYS,
    UNAUTHENTICATED_API_ENV,
    body_too_large_message,
    redacted_uri,
    set_security_headers,
    unauthenticated_control_allowed,
)

logger = logging.getLogger(__name__)

_TEMPLATE_HELPERS = {
    'humanize': template.humanize, 'format_time': template.format_time,
    'format_count': template.format_count, 'format_fact': template.format_fact,
    'format_uptime': template.format_uptime, 'humanize_key': template.humanize_key,
    'or_none': template.or_none, 'rusage_fact': template.rusage_fact,
}


#: The largest count or position (``limit``, ``offset``, ``start``, ``n``...) a request may
#: give: larger ones cannot index anything and overflow ``islice`` and SQLite.
MAX_INTEGER = 10**9


def _integer(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError("not an integer") from None
    if number > MAX_INTEGER:
        raise ValueError(f"must be at most {MAX_INTEGER}")
    return number


def non_negative_int(value: str) -> int:
    """A whole number from 0 to :data:`MAX_INTEGER`."""
    number = _integer(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def positive_int(value: str) -> int:
    """A whole number from 1 to :data:`MAX_INTEGER`."""
    number = _integer(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


class RequestError(tornado.web.HTTPError):
    """An error answered with ``status_code`` and a message for the user.

    The message stays out of the HTTP status line, where Tornado would refuse
    characters that a worker's or user's text may contain.
    """

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code)
        self.message = message


#: What the failures of the operations handlers call are answered with; an exception
#: takes the status of the first of its classes (most derived first) found here.
ERROR_STATUS: dict[type[Exception], int] = {
    control.UnknownTask: 404,
    control.InvalidTaskCall: 400,
    UnknownQueue: 404,
    retry.UnknownTaskId: 404,
    retry.RetryRefused: 409,
    control.CommandRefused: 403,
    control.ControlError: 503,
    BrokerError: 503,
    ServiceUnavailable: 503,
}


def error_status(exc: BaseException | None) -> int | None:
    """The status :data:`ERROR_STATUS` gives ``exc``, or ``None`` if it names none."""
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return None


def error_message(exc: BaseException | None, status_code: int, reason: str) -> str:
    """What to tell the user about ``exc``; server errors never reveal internals."""
    if isinstance(exc, RequestError):
        return exc.message
    if error_status(exc) is not None:
        return str(exc)
    if isinstance(exc, tornado.web.HTTPError) and status_code < 500:
        if exc.reason:
            return exc.reason
        if exc.log_message:
            return exc.log_message % exc.args if exc.args else exc.log_message
    return reason


class BaseHandler(tornado.web.RequestHandler):
    """Authentication, argument parsing, security headers and error pages, once."""

    def set_default_headers(self) -> None:
        set_security_headers(self)

    def _request_summary(self):
        """How Tornado names the request in its logs (errors included): no OAuth secrets."""
        return f"{self.request.method} {redacted_uri(self.request.uri)} ({self.request.remote_ip})"

    def set_cookie(self, name: str, value: str | bytes, **kwargs: Any) -> None:
        """Every cookie ``SameSite=Lax``, and ``Secure`` when the request came over HTTPS."""
        kwargs.setdefault('samesite', 'Lax')
        kwargs.setdefault('secure', self.request.protocol == 'https')
        super().set_cookie(name, value, **kwargs)

    def prepare(self) -> None:
        self.refuse_oversized_body()
        if self.auth_configured and not self.is_public() and not self.current_user:
            self.refuse_anonymous()
        self.refuse_unauthenticated_control()

    def refuse_oversized_body(self) -> None:
        """A body without ``Content-Length`` (chunked) over ``--max_body_size``: 413.

        Bodies announcing their length are refused before they are read
        (see :meth:`flower.app.Flower.find_handler`).
        """
        limit = self.application.options.max_body_size
        if len(self.request.body) > limit:
            raise RequestError(413, body_too_large_message(len(self.request.body), limit))

    def refuse_unauthenticated_control(self) -> None:
        """Without authentication, what changes something is refused unless opened on purpose.

        Otherwise any web page could drive the cluster through a visitor's
        browser (with a made-up XSRF cookie, or by DNS rebinding).
        """
        if (self.request.method not in ('GET', 'HEAD', 'OPTIONS') and not self.auth_configured
                and not unauthenticated_control_allowed(self.application.options)):
            raise RequestError(403, "Control commands are refused: no authentication is "
                                    "configured. Configure --basic_auth or --auth, or start "
                                    f"Flower with --unauthenticated_api ({UNAUTHENTICATED_API_ENV}"
                                    "=true) to allow them to anyone who can reach it")

    def is_public(self) -> bool:
        """True for endpoints anyone may read even when authentication is configured."""
        return False

    @property
    def auth_configured(self) -> bool:
        options = self.application.options
        return bool(options.basic_auth or options.auth)

    def refuse_anonymous(self) -> None:
        """Send a browser to the OAuth login when there is one, else challenge for Basic auth."""
        if self.application.options.auth and self.request.method in ('GET', 'HEAD'):
            self.redirect(f"{self.get_login_url()}?{urlencode({'next': self.request.uri})}")
            raise tornado.web.Finish()
        raise RequestError(401, "Authentication required")

    def get_login_url(self) -> str:
        return self.application.url_for_path('/login')

    def get_current_user(self) -> str | None:
        """A ``--basic_auth`` user, or the e-mail of an OAuth session that ``--auth`` allows.

        The session is the signed ``user`` cookie, or its value sent as an
        ``Authorization: Bearer`` token by scripts.
        """
        options = self.application.options
        header = self.request.headers.get('Authorization', '')
        if options.basic_auth:
            user = basic_auth_user(header, options.basic_auth)
            if user:
                return user
        if not options.auth:
            return None
        scheme, _, token = header.partition(' ')
        if scheme.lower() == 'bearer' and token.strip():
            # Browsers show the cookie's value in quotes; accept it pasted either way.
            signed = self.get_signed_cookie('user', value=token.strip().strip('"'),
                                            max_age_days=SESSION_DAYS)
        else:
            signed = self.get_signed_cookie('user', max_age_days=SESSION_DAYS)
        email = self.application.sessions.email(signed)
        if not authenticate(options.auth, email):
            return None
        self.session_email = email
        return email

    #: The e-mail address of the OAuth session the request carries (Basic users have none).
    session_email = None

    def start_session(self, email: str) -> None:
        """Log ``email`` in: the signed session cookie, also usable as a Bearer token."""
        self.set_signed_cookie('user', self.application.sessions.token(email),
                               expires_days=SESSION_DAYS, httponly=True)

    def may_see_broker(self) -> bool:
        """The broker's status and errors are for users, not for visitors before login."""
        return not self.auth_configured or bool(self.current_user)

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace.update(_TEMPLATE_HELPERS)
        namespace.update(
            url_prefix=self.application.url_prefix,
            url=self.application.url_for_path,
            options=self.application.options,
            show_broker=self.may_see_broker(),
            broker_connected=self.application.events.broker_connected,
            following=self.application.events.following,
            broker_error=self.application.events.broker_error if self.may_see_broker() else None,
            session_email=self.current_user and self.session_email,
            active_page=None,
            live_since=self.application.events.changes.last_id,
            history_unavailable=not self.application.events.history_available(),
        )
        return namespace

    def render(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault('current_user', self.current_user)
        super().render(*args, **encodable(kwargs))

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        """Failures :data:`ERROR_STATUS` names are answers, not bugs: one line, no traceback."""
        status = error_status(value)
        if status is None:
            super().log_exception(typ, value, tb)
        elif status >= 500:
            logger.warning("%s answered %d: %s", self._request_summary(), status, value)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get('exc_info', (None, None, None))[1]
        status_code = error_status(exc) or status_code
        self.set_status(status_code)
        if status_code == 401 and self.application.options.basic_auth:
            self.set_header('WWW-Authenticate', 'Basic realm="flower"')
        self.write_error_message(status_code, error_message(exc, status_code, self._reason))

    def write_error_message(self, status_code: int, message: str) -> None:
        """Send the error page; a failure to render it still sends the message."""
        template_name = '404.html' if status_code == 404 else 'error.html'
        try:
            self.render(template_name, status_code=status_code, message=message)
        except Exception:
            logger.exception("Rendering the %s error page failed", status_code)
            self.clear()
            self.set_status(status_code)
            self.set_header('Content-Type', 'text/plain; charset=UTF-8')
            self.finish(f"{status_code}: {message}")

    def get_argument(self, name: str, default: Any = tornado.web._ARG_DEFAULT, strip: bool = True,
                     type: Callable[[str], Any] = str) -> Any:
        """Tornado's ``get_argument`` plus ``type`` conversion; a 400 says which and why."""
        value = super().get_argument(name, default=default, strip=strip)
        if value is None or value is default or type is str:
            return value
        converter = strtobool if type is bool else type
        try:
            return converter(value)
        except (TypeError, ValueError) as exc:
            raise RequestError(400, f"Invalid value for argument '{name}': {value!r} ({exc})") \
                from None

    def get_optional_argument(self, name: str, type: Callable[[str], Any] = str,
                              default: Any = None) -> Any:
        """``get_argument`` where a missing or empty value gives ``default``."""
        if not self.get_argument(name, ''):
            return default
        return self.get_argument(name, type=type)

    def task_filter(self, worker_argument: str = 'workername',
                    search_argument: str | None = 'search') -> TaskFilter:
        """The request's task filter; a 400 names an argument that is not valid (a
        search too large, or one that cannot be parsed, says where it fails).

        The one place that knows how a query string spells the filters: the
        task name is ``taskname``; the worker is ``workername`` in the API and
        ``worker`` on the tasks page.
        """
        return self.make_task_filter(self.get_optional_argument, worker_argument,
                                     search_argument, 'argument ')

    def make_task_filter(self, argument: Callable[..., Any], worker_key: str = 'workername',
                         search_key: str | None = 'search', kind: str = '') -> TaskFilter:
        """A task filter from ``argument(name, type=...)``, which gives a value or ``None``
        (a query string's arguments, or a JSON body's keys); ``kind`` names them in errors."""
        filters = dict(
            name=argument('taskname'), worker=argument(worker_key), state=argument('state'),
            **{bound: argument(bound, type=parse_date) for bound in (
                'received_start', 'received_end', 'started_start', 'started_end')},
        )
        search = argument(search_key) if search_key else None
        try:
            return TaskFilter(**filters, search=search)
        except (SearchTooLarge, QuerySyntaxError) as exc:
            raise RequestError(400, f"Invalid value for {kind}'{search_key}': {exc}") from None

    @property
    def tasks(self) -> Tasks:
        """The tasks in memory and, with ``--persistent``, in the history."""
        events = self.application.events
        return Tasks(events.state, events.store)

    @property
    def capp(self) -> celery.Celery:
        """The Celery application being monitored."""
        return self.application.capp

    def format_task(self, task: Any) -> Any:
        """A copy of ``task`` passed through the configuration's ``format_task``, if any.

        The function works on a copy so it can never alter the monitored state.
        """
        custom_format = self.application.options.format_task
        if custom_format is None:
            return task
        try:
            return custom_format(shallow_copy(task))
        except Exception:
            logger.exception("format_task failed for task %s", getattr(task, 'uuid', '?'))
            return task

    def get_active_queue_names(self) -> list[str]:
        """Queues any worker consumes from, plus the queues configured in the Celery app."""
        return active_queue_names(self.capp, self.application.workers)
