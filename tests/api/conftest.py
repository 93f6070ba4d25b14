"""The API tests: the module's cluster comes from :mod:`tests.support.api_cluster`
(a plugin of the root conftest); here the API is opened without authentication."""
import pytest


@pytest.fixture(autouse=True)
def open_api(monkeypatch):
    """Open the API without authentication, as FLOWER_UNAUTHENTICATED_API=true does."""
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
