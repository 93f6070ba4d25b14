"""Fixtures of the security tests: a Flower logging users in through the fake OAuth provider."""
import pytest

from tests.support.oauth_provider import CLIENT_ID, CLIENT_SECRET

ALLOWED = r'.*@example\.com'


@pytest.fixture
def oauth_flower(provider, broker_url, flower_factory, monkeypatch):
    """A Flower with Google login served by the fake provider."""
    monkeypatch.setenv('FLOWER_OAUTH2_GOOGLE_BASE_URL', provider.base_url)
    provider.user = {'email': 'alice@example.com', 'verified': True, 'groups': []}
    provider.state_override = None
    flower = flower_factory(broker_url, enable_events=False, auth=ALLOWED,
                            oauth2_key=CLIENT_ID, oauth2_secret=CLIENT_SECRET)
    flower.options.oauth2_redirect_uri = flower.base_url + '/login'
    return flower
