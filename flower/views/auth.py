"""OAuth 2 login (Google, GitHub, GitLab, Okta) and logout.

``/login`` is served by the class named by ``--auth_provider`` (Google by
default), so users can plug in a handler of their own. Every provider follows
the same authorization-code flow: a random ``state`` kept in a short-lived signed cookie, the code
exchanged for a token, then only a *verified* e-mail address is accepted,
and only when ``--auth`` matches all of it. The session is the signed,
HttpOnly ``user`` cookie.
"""
import hmac
import json
import logging
import os
import secrets
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.util import import_object
from tornado.web import RequestHandler

from flower.base_handler import BaseHandler, RequestError
from flower.utils.authentication import authenticate
# Flower 2.2 users import the check of --auth from here too.
from flower.utils.authentication import validate_auth_option as validate_auth_option

logger = logging.getLogger(__name__)

DEFAULT_PROVIDER = 'flower.views.auth.GoogleAuth2LoginHandler'
STATE_COOKIE = 'flower_oauth_state'
STATE_MAX_AGE_DAYS = 10 / (24 * 60)  # a login must finish within ten minutes


def load_provider(dotted_path: str) -> type[BaseHandler]:
    """The login handler class named by ``--auth_provider``; a ``ValueError`` says why not."""
    try:
        provider = import_object(dotted_path)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot import {dotted_path!r}: {exc}") from None
    if not (isinstance(provider, type) and issubclass(provider, BaseHandler)):
        raise ValueError(f"{dotted_path!r} is not a request handler class")
    return provider


def is_safe_redirect(url: str | None) -> bool:
    """True if ``url`` is a path on this site, so redirecting to it cannot leave Flower.

    Browsers drop tabs and line breaks from a ``Location`` and read ``\\`` as
    ``/``, so ``/<tab>/evil.com`` would reach ``//evil.com``: only printable
    ASCII without spaces or backslashes is accepted, with no scheme or host,
    and the path must still look so once percent-decoded.
    """
    if not url or not all('!' <= char <= '~' for char in url) or '\\' in url:
        return False
    parts = urlsplit(url)
    decoded_path = unquote(parts.path)
    return not (parts.scheme or parts.netloc or not url.startswith('/') or url.startswith('//')
                or decoded_path.startswith('//') or '\\' in decoded_path
                or any(char.isspace() or not char.isprintable() for char in decoded_path))


def get_next_url(handler: RequestHandler, default: str | None = None) -> str:
    """Where to go after logging in: the request's ``next`` argument when it is a safe
    redirect (:func:`is_safe_redirect`), else ``default`` (Flower's first page)."""
    wanted = handler.get_argument('next', None)
    if is_safe_redirect(wanted):
        return wanted
    return default if default is not None else handler.application.url_for_path('/')


class OAuth2StateMixin:
    """The OAuth 2 ``state`` of a login handler: a random value the provider must send
    back, kept with the page to return to in a short-lived, signed, HttpOnly cookie.

    It proves that the provider's answer ends a login started here (no login
    CSRF), and carries ``next`` across the provider's pages.
    """

    state_cookie = STATE_COOKIE
    state_max_age_days = STATE_MAX_AGE_DAYS

    def issue_state(self, next_url: str) -> str:
        """A fresh state for a login that ends at ``next_url``, saved in the cookie."""
        state = secrets.token_urlsafe(32)
        self.set_signed_cookie(self.state_cookie, json.dumps({'state': state, 'next': next_url}),
                               expires_days=self.state_max_age_days, httponly=True)
        return state

    def check_state(self) -> str:
        """Consume the state cookie; the ``state`` the provider sent back must match it.
        Returns where the login goes next; a mismatch or a missing cookie is a 403."""
        saved = self.get_signed_cookie(self.state_cookie, max_age_days=self.state_max_age_days)
        self.clear_cookie(self.state_cookie)
        try:
            expected = json.loads(saved)
        except (TypeError, ValueError):
            raise RequestError(403, "Login failed: the login expired or was not started "
                                    "here; try again") from None
        given = self.get_argument('state', '')
        if not hmac.compare_digest(given.encode(), expected['state'].encode()):
            raise RequestError(403, "Login failed: the OAuth state does not match")
        return expected['next']


class LoginHandler(BaseHandler):
    """The base of the login handlers; ``/login`` itself when ``--auth`` is not set.

    The route table (:func:`flower.urls.routes`) serves ``/login`` with the class
    ``--auth_provider`` names when ``--auth`` is set.
    """

    def prepare(self) -> None:
        """Logging in must be possible without being logged in; without ``--auth``
        there is no login page at all."""
        if not self.application.options.auth:
            raise RequestError(404, "There is no login page: OAuth login (--auth) is not "
                                    "configured")


