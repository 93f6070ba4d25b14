"""The base request handler every page and API endpoint builds on."""
import base64
import binascii
import hmac
import logging
import re
from urllib.parse import urlencode

import tornado.web

from flower.tasks import shallow_copy
from flower.utils import encodable, strtobool, template
from flower.utils.broker import active_queue_names
from flower.utils.search import check_search_size
from flower.views.security import (
    SESSION_DAYS,
    UNAUTHENTICATED_API_ENV,
    body_too_large_message,
    read_limit,
    redacted_uri,
    set_security_headers,
    unauthenticated_control_allowed,
)

logger = logging.getLogger(__name__)

_TEMPLATE_HELPERS = {'humanize': template.humanize, 'format_time': template.format_time}


#: The largest count or position (``limit``, ``offset``, ``start``, ``n``...) a request may
#: give: larger ones cannot index anything and overflow ``islice`` and SQLite.
MAX_INTEGER = 10**9


class RequestError(tornado.web.HTTPError):
    """An error answered with ``status_code`` and a message for the user.

    The message stays out of the HTTP status line, where Tornado would refuse
    characters that a worker's or user's text may contain.
    """

    def __init__(self, status_code, message):
        super().__init__(status_code)
        self.message = message


def error_message(exc, status_code, reason):
    """What to tell the user about ``exc``; server errors never reveal internals."""
    if isinstance(exc, RequestError):
        return exc.message
    if isinstance(exc, tornado.web.HTTPError) and status_code < 500:
        if exc.reason:
            return exc.reason
        if exc.log_message:
            return exc.log_message % exc.args if exc.args else exc.log_message
    return reason


class BaseHandler(tornado.web.RequestHandler):
    """Authentication, argument parsing, security headers and error pages, once."""

    def set_default_headers(self):
        set_security_headers(self)

    def _request_summary(self):
        """How Tornado names the request in its logs (errors included): no OAuth secrets."""
        return f"{self.request.method} {redacted_uri(self.request.uri)} ({self.request.remote_ip})"

    def set_cookie(self, name, value, **kwargs):
        """Every cookie ``SameSite=Lax``, and ``Secure`` when the request came over HTTPS."""
        kwargs.setdefault('samesite', 'Lax')
        kwargs.setdefault('secure', self.request.protocol == 'https')
        super().set_cookie(name, value, **kwargs)

    def prepare(self):
        self.refuse_oversized_body()
        if self.auth_configured and not self.is_public() and not self.current_user:
            self.refuse_anonymous()
        self.refuse_unauthenticated_control()

    def refuse_oversized_body(self):
        """A body without ``Content-Length`` (chunked) over ``--max_body_size``: 413.

        Bodies announcing their length are refused before they are read
        (see :meth:`flower.app.Flower.find_handler`).
        """
        limit = self.application.options.max_body_size
        if len(self.request.body) > limit:
            raise RequestError(413, body_too_large_message(len(self.request.body), limit))

    def refuse_unauthenticated_control(self):
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

    def is_public(self):
        """True for endpoints anyone may read even when authentication is configured."""
        return False

    @property
    def auth_configured(self):
        options = self.application.options
        return bool(options.basic_auth or options.auth)

    def refuse_anonymous(self):
        """Send a browser to the OAuth login when there is one, else challenge for Basic auth."""
        if self.application.options.auth and self.request.method in ('GET', 'HEAD'):
            self.redirect(f"{self.get_login_url()}?{urlencode({'next': self.request.uri})}")
            raise tornado.web.Finish()
        raise RequestError(401, "Authentication required")

    def get_login_url(self):
        return self.application.url_for_path('/login')

    def get_current_user(self):
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

    def get_template_namespace(self):
        namespace = super().get_template_namespace()
        namespace.update(_TEMPLATE_HELPERS)
        namespace.update(
            url_prefix=self.application.url_prefix,
            url=self.application.url_for_path,
            options=self.application.options,
            show_broker=self.may_see_broker(),
            broker_connected=self.application.events.broker_connected,
            broker_error=self.application.events.broker_error if self.may_see_broker() else None,
            session_email=self.current_user and self.session_email,
            active_page=None,
        )
        return namespace

    def render(self, *args, **kwargs):
        kwargs.setdefault('current_user', self.current_user)
        super().render(*args, **encodable(kwargs))

    def write_error(self, status_code, **kwargs):
        if status_code == 401 and self.application.options.basic_auth:
            self.set_header('WWW-Authenticate', 'Basic realm="flower"')
        exc = kwargs.get('exc_info', (None, None, None))[1]
        self.write_error_message(status_code, error_message(exc, status_code, self._reason))

    def write_error_message(self, status_code, message):
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

    def get_argument(self, name, default=tornado.web._ARG_DEFAULT, strip=True, type=str):
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

    def get_search_argument(self, name):
        """The search in argument ``name`` (``None`` if empty); a 400 if it is too large."""
        search = self.get_argument(name, '').strip()
        try:
            check_search_size(search)
        except ValueError as exc:
            raise RequestError(400, f"Invalid value for argument '{name}': {exc}") from None
        return search or None

    @property
    def capp(self):
        """The Celery application being monitored."""
        return self.application.capp

    def format_task(self, task):
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

    def get_active_queue_names(self):
        """Queues any worker consumes from, plus the queues configured in the Celery app."""
        return active_queue_names(self.capp, self.application.workers)


@tornado.web.stream_request_body
class RefusedRequest(BaseHandler):
    """Answers a request refused before routing (wrong ``Host``, body too large).

    It takes the body as a stream and drops it, so a refused upload is never
    held in memory. The answer waits until the body has arrived: clients that
    send the whole body before reading would see the connection reset instead.
    A body longer than Tornado reads at all is answered at once.
    """

    def initialize(self, status_code, message):
        self.refusal = RequestError(status_code, message)

    def check_xsrf_cookie(self):
        """The request is refused whatever its token."""

    def prepare(self):
        length = self.request.headers.get('Content-Length', '')
        if length.isdigit() and int(length) > read_limit(self.application.options):
            raise self.refusal

    def data_received(self, chunk):
        """Dropped: the request is refused."""

    def refuse(self, *args):
        raise self.refusal

    get = head = post = put = patch = delete = options = refuse

    def may_see_broker(self):
        return False

    def get_current_user(self):
        return None

    def write_error_message(self, status_code, message):
        url = self.application.url_for_path
        if self.request.path.startswith((url('/api'), url('/control/'))):
            self.finish({'error': message})
        else:
            super().write_error_message(status_code, message)


class StaticFiles(tornado.web.StaticFileHandler):
    """Static files with the same security headers as the pages."""

    def set_default_headers(self):
        set_security_headers(self)


class JsonPageHandler(BaseHandler):
    """The JSON the pages' own code loads: page access rules, errors as JSON."""

    def write_error_message(self, status_code, message):
        self.finish({'error': message})


def authenticate(pattern, email):
    """True if ``pattern`` matches the *whole* of ``email`` (a prefix match is not enough)."""
    if not pattern or not email:
        return False
    return re.fullmatch(pattern, email) is not None


def basic_auth_user(header, credentials):
    """Return the user name if ``header`` carries one of ``credentials`` ("user:password").

    Every configured entry is compared in constant time, so timing does not reveal
    which user exists or how much of a password matched.
    """
    scheme, _, encoded = header.partition(' ')
    if scheme.lower() != 'basic' or not encoded:
        return None
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    matched = None
    for entry in credentials:
        if hmac.compare_digest(given, entry.encode('utf-8')):
            matched = entry
    return matched.partition(':')[0] if matched else None
