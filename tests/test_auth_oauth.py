"""OAuth 2 login end to end: a real Flower, a real HTTP client with cookies, a fake provider.

The provider (tests/support/oauth_provider.py) is a real HTTP server on
loopback; Flower reaches it through the ``FLOWER_OAUTH2_*_BASE_URL`` variables.
"""
import html
import json
import urllib.parse

import pytest

from tests.support.oauth_provider import CLIENT_ID, CLIENT_SECRET, Client

PROVIDERS = {
    'google': ('flower.views.auth.GoogleAuth2LoginHandler', 'FLOWER_OAUTH2_GOOGLE_BASE_URL', ''),
    'github': ('flower.views.auth.GithubLoginHandler', 'FLOWER_OAUTH2_GITHUB_BASE_URL', ''),
    'gitlab': ('flower.views.auth.GitLabLoginHandler', 'FLOWER_OAUTH2_GITLAB_BASE_URL', ''),
    'okta': ('flower.views.auth.OktaLoginHandler', 'FLOWER_OAUTH2_OKTA_BASE_URL', '/oauth2'),
}
ALLOWED = r'.*@example\.com'


@pytest.fixture(params=sorted(PROVIDERS))
def oauth_flower(request, provider, broker_url, flower_factory, monkeypatch):
    """A Flower logging users in through ``request.param``'s handler on the fake provider."""
    handler, variable, path = PROVIDERS[request.param]
    monkeypatch.setenv(variable, provider.base_url + path)
    monkeypatch.delenv('FLOWER_GITLAB_AUTH_ALLOWED_GROUPS', raising=False)
    provider.user = {'email': 'alice@example.com', 'verified': True, 'groups': []}
    provider.state_override = None
    flower = flower_factory(broker_url, enable_events=False, auth=ALLOWED, auth_provider=handler,
                            oauth2_key=CLIENT_ID, oauth2_secret=CLIENT_SECRET)
    flower.options.oauth2_redirect_uri = flower.base_url + '/login'
    flower.provider_name = request.param
    return flower


def login(flower, client=None):
    client = client or Client()
    return client, client.get(flower.base_url + '/workers')


def test_an_allowed_verified_email_gets_in_and_keeps_a_session(oauth_flower, provider):
    client, (status, url, _, body) = login(oauth_flower)
    assert status == 200, body
    assert url == oauth_flower.base_url + '/workers'  # back where the user started
    assert 'workers-table' in body
    asked = provider.authorize_requests[-1]
    assert asked['client_id'] == [CLIENT_ID.encode()]
    assert asked['redirect_uri'] == [(oauth_flower.base_url + '/login').encode()]

    session = client.cookie('user')
    assert session is not None and session.has_nonstandard_attr('HttpOnly')
    status, url, _, _ = client.get(oauth_flower.base_url + '/', follow=False)
    assert status == 200


def test_a_forged_unsigned_session_cookie_is_refused(oauth_flower):
    forged = {'Cookie': 'user=alice@example.com'}
    status, _, headers, _ = Client().get(oauth_flower.base_url + '/', follow=False, headers=forged)
    assert status == 302 and '/login?next=' in headers['Location']
    status, *_ = Client().get(oauth_flower.base_url + '/api/workers', headers=forged)
    assert status == 401


def test_the_session_opens_the_api_as_cookie_and_as_bearer_token(oauth_flower):
    client, (status, *_) = login(oauth_flower)
    assert status == 200
    status, _, _, body = client.get(oauth_flower.base_url + '/api/workers')
    assert status == 200 and json.loads(body) == {}
    token = client.cookie('user').value
    stranger = Client()
    status, _, _, body = stranger.get(oauth_flower.base_url + '/api/workers')
    assert status == 401
    status, _, _, body = stranger.get(oauth_flower.base_url + '/api/workers',
                                      headers={'Authorization': f'Bearer {token}'})
    assert status == 200
    status, _, _, _ = stranger.get(oauth_flower.base_url + '/api/workers',
                                   headers={'Authorization': f'Bearer {token}x'})
    assert status == 401


@pytest.mark.parametrize('user, reason', [
    ({'email': 'mallory@evil.io', 'verified': True}, 'Access denied'),
    ({'email': 'alice@example.com', 'verified': False}, 'Access denied'),
    ({'email': 'alice@example.com.evil.io', 'verified': True}, 'Access denied'),
    ({'email': 'xalice@example.comx', 'verified': True}, 'Access denied'),
], ids=['other-domain', 'unverified', 'look-alike-domain', 'partial-match'])
def test_a_disallowed_or_unverified_email_is_refused(oauth_flower, provider, user, reason):
    provider.user = dict(user, groups=[])
    client, (status, _, _, body) = login(oauth_flower)
    assert status == 403
    assert reason in html.unescape(body)
    assert client.cookie('user') is None
    assert client.get(oauth_flower.base_url + '/api/workers')[0] == 401