class OAuth2LoginHandler(OAuth2StateMixin, LoginHandler):
    """The authorization-code flow every built-in provider shares."""

    provider_name = 'OAuth 2'
    base_url_variable = None
    default_base_url = None
    authorize_path = token_path = None
    scope = ''

    @property
    def base_url(self) -> str:
        base = os.environ.get(self.base_url_variable or '', '') or self.default_base_url or ''
        return base.rstrip('/')

    def endpoint(self, path: str, public_url: str) -> str:
        """``public_url``, or ``path`` on the host that the base-URL variable names instead.

        For providers whose public API lives on other hosts than their login page.
        """
        if os.environ.get(self.base_url_variable or ''):
            return self.base_url + path
        return public_url

    @property
    def authorize_url(self) -> str:
        return self.base_url + self.authorize_path

    @property
    def token_url(self) -> str:
        return self.base_url + self.token_path

    async def get(self) -> None:
        error = self.get_argument('error', None)
        if error is not None:
            # The text comes from the query string: logged for the operator, not shown.
            logger.warning("%s refused a login: %r", self.provider_name, error[:200])
            raise RequestError(403, f"Login refused by {self.provider_name}")
        code = self.get_argument('code', None)
        if code is None:
            self.redirect_to_provider()
            return
        next_path = self.check_state()
        access_token = await self.exchange_code(code)
        email = await self.verified_email(access_token)
        if not authenticate(self.application.options.auth, email):
            logger.warning("%s login refused for %r: not allowed by --auth",
                           self.provider_name, email)
            raise RequestError(403, f"Access denied: {email or 'no verified e-mail'} "
                                    "is not allowed to use this Flower")
        await self.check_access(access_token)
        self.start_session(email)
        logger.info("%s login of %s", self.provider_name, email)
        self.redirect(next_path)

    def redirect_to_provider(self) -> None:
        state = self.issue_state(get_next_url(self))
        query = urlencode({
            'client_id': self.application.options.oauth2_key,
            'redirect_uri': self.application.options.oauth2_redirect_uri,
            'response_type': 'code',
            'scope': self.scope,
            'state': state,
        })
        self.redirect(f"{self.authorize_url}?{query}")

    async def exchange_code(self, code: str) -> str:
        options = self.application.options
        refused = f"Login failed: {self.provider_name} did not accept the authorization code"
        reply = await self.fetch_json(self.token_url, failure=refused, method='POST', body=urlencode({
            'client_id': options.oauth2_key,
            'client_secret': options.oauth2_secret,
            'code': code,
            'redirect_uri': options.oauth2_redirect_uri,
            'grant_type': 'authorization_code',
        }))
        token = reply.get('access_token') if isinstance(reply, dict) else None
        if not token:
            raise RequestError(403, refused)
        return token

    async def fetch_json(self, url: str, access_token: str | None = None,
                         failure: str | None = None, **kwargs: Any) -> Any:
        """A JSON reply from the provider; a failure is a 403 page, the secret never logged."""
        headers = {'Accept': 'application/json', 'User-Agent': 'flower'}
        if access_token:
            headers['Authorization'] = f"Bearer {access_token}"
        request = HTTPRequest(url, headers=headers, request_timeout=10, **kwargs)
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code == 200:
            try:
                return json.loads(response.body)
            except ValueError:
                pass
        logger.warning("%s login: %s %s answered %s", self.provider_name,
                       request.method, url, response.code)
        raise RequestError(403, failure or f"Login failed: {self.provider_name} answered "
                                           f"{response.code} to {url}")

    async def verified_email(self, access_token: str) -> str | None:
        """The user's verified e-mail address, or None."""
        raise NotImplementedError

    async def check_access(self, access_token: str) -> None:
        """Provider-specific checks beyond the e-mail address (none by default)."""


class OpenIDUserInfoMixin:
    """Providers whose userinfo endpoint says ``email`` and ``email_verified``."""

    userinfo_path = None

    @property
    def userinfo_url(self) -> str:
        return self.base_url + self.userinfo_path

    async def verified_email(self, access_token: str) -> str | None:
        info = await self.fetch_json(self.userinfo_url, access_token)
        if isinstance(info, dict) and info.get('email_verified') is True:
            return info.get('email')
        return None


