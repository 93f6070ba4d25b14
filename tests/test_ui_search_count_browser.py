"""A search's count stops past a thousand matches (flower.task_listing.AtLeast): the
tasks page says "1,000+" in headless Chromium, the data request says so, and a
search with fewer matches is counted exactly."""
import asyncio
import concurrent.futures

import pytest
from celery.events import Event
from playwright.sync_api import expect

from flower.events import EventsState
from flower.metrics import PrometheusMetrics
from flower.task_listing import COUNT_LIMIT, AtLeast
from flower.tasks import TaskFilter, Tasks
from tests.support.browser import assert_no_browser_problems
from tests.support.flower import FlowerServer

TASKS = 1500
T0 = 1_714_564_800.0


def send_tasks(state, count=TASKS):
    for number in range(count):
        state.event(Event('task-received', uuid=f'task-{number:05d}', hostname='w1@h',
                          timestamp=T0 + number, local_received=T0 + number, clock=number,
                          name='tasks.order', args=f"('order-{number}',)", kwargs='{}',
                          retries=0))


def searched(tasks, search, start, length):
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        return asyncio.run(tasks.page(TaskFilter(search=search), executor, offset=start,
                                      limit=length, count=True))


def test_a_search_counts_to_a_thousand_or_the_page_then_says_at_least():
    state = EventsState(max_tasks_in_memory=10_000, metrics=PrometheusMetrics())
    send_tasks(state)
    tasks = Tasks(state, None)
    filtered, page = searched(tasks, 'order', 0, 10)
    assert isinstance(filtered, AtLeast) and filtered == COUNT_LIMIT
    assert [uuid for uuid, _ in page] == [f'task-{number:05d}' for number in range(1499, 1489, -1)]
    # A page past the limit counts to its end.
    filtered, page = searched(tasks, 'order', 1200, 10)
    assert isinstance(filtered, AtLeast) and filtered == 1210
    assert [uuid for uuid, _ in page][0] == 'task-00299'
    # Exactly as many as can be counted, or fewer: exact.
    assert searched(tasks, 'order', 1490, 10)[0] == TASKS
    assert not isinstance(searched(tasks, 'order', 1490, 10)[0], AtLeast)
    filtered, _ = searched(tasks, 'order-14', 0, 10)  # order-14, order-140..149, order-1400..1499
    assert filtered == 111 and not isinstance(filtered, AtLeast)


@pytest.fixture
def flower(broker_url):
    server = FlowerServer(broker_url, enable_events=False, auto_refresh=False,
                          unauthenticated_api=True).start()
    server.call(lambda: send_tasks(server.app.events.state))
    yield server
    server.app.stop()


def test_the_tasks_page_says_1000_plus_when_the_count_stopped(page, flower):
    page.goto(flower.base_url + '/tasks')
    info = page.locator('#tasks-info')
    expect(info).to_contain_text(f'of {TASKS:,} tasks')
    page.locator('#task-search').fill('order')
    expect(info).to_contain_text('of 1,000+ tasks (filtered from 1,500)')
    expect(page.locator('#bulk-select-matching')).to_have_text('Select all 1000+ matching')
    page.locator('#task-search').fill('order-14')
    expect(info).to_contain_text('of 111 tasks (filtered from 1,500)')
    assert_no_browser_problems(page)
    answer = page.request.get(flower.base_url + '/tasks/datatable?draw=1&start=0&length=10'
                              '&search[value]=order').json()
    assert (answer['recordsFiltered'], answer['recordsFilteredAtLeast']) == (1000, True)
