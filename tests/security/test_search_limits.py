"""Searches cannot freeze Flower (items 4 and 5 of issue 15).

A planted task whose kwargs repr is a long run of blanks once made the
``kwargs:<key>`` pattern backtrack for minutes on the IO loop; a search of
thousands of terms over thousands of tasks did the same. Searches are now
bounded in size, matched in linear time, and run off the IO loop.
"""
import concurrent.futures
import subprocess
import sys
import time
import urllib.parse

import pytest
from tornado.ioloop import PeriodicCallback

from tests.support.processes import REPO_DIR
from tests.support.waiting import wait_for

#: The documented limits of a search (docs/api.rst).
MAX_SEARCH_LENGTH = 1000
MAX_SEARCH_TERMS = 20
#: Hang detectors, not speed measures: a frozen loop misses them by far.
ANSWER_TIMEOUT = 5
LOOP_STALL_LIMIT = 0.5


def datatable(needle, **params):
    return '/tasks/datatable?' + urllib.parse.urlencode({'search[value]': needle, **params})


def healthcheck_keeps_answering(flower, paths, timeout=120):
    """Fetch ``paths`` in threads; meanwhile ``/healthcheck`` must keep answering.

    Returns the ``(status, body)`` of every path and the health checks made.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(paths)) as pool:
        pending = [pool.submit(flower.get, path, timeout) for path in paths]
        checks = []
        while not all(future.done() for future in pending) or not checks:
            try:
                checks.append(flower.get('/healthcheck', timeout=ANSWER_TIMEOUT))
            except OSError as exc:  # timed out: the IO loop is frozen
                checks.append((None, repr(exc)))
                break
            time.sleep(0.05)
        return [future.result() for future in pending], checks


def test_item04_kwargs_search_is_linear(broker_url, flower_factory, celery_client, monkeypatch):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    flower = flower_factory(broker_url, inspect_timeout=500)
    client = celery_client(broker_url)
    planted = []

    def plant():
        """Any client may choose the kwargs repr its task events carry. Events sent
        before Flower subscribed are lost: plant again until Flower has one."""
        if planted and flower.call(lambda: planted[-1] in flower.app.events.state.tasks):
            return True
        planted.append(client.send_task('tasks.add', (1, 2), kwargsrepr="{'k':" + ' ' * 3000).id)
        time.sleep(1)
        return False
    wait_for(plant, what='Flower to see the planted task')

    searches = [datatable('kwargs:k'), datatable('kwargs:k=v'), '/api/tasks?search=kwargs:k']
    answers, checks = healthcheck_keeps_answering(flower, searches)

    assert all(check == (200, 'OK') for check in checks), checks[-1]
    assert [status for status, _ in answers] == [200, 200, 200], answers
    assert '"recordsFiltered": 0' in answers[0][1] and '"recordsFiltered": 0' in answers[1][1]


@pytest.mark.parametrize('path', ['/api/tasks?search={}', '/tasks/datatable?search[value]={}'])
@pytest.mark.parametrize('search, message', [
    ('x' * (MAX_SEARCH_LENGTH + 1), f'at most {MAX_SEARCH_LENGTH} are accepted'),
    (' '.join(['t'] * (MAX_SEARCH_TERMS + 1)), f'at most {MAX_SEARCH_TERMS} are accepted'),
], ids=['too-long', 'too-many-terms'])
def test_item05_a_search_too_large_is_a_400(broker_url, flower_factory, monkeypatch, path, search,
                                           message):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    flower = flower_factory(broker_url, inspect_timeout=500)
    status, body = flower.get(path.format(urllib.parse.quote(search)))
    assert status == 400, body[:300]
    assert message in body
    largest = ' '.join(['t'] * MAX_SEARCH_TERMS)
    assert flower.get(path.format(urllib.parse.quote(largest)))[0] == 200


def watch_loop_stalls(flower):
    """Record the longest gap between ticks of a 10 ms timer on Flower's IO loop."""
    stalls = {'longest': 0.0, 'last': None}

    def tick():
        now = time.monotonic()
        if stalls['last'] is not None:
            stalls['longest'] = max(stalls['longest'], now - stalls['last'])
        stalls['last'] = now

    timer = flower.call(lambda: PeriodicCallback(tick, 10))
    flower.call(timer.start)
    return stalls, timer


def test_item05_searches_never_block_the_io_loop(broker_url, flower_factory, monkeypatch, tmp_path):
    """3,000 tasks with 30 KB arguments, most of them only in the --persistent history,
    and searches of the largest size accepted: the loop keeps ticking meanwhile."""
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    flower = flower_factory(broker_url, inspect_timeout=500, persistent=True,
                            db=str(tmp_path / 'history'), max_tasks=500)
    flood = subprocess.run([sys.executable, '-m', 'tests.support.event_flood', broker_url,
                            '3000', '30000'], cwd=REPO_DIR, capture_output=True, text=True,
                           timeout=300, check=True)
    assert flood.stdout.strip() == '6000'
    wait_for(lambda: flower.call(lambda: flower.app.events.store.count_tasks()) >= 3000,
             timeout=120, what='the history to hold every task')

    terms = ' '.join(f'args:absent{number}' for number in range(MAX_SEARCH_TERMS - 1))
    search = terms + ' xxxxxxxxxxy'
    stalls, timer = watch_loop_stalls(flower)
    try:
        answers, checks = healthcheck_keeps_answering(flower, [
            datatable(search), datatable(search, **{'order[0][column]': '0',
                                                    'columns[0][data]': 'received'}),
            '/api/tasks?search=' + urllib.parse.quote(search),
            '/api/tasks?limit=5&search=' + urllib.parse.quote('xxxxxxxxxx')])
    finally:
        flower.call(timer.stop)
    assert [status for status, _ in answers] == [200] * 4, [body[:300] for _, body in answers]
    assert '"recordsFiltered": 0' in answers[0][1] and answers[2][1] == '{}'
    assert answers[3][1].count('"uuid"') == 5
    assert all(check == (200, 'OK') for check in checks), checks[-1]
    assert stalls['longest'] < LOOP_STALL_LIMIT, stalls