class GoogleAuth2LoginHandler(OpenIDUserInfoMixin, OAuth2LoginHandler):
    """Google; ``FLOWER_OAUTH2_GOOGLE_BASE_URL`` serves all three endpoints from one host."""

    provider_name = 'Google'
    base_url_variable = 'FLOWER_OAUTH2_GOOGLE_BASE_URL'
    default_base_url = 'https://accounts.google.com'
    authorize_path = '/o/oauth2/v2/auth'
    token_path = '/token'
    userinfo_path = '/v1/userinfo'
    scope = 'openid email'

    @property
    def token_url(self) -> str:
        return self.endpoint(self.token_path, 'https://oauth2.googleapis.com/token')

    @property
    def userinfo_url(self) -> str:
        return self.endpoint(self.userinfo_path, 'https://openidconnect.googleapis.com/v1/userinfo')


class OktaLoginHandler(OpenIDUserInfoMixin, OAuth2LoginHandler):
    provider_name = 'Okta'
    base_url_variable = 'FLOWER_OAUTH2_OKTA_BASE_URL'
    authorize_path = '/v1/authorize'
    token_path = '/v1/token'
    userinfo_path = '/v1/userinfo'
    scope = 'openid email'


class GithubLoginHandler(OAuth2LoginHandler):
    provider_name = 'GitHub'
    base_url_variable = 'FLOWER_OAUTH2_GITHUB_BASE_URL'
    default_base_url = 'https://github.com'
    authorize_path = '/login/oauth/authorize'
    token_path = '/login/oauth/access_token'
    scope = 'user:email'

    @property
    def emails_url(self) -> str:
        # With a base URL: the GitHub Enterprise layout.
        return self.endpoint('/api/v3/user/emails', 'https://api.github.com/user/emails')

    async def verified_email(self, access_token: str) -> str | None:
        """The primary address if verified and allowed, else any verified allowed one."""
        emails = await self.fetch_json(self.emails_url, access_token)
        if not isinstance(emails, list):
            return None
        verified = [entry for entry in emails
                    if isinstance(entry, dict) and entry.get('verified') is True]
        verified.sort(key=lambda entry: entry.get('primary') is not True)
        for entry in verified:
            if authenticate(self.application.options.auth, entry.get('email')):
                return entry['email']
        return verified[0].get('email') if verified else None


class GitLabLoginHandler(OAuth2LoginHandler):
    provider_name = 'GitLab'
    base_url_variable = 'FLOWER_OAUTH2_GITLAB_BASE_URL'
    default_base_url = 'https://gitlab.com'
    authorize_path = '/oauth/authorize'
    token_path = '/oauth/token'
    scope = 'read_api'
    default_min_access_level = 20  # Reporter

    async def verified_email(self, access_token: str) -> str | None:
        user = await self.fetch_json(self.base_url + '/api/v4/user', access_token)
        if isinstance(user, dict) and user.get('confirmed_at'):
            return user.get('email')
        return None

    async def check_access(self, access_token: str) -> None:
        """With ``FLOWER_GITLAB_AUTH_ALLOWED_GROUPS`` set, the user must be in one of them."""
        allowed = {group.strip() for group in
                   os.environ.get('FLOWER_GITLAB_AUTH_ALLOWED_GROUPS', '').split(',')
                   if group.strip()}
        if not allowed:
            return
        level = os.environ.get('FLOWER_GITLAB_MIN_ACCESS_LEVEL') or self.default_min_access_level
        query = urlencode({'min_access_level': level, 'per_page': 100})
        groups = await self.fetch_json(f"{self.base_url}/api/v4/groups?{query}", access_token)
        paths = {group.get('full_path') for group in groups if isinstance(group, dict)} \
            if isinstance(groups, list) else set()
        if not paths & allowed:
            raise RequestError(403, "Access denied: not a member of an allowed GitLab group")


class LogoutHandler(BaseHandler):
    """``/logout``: a page with a button (GET), and ending the OAuth session (POST).

    Only a POST carrying the XSRF token logs out, so another site cannot log a
    user out; it ends every session of that user (see :class:`~flower.security.Sessions`).
    """

    def prepare(self) -> None:
        """Logging out must work whatever state the session is in."""

    def get(self) -> None:
        self.render('logout.html', logged_out=False)

    def post(self) -> None:
        email = self.current_user and self.session_email
        if email:
            self.application.sessions.end(email)
            logger.info("Logout of %s", email)
        self.clear_cookie('user')
        self.current_user = self.session_email = None
        self.render('logout.html', logged_out=True)
