"""What protects every request: security headers, the body limit, log redaction, who
may act without authentication, and the server-side generations of OAuth sessions."""
import json
import os
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

import tornado.web
from tornado.options import OptionParser

from flower.store import TaskStore
from flower.utils import strtobool

SESSION_DAYS = 7  # how long an OAuth login stays valid
UNAUTHENTICATED_API_ENV = 'FLOWER_UNAUTHENTICATED_API'
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; object-src 'none'; "
                           "frame-ancestors 'none'")
HSTS_SECONDS = 365 * 24 * 3600
#: Query values logs show as ``[redacted]``: OAuth codes and states.
REDACTED_QUERY_ARGUMENTS = frozenset({'code', 'state'})
TORNADO_MAX_BODY_SIZE = 100 * 1024 * 1024


def unauthenticated_control_allowed(options: OptionParser) -> bool:
    """True if ``--unauthenticated_api`` or ``FLOWER_UNAUTHENTICATED_API`` opens the
    API and the control buttons to anyone (meant for private networks only)."""
    if getattr(options, 'unauthenticated_api', False):
        return True
    try:
        return strtobool(os.environ.get(UNAUTHENTICATED_API_ENV, 'false'))
    except ValueError:
        return False


def redacted_uri(uri: str) -> str:
    """``uri`` with the values of :data:`REDACTED_QUERY_ARGUMENTS` replaced."""
    parts = urlsplit(uri)
    if not parts.query:
        return uri
    query = [(name, '[redacted]' if name in REDACTED_QUERY_ARGUMENTS else value)
             for name, value in parse_qsl(parts.query, keep_blank_values=True)]
    return parts._replace(query=urlencode(query, safe='[]')).geturl()


def read_limit(options: OptionParser) -> int:
    """The most body bytes the server reads of a request, refused ones included."""
    return max(options.max_body_size, TORNADO_MAX_BODY_SIZE)


def body_too_large_message(size: int, limit: int) -> str:
    return (f"The request body ({size} bytes) is larger than the {limit} bytes Flower "
            "accepts (--max_body_size)")


def set_security_headers(handler: tornado.web.RequestHandler) -> None:
    """Headers every answer carries, pages and static files alike."""
    handler.set_header('X-Frame-Options', 'DENY')
    handler.set_header('X-Content-Type-Options', 'nosniff')
    handler.set_header('Referrer-Policy', 'same-origin')
    handler.set_header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    if handler.request.protocol == 'https':
        handler.set_header('Strict-Transport-Security', f'max-age={HSTS_SECONDS}')


class Sessions:
    """Server-side generations that end OAuth sessions before their signature expires.

    A session token carries the generation of everyone and of its user when it
    was issued; :meth:`end` (``/logout``) moves one user's generation on,
    :meth:`revoke_all` (``--revoke_sessions``) everyone's, and older tokens stop
    working. With ``--persistent`` the generations are kept in the history.
    """

    setting_name = 'session_generations'

    def __init__(self, store_getter: Callable[[], TaskStore | None] = lambda: None) -> None:
        self.everyone = 0
        self.users = {}
        self._store = store_getter

    def load(self) -> None:
        """Take in the generations kept in the history, if there is one. Generations
        only grow: the higher of the kept and the known one wins, so replicas that
        share a history end the same sessions."""
        store = self._store()
        saved = store.load_setting(self.setting_name) if store is not None else None
        if saved:
            data = json.loads(saved)
            if data['everyone'] > self.everyone:
                self.everyone, self.users = data['everyone'], {}
            if data['everyone'] == self.everyone:
                for email, generation in data['users'].items():
                    self.users[email] = max(generation, self.users.get(email, 0))

    def token(self, email: str) -> str:
        return json.dumps([self.everyone, self.users.get(email, 0), email])

    def email(self, token: bytes | None) -> str | None:
        """The e-mail address of a current session token, else None."""
        try:
            everyone, user, email = json.loads(token)
        except (TypeError, ValueError):
            return None
        if isinstance(email, str) and [everyone, user] == [self.everyone,
                                                            self.users.get(email, 0)]:
            return email
        return None

    def end(self, email: str) -> None:
        self.users[email] = self.users.get(email, 0) + 1
        self._save()

    def revoke_all(self) -> None:
        self.everyone += 1
        self.users.clear()
        self._save()

    def _save(self) -> None:
        store = self._store()
        if store is not None:
            self.load()  # what another replica ended meanwhile stays ended
            store.save_setting(self.setting_name,
                               json.dumps({'everyone': self.everyone, 'users': self.users}))
