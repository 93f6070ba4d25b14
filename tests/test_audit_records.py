"""How an audit record names a request's action and keeps its targets and outcome short
(pure logic; the records of real requests are tested in tests/api/test_audit_purge.py)."""
import logging
from concurrent.futures import Future

import pytest

from flower.audit import MAX_TARGETS, MAX_TEXT, AuditTrail, action_of


@pytest.mark.parametrize('path, args, prefix, action', [
    ('/api/worker/pool/grow/celery@host', ['celery@host'], '', 'worker.pool.grow'),
    ('/control/worker/pool/grow/celery@host', ['celery@host'], '', 'worker.pool.grow'),
    ('/flower/control/task/revoke/abc', ['abc'], '/flower', 'task.revoke'),
    ('/api/queues/purge/a%2Fb%20c', ['a/b c'], '', 'queues.purge'),
    ('/api/task/send-task/tasks.add/', ['tasks.add'], '', 'task.send-task'),
    ('/api/tasks/revoke', [], '', 'tasks.revoke'),
    ('/api/queues/purge/purge', ['purge'], '', 'queues.purge'),
    ('/api', [], '', 'unknown'),
])
def test_the_action_is_the_route_without_its_arguments(path, args, prefix, action):
    assert action_of(path, args, prefix) == action


def record(trail, **fields):
    values = dict(user='anonymous', address='127.0.0.1', action='tasks.revoke', targets=[],
                  status=200, outcome={})
    values.update(fields)
    return trail.record(**values)


def test_long_target_lists_and_values_are_cut():
    trail = AuditTrail()
    ids = [f'id-{number}' for number in range(MAX_TARGETS + 5)]

    entry = record(trail, targets=ids, outcome={'ids': ids, 'message': 'x' * 500,
                                                       'count': 105, 'dry_run': False})

    assert entry['targets'] == ids[:MAX_TARGETS] + ['… and 5 more']
    assert len(entry['outcome']['ids']) == MAX_TEXT and entry['outcome']['ids'].endswith('…')
    assert entry['outcome']['ids'].startswith('["id-0", "id-1", ')
    assert len(entry['outcome']['message']) == MAX_TEXT
    assert (entry['outcome']['count'], entry['outcome']['dry_run']) == (105, False)


@pytest.mark.gen_test
async def test_the_ring_keeps_the_newest_records_newest_first_and_filters():
    trail = AuditTrail(size=3)
    for number in range(5):
        record(trail, user='alice' if number % 2 else 'bob', targets=[str(number)])

    total, page = await trail.page(limit=2)
    assert total == 3
    assert [entry['targets'] for entry in page] == [['4'], ['3']]
    total, page = await trail.page(limit=10, user='alice')
    assert (total, [entry['targets'] for entry in page]) == (1, [['3']])
    assert await trail.page(limit=10, offset=3) == (3, [])


def test_a_failed_write_is_logged_beside_the_audit_log_not_in_it(caplog):
    """The ``flower.audit`` log holds one JSON line per action and nothing else."""
    failed = Future()
    failed.set_exception(OSError('disk full'))
    with caplog.at_level(logging.INFO):
        AuditTrail._written(failed)
    [line] = caplog.records
    assert line.name == 'flower.audit_store' and 'disk full' in line.getMessage()
    assert not [record for record in caplog.records if record.name == 'flower.audit']