def test_a_wrong_state_is_refused(oauth_flower, provider):
    provider.state_override = 'forged-state'
    client, (status, _, _, body) = login(oauth_flower)
    assert status == 403
    assert 'state does not match' in body
    assert client.cookie('user') is None


def test_a_replayed_code_is_refused(oauth_flower, provider):
    client = Client()
    status, _, _, _ = client.get(oauth_flower.base_url + '/login', follow=False)
    assert status == 302
    # Follow the provider's redirect by hand to keep the callback URL.
    authorize = client.get(oauth_flower.base_url + '/login', follow=False)[2]['Location']
    callback = client.get(authorize, follow=False)[2]['Location']
    assert client.get(callback)[0] == 200

    # The same callback again: its state cookie is gone.
    status, _, _, body = Client().get(callback)
    assert status == 403
    # Even with a fresh, valid state the provider refuses the used code.
    attacker = Client()
    authorize = attacker.get(oauth_flower.base_url + '/login', follow=False)[2]['Location']
    fresh_state = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)['state'][0]
    used_code = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query)['code'][0]
    status, _, _, body = attacker.get(
        f"{oauth_flower.base_url}/login?code={used_code}&state={fresh_state}")
    assert status == 403
    assert 'did not accept the authorization code' in body
    assert attacker.cookie('user') is None


def test_logout_ends_the_session(oauth_flower):
    client, (status, *_) = login(oauth_flower)
    assert status == 200
    status, _, _, body = client.get(oauth_flower.base_url + '/logout')
    assert status == 200 and 'Log out of Flower' in body
    status, _, _, body = client.post_form(oauth_flower.base_url + '/logout')
    assert status == 200 and 'Logged out' in body
    assert client.cookie('user') is None
    status, url, _, _ = client.get(oauth_flower.base_url + '/', follow=False)
    assert status == 302


def test_next_never_leaves_the_site(oauth_flower):
    client = Client()
    for target in ('//evil.example/x', 'https://evil.example/', '/\\evil.example'):
        client.get(f"{oauth_flower.base_url}/login?next={urllib.parse.quote(target)}",
                   follow=False)
        status, url, _, _ = client.get(oauth_flower.base_url + '/login', follow=True)
        assert url.startswith(oauth_flower.base_url + '/'), (target, url)


@pytest.fixture
def gitlab_flower(provider, broker_url, flower_factory, monkeypatch):
    monkeypatch.setenv('FLOWER_OAUTH2_GITLAB_BASE_URL', provider.base_url)
    monkeypatch.setenv('FLOWER_GITLAB_AUTH_ALLOWED_GROUPS', 'ops, platform/celery')
    monkeypatch.setenv('FLOWER_GITLAB_MIN_ACCESS_LEVEL', '30')
    provider.state_override = None
    flower = flower_factory(broker_url, enable_events=False, auth=ALLOWED,
                            auth_provider='flower.views.auth.GitLabLoginHandler',
                            oauth2_key=CLIENT_ID, oauth2_secret=CLIENT_SECRET)
    flower.options.oauth2_redirect_uri = flower.base_url + '/login'
    return flower


def test_gitlab_admits_members_of_an_allowed_group_only(gitlab_flower, provider):
    provider.user = {'email': 'alice@example.com', 'verified': True,
                     'groups': ['platform', 'platform/celery']}
    assert login(gitlab_flower)[1][0] == 200
    assert provider.group_queries[-1]['min_access_level'] == [b'30']

    provider.user = {'email': 'bob@example.com', 'verified': True, 'groups': ['platform']}
    client, (status, _, _, body) = login(gitlab_flower)
    assert status == 403
    assert 'not a member of an allowed GitLab group' in body
    assert client.cookie('user') is None


@pytest.mark.parametrize('xheaders, secure', [(True, True), (False, False)])
def test_behind_a_tls_proxy_the_cookies_are_secure_only_with_xheaders(
        provider, broker_url, flower_factory, xheaders, secure):
    flower = flower_factory(broker_url, enable_events=False, auth=ALLOWED, xheaders=xheaders,
                            oauth2_key=CLIENT_ID, oauth2_secret=CLIENT_SECRET,
                            oauth2_redirect_uri='https://flower.example.com/login')
    status, _, headers, _ = Client().get(flower.base_url + '/login', follow=False,
                                         headers={'X-Forwarded-Proto': 'https'})
    assert status == 302
    assert ('Secure' in headers['Set-Cookie']) is secure
