"""The HTTP API: what every ``/api/`` endpoint has in common.

:class:`BaseApiHandler` answers errors as ``{"error": "..."}`` (never an HTML
page or a traceback), keeps the API closed unless authentication is set up
or ``--unauthenticated_api`` (``FLOWER_UNAUTHENTICATED_API``) is true, refuses
cross-site browser requests and every ``POST`` in read-only mode, and parses
parameters and JSON bodies into 400 errors naming what is wrong.

Every request that may change something (any method but GET, HEAD and
OPTIONS) is recorded in the audit trail when it finishes, refused or not
(:meth:`BaseApiHandler.on_finish`, :mod:`flower.audit`).

The control endpoints are also the pages' buttons, at ``/control/...``
(see :func:`flower.urls.routes`): the same handler, routed with
``access='page'``, follows the pages' rules instead (page authentication when
configured, the XSRF token a browser form carries).
"""
import json
import re
import signal
from typing import Any
from urllib.parse import urlsplit

from flower.audit import action_of
from flower.base_handler import (  # noqa: F401  (re-exported for the endpoints)
    MAX_INTEGER, BaseHandler, RequestError, non_negative_int, positive_int,
)
from flower.control import parse_apply_options
from flower.security import UNAUTHENTICATED_API_ENV, unauthenticated_control_allowed

_DEFAULT_PORTS = {'http': 80, 'https': 443}

#: The methods that change nothing; requests with any other are audited.
SAFE_METHODS = ('GET', 'HEAD', 'OPTIONS')
#: The members of a JSON answer that the audit trail keeps as its outcome.
OUTCOME_KEYS = ('message', 'error', 'task-id', 'retry-of', 'state', 'queue', 'purged')


def non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("not a number") from None
    if not 0 <= number < float('inf'):
        raise ValueError("must be a finite number, not negative")
    return number


def signal_name(value: str) -> str:
    """``'kill'``, ``'KILL'`` or ``'SIGKILL'`` → ``'SIGKILL'``; unknown names are a ``ValueError``."""
    name = value.upper()
    name = name if name.startswith('SIG') else 'SIG' + name
    try:
        return signal.Signals[name].name
    except KeyError:
        raise ValueError("not a signal name") from None


def _host_and_port(netloc, default_port):
    match = re.fullmatch(r'(\[[^\]]*\]|[^:]*)(?::(\d+))?', netloc.lower())
    if match is None:
        return netloc.lower(), None
    return match.group(1), int(match.group(2)) if match.group(2) else default_port


def json_text(data: Any) -> str:
    """``data`` as JSON safe to embed in HTML; values JSON cannot encode become text."""
    return json.dumps(data, default=str).replace('</', '<\\/')


