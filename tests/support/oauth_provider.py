"""A small real OAuth 2 provider on loopback, speaking the Google, GitHub, GitLab and Okta dialects.

Its authorize endpoint consents at once (it redirects straight back with a
code), its token endpoint hands out one access token per code and refuses a
code used twice, and its user endpoints describe :attr:`FakeProvider.user`
in each provider's own format. Tests point Flower's providers at it through
the ``FLOWER_OAUTH2_*_BASE_URL`` variables.
"""
import asyncio
import http.cookiejar
import json
import secrets
import threading
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, urlencode

import pytest
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from tests.support.processes import free_port

CLIENT_ID = 'flower-client-id'
CLIENT_SECRET = 'flower-client-secret'


class _ProviderHandler(tornado.web.RequestHandler):
    def initialize(self, provider):
        self.provider = provider

    def user_for_token(self):
        scheme, _, token = self.request.headers.get('Authorization', '').partition(' ')
        user = self.provider.tokens.get(token) if scheme.lower() == 'bearer' else None
        if user is None:
            raise tornado.web.HTTPError(401)
        return user


class Authorize(_ProviderHandler):
    def get(self):
        provider = self.provider
        provider.authorize_requests.append(dict(self.request.query_arguments))
        redirect_uri = self.get_argument('redirect_uri')
        state = provider.state_override or self.get_argument('state')
        if self.get_argument('client_id') != CLIENT_ID:
            self.redirect(f"{redirect_uri}?{urlencode({'error': 'invalid_client', 'state': state})}")
            return
        code = secrets.token_urlsafe(16)
        provider.codes[code] = dict(provider.user)
        self.redirect(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}")


class Token(_ProviderHandler):
    def check_xsrf_cookie(self):
        """A token endpoint is called server to server."""

    def post(self):
        form = dict(parse_qsl(self.request.body.decode()))
        user = self.provider.codes.pop(form.get('code'), None)
        if (user is None or form.get('client_id') != CLIENT_ID
                or form.get('client_secret') != CLIENT_SECRET
                or form.get('grant_type') != 'authorization_code'):
            self.set_status(400)
            self.write({'error': 'invalid_grant'})
            return
        token = secrets.token_urlsafe(16)
        self.provider.tokens[token] = user
        self.write({'access_token': token, 'token_type': 'bearer'})


class OpenIDUserInfo(_ProviderHandler):
    """Google and Okta."""

    def get(self):
        user = self.user_for_token()
        self.write({'sub': '1', 'email': user['email'], 'email_verified': user['verified']})


class GithubEmails(_ProviderHandler):
    def get(self):
        user = self.user_for_token()
        emails = [{'email': 'other@elsewhere.org', 'verified': True, 'primary': False},
                  {'email': user['email'], 'verified': user['verified'], 'primary': True}]
        self.write(json.dumps(emails))


class GitlabUser(_ProviderHandler):
    def get(self):
        user = self.user_for_token()
        confirmed = '2020-01-01T00:00:00Z' if user['verified'] else None
        self.write({'id': 1, 'email': user['email'], 'confirmed_at': confirmed})


class GitlabGroups(_ProviderHandler):
    def get(self):
        user = self.user_for_token()
        self.provider.group_queries.append(dict(self.request.query_arguments))
        self.write(json.dumps([{'id': n, 'full_path': path}
                               for n, path in enumerate(user.get('groups', ()))]))


class FakeProvider:
    """Runs on a thread of its own; set :attr:`user` before each login."""

    def __init__(self):
        self.port = free_port()
        self.user = {'email': 'alice@example.com', 'verified': True, 'groups': []}
        self.state_override = None
        self.codes = {}
        self.tokens = {}
        self.authorize_requests = []
        self.group_queries = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name='fake-oauth', daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def _run(self):
        asyncio.set_event_loop(asyncio.new_event_loop())
        self.io_loop = IOLoop.current()
        kwargs = {'provider': self}
        app = tornado.web.Application([
            (r"/(?:o/oauth2/v2/auth|oauth2/v1/authorize|login/oauth/authorize|oauth/authorize)",
             Authorize, kwargs),
            (r"/(?:token|oauth2/v1/token|login/oauth/access_token|oauth/token)", Token, kwargs),
            (r"/(?:v1/userinfo|oauth2/v1/userinfo)", OpenIDUserInfo, kwargs),
            (r"/api/v3/user/emails", GithubEmails, kwargs),
            (r"/api/v4/user", GitlabUser, kwargs),
            (r"/api/v4/groups", GitlabGroups, kwargs),
        ])
        self._server = HTTPServer(app)
        self._server.listen(self.port, '127.0.0.1')
        self.io_loop.add_callback(self._ready.set)
        self.io_loop.start()

    def start(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self):
        def shutdown():
            self._server.stop()
            self.io_loop.stop()
        self.io_loop.add_callback(shutdown)
        self._thread.join(10)


class Client:
    """urllib with a cookie jar; follows redirects unless told not to."""

    def __init__(self):
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self._no_redirect = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect())

    def get(self, url, follow=True, headers=None):
        """``(status, final url, headers, body)``."""
        return self.request(url, follow=follow, headers=headers)

    def post(self, url, data=b'', follow=False, headers=None):
        """POST ``data`` (bytes); ``(status, final url, headers, body)``."""
        return self.request(url, data=data, follow=follow, headers=headers)

    def post_form(self, url, follow=False, headers=None):
        """POST a form carrying the XSRF token of the ``_xsrf`` cookie (get a page first)."""
        xsrf = self.cookie('_xsrf')
        data = urlencode({'_xsrf': xsrf.value if xsrf else ''}).encode()
        return self.post(url, data, follow=follow, headers=headers)

    def request(self, url, data=None, follow=True, headers=None):
        opener = self._opener if follow else self._no_redirect
        request = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            with opener.open(request, timeout=10) as r:
                return r.status, r.url, r.headers, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.url, exc.headers, exc.read().decode()

    def cookie(self, name):
        return next((cookie for cookie in self.cookies if cookie.name == name), None)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope='module')
def provider():
    """A :class:`FakeProvider` for the module's tests."""
    fake = FakeProvider().start()
    yield fake
    fake.stop()
