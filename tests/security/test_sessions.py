"""Item 13 of issue 15: logout and ``--revoke_sessions`` end signed sessions on the server.

A session token (the ``user`` cookie, also sent as a Bearer token) is signed
for seven days; without server-side state a copy kept by anyone outlived
the logout. Flower keeps session generations, persisted with ``--persistent``.
"""
import pytest

from tests.security.conftest import ALLOWED
from tests.support.flower import FlowerServer
from tests.support.oauth_provider import CLIENT_ID, CLIENT_SECRET, Client


def login(flower, provider, email):
    provider.user = {'email': email, 'verified': True, 'groups': []}
    client = Client()
    status, url, _, _ = client.get(flower.base_url + '/workers')
    assert (status, url) == (200, flower.base_url + '/workers')
    return client, client.cookie('user').value


def can_use(flower, token):
    """``(page with the cookie, API with the Bearer token)`` worked."""
    page = Client().get(flower.base_url + '/workers', follow=False,
                        headers={'Cookie': f'user={token}'})[0] == 200
    api = Client().get(flower.base_url + '/api/workers',
                       headers={'Authorization': f'Bearer {token}'})[0] == 200
    return page, api


def logout(flower, client):
    client.get(flower.base_url + '/logout')
    status, _, _, body = client.post_form(flower.base_url + '/logout')
    assert status == 200 and 'Logged out' in body


def test_item13_logout_ends_the_cookie_and_the_bearer_token(oauth_flower, provider):
    client, token = login(oauth_flower, provider, 'alice@example.com')
    _, other_token = login(oauth_flower, provider, 'bob@example.com')
    assert can_use(oauth_flower, token) == (True, True)
    logout(oauth_flower, client)
    assert can_use(oauth_flower, token) == (False, False)
    assert can_use(oauth_flower, other_token) == (True, True)  # bob did not log out
    _, fresh_token = login(oauth_flower, provider, 'alice@example.com')
    assert can_use(oauth_flower, fresh_token) == (True, True)


@pytest.fixture
def start_oauth_flower(provider, broker_url, monkeypatch):
    """``start(**options)``: a Flower with Google login through the fake provider. Every
    one signs cookies with the same ``--cookie_secret``, as a deployment whose sessions
    outlive a restart must (without one, each start makes a new secret)."""
    monkeypatch.setenv('FLOWER_OAUTH2_GOOGLE_BASE_URL', provider.base_url)
    started = []

    def start(**options):
        flower = FlowerServer(broker_url, enable_events=False, auth=ALLOWED,
                              oauth2_key=CLIENT_ID, oauth2_secret=CLIENT_SECRET,
                              cookie_secret='sessions-test-secret', **options)
        flower.options.oauth2_redirect_uri = flower.base_url + '/login'
        started.append(flower)
        return flower.start()

    yield start
    for flower in started:
        flower.stop()


def test_item13_revoke_sessions_at_start_ends_every_session(start_oauth_flower, provider):
    first = start_oauth_flower()
    _, token = login(first, provider, 'alice@example.com')
    first.stop()
    revoking = start_oauth_flower(revoke_sessions=True)
    assert can_use(revoking, token) == (False, False)
    _, fresh_token = login(revoking, provider, 'alice@example.com')
    assert can_use(revoking, fresh_token) == (True, True)


def test_item13_revocations_and_logouts_persist_with_the_history(
        start_oauth_flower, provider, tmp_path):
    db = str(tmp_path / 'history')
    first = start_oauth_flower(persistent=True, db=db)
    _, old_token = login(first, provider, 'alice@example.com')
    first.stop()
    start_oauth_flower(persistent=True, db=db, revoke_sessions=True).stop()

    later = start_oauth_flower(persistent=True, db=db)  # without the flag
    assert can_use(later, old_token) == (False, False)
    client, token = login(later, provider, 'alice@example.com')
    _, bob_token = login(later, provider, 'bob@example.com')
    logout(later, client)
    later.stop()

    again = start_oauth_flower(persistent=True, db=db)
    assert can_use(again, token) == (False, False)
    assert can_use(again, bob_token) == (True, True)
