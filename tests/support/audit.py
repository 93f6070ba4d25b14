"""The audit trail as tests see it: the ``flower.audit`` log lines and ``/api/audit``."""
import json
import logging

import pytest


@pytest.fixture
def audit_lines():
    """The lines the ``flower.audit`` logger writes during the test, parsed."""
    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(record.getMessage()))

    logger = logging.getLogger('flower.audit')
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def newest_record(api, **filters):
    response = api.get('/api/audit', params=dict(filters, limit=1))
    assert response.status_code == 200, response.text
    return response.json()['records'][0]


def assert_audited(api, audit_lines, action, targets, status, outcome=None, user='anonymous'):
    """The newest record is the action's, and it is also the last line logged.

    ``targets=None`` leaves the targets to the caller (a bulk action's order is the selection's).
    """
    record = newest_record(api)
    assert record['action'] == action
    if targets is not None:
        assert record['targets'] == targets
    assert record['status'] == status
    assert record['user'] == user
    assert record['address'] == '127.0.0.1'
    assert record['time'].endswith('+00:00')
    if outcome is not None:
        assert record['outcome'] == outcome
    assert audit_lines and audit_lines[-1] == record
    return record