class BaseApiHandler(BaseHandler):
    """Request checks, auth and JSON answers shared by every API endpoint."""

    #: True when routed as a page's button (``access='page'``) rather than for scripts.
    page_access = False
    #: What the audit trail records of a mutating request. A handler sets them where the
    #: defaults do not say enough: the action its route names (``task.revoke``), the
    #: URL's path arguments, and the answer's :data:`OUTCOME_KEYS`.
    audit_action: str | None = None
    audit_targets: list[str] | None = None
    audit_outcome: dict[str, Any] | None = None
    _answer_summary: dict[str, Any] | None = None

    def initialize(self, access: str = 'api') -> None:
        if access not in ('api', 'page'):
            raise ValueError(f"access must be 'api' or 'page', not {access!r}")
        self.page_access = access == 'page'

    def prepare(self) -> None:
        if self.page_access:
            super().prepare()
            # Reading (the pages' change stream) stays open to read-only Flowers.
            if self.application.options.read_only and self.request.method not in ('GET', 'HEAD'):
                raise RequestError(403, "Flower runs in read-only mode (--read_only): control "
                                        "commands are refused")
            return
        self.refuse_oversized_body()
        self._refuse_cross_site()
        self._authenticate()
        if self.request.method == 'POST' and self.application.options.read_only:
            raise RequestError(403, "Flower runs in read-only mode (--read_only): control commands "
                                "and task submissions are refused")

    def check_xsrf_cookie(self) -> None:
        """A page's button carries the XSRF token; scripts have no XSRF cookie, and
        browsers' cross-site requests to the API are refused in :meth:`prepare`."""
        if self.page_access:
            super().check_xsrf_cookie()

    def _refuse_cross_site(self):
        headers = self.request.headers
        if headers.get('Sec-Fetch-Site', '').lower() == 'cross-site':
            raise RequestError(403, "Cross-site requests to the API are refused")
        origin = headers.get('Origin')
        if origin is None:
            return
        parts = urlsplit(origin)
        default_port = _DEFAULT_PORTS.get(parts.scheme)
        if not parts.netloc or default_port is None or _host_and_port(
                parts.netloc, default_port) != _host_and_port(self.request.host, default_port):
            raise RequestError(403, f"Cross-origin requests to the API are refused (Origin: {origin})")

    def _authenticate(self):
        if self.auth_configured:
            if not self.current_user:
                raise RequestError(401, "Authentication required")
        elif not unauthenticated_control_allowed(self.application.options):
            raise RequestError(401, "The API is closed: configure authentication (--basic_auth or "
                                    "--auth), or open it without authentication with "
                                    f"--unauthenticated_api or {UNAUTHENTICATED_API_ENV}=true")

    def write_error_message(self, status_code: int, message: str) -> None:
        self.write_json({'error': message})

    def flush(self, include_footers: bool = False) -> Any:
        """Answers say when the history could not be read: they hold the tasks in memory
        only. (The first flush sends the headers; ``finish`` flushes too.)"""
        if not self._headers_written and not self.application.events.history_available():
            self.set_header('X-Flower-History', 'unavailable')
        return super().flush(include_footers)

    def write_json(self, data: Any) -> None:
        """Answer ``data`` as JSON; values JSON cannot encode are sent as text."""
        if isinstance(data, dict):
            self._answer_summary = {key: data[key] for key in OUTCOME_KEYS if key in data}
        self.write_json_text(json_text(data))

    def write_json_text(self, text: str) -> None:
        """Answer ``text``, JSON already encoded by :func:`json_text`."""
        self.set_header('Content-Type', 'application/json; charset=UTF-8')
        self.finish(text)

    def on_finish(self) -> None:
        """Audit a request that may have changed something, whatever its answer.

        401s are not recorded: no one is known, and anyone could fill the trail
        with them (the access log has them).
        """
        status = self.get_status()
        if self.request.method in SAFE_METHODS or status == 401:
            return
        path_args = getattr(self, 'path_args', None) or []  # unset when the method is unknown
        action = self.audit_action or action_of(self.request.path, path_args,
                                                self.application.url_prefix)
        targets = self.audit_targets
        if targets is None:
            targets = [*path_args, *(getattr(self, 'path_kwargs', None) or {}).values()]
        outcome = self.audit_outcome
        if outcome is None:
            outcome = self._answer_summary or {}
        self.application.audit.record(
            user=self.current_user or 'anonymous', address=self.request.remote_ip,
            action=action, targets=targets, status=status, outcome=outcome)

    def is_worker(self, workername: str) -> bool:
        """True if Flower has seen ``workername``, through events or inspection."""
        return bool(workername) and (workername in self.application.events.state.workers
                                     or workername in self.application.workers)

    def require_worker(self, workername: str) -> None:
        if not self.is_worker(workername):
            raise RequestError(404, f"Unknown worker '{workername}'")

    def get_json_body(self) -> dict[str, Any]:
        """The request body as a JSON object (``{}`` when empty)."""
        if not self.request.body.strip():
            return {}
        try:
            body = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"Malformed JSON body: {exc}") from None
        except RecursionError:
            raise RequestError(400, "Malformed JSON body: nested too deeply") from None
        if not isinstance(body, dict):
            raise RequestError(400, "invalid options: the JSON body must be an object")
        return body

    def get_task_call(self) -> tuple[list, dict[str, Any], dict[str, Any]]:
        """``(args, kwargs, options)`` of a task submission's JSON body.

        ``options`` are ``apply_async`` options, given as an ``options`` object
        and/or as top-level keys next to ``args`` and ``kwargs``.
        """
        body = self.get_json_body()
        args = body.pop('args', [])
        kwargs = body.pop('kwargs', {})
        options = body.pop('options', {})
        # The wording is Flower's, which scripts match on ("invalid options",
        # "args must be an array").
        if not isinstance(args, list):
            raise RequestError(400, "args must be an array: 'args' must be a JSON list, not "
                                    f"{json_text(args)[:100]}")
        if not isinstance(kwargs, dict):
            raise RequestError(400, "kwargs must be an object: 'kwargs' must be a JSON object, "
                                    f"not {json_text(kwargs)[:100]}")
        if not isinstance(options, dict):
            raise RequestError(400, "invalid options: 'options' must be an object")
        try:
            return args, kwargs, parse_apply_options(dict(body, **options))
        except ValueError as exc:
            raise RequestError(400, f"invalid options: {exc}") from None


class ApiNotFound(BaseApiHandler):
    """Any ``/api/`` URL no endpoint matches: a JSON 404, not the HTML page."""

    audit_action = 'api.not-found'

    def prepare(self) -> None:
        self.audit_targets = [self.request.path]
        super().prepare()
        raise RequestError(404, f"No API endpoint at {self.request.path}")
