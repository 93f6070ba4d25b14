"""The dashboard, a worker's page, a task's page and the graphs follow the change
stream in headless Chromium, without reloading.

One private Redis, one worker and a Flower with ``--auto_refresh=false`` (so no
polling could be what changes a page) are shared by the module. Each test marks
its page after loading it (``window.loadedOnce``): a reload would drop the mark.
"""
import json
import os
import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.support.api_cluster import Cluster
from tests.support.browser import assert_no_browser_problems, save_screenshot
from tests.support.processes import REPO_DIR
from tests.support.waiting import wait_for

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'ui-live-pages-browser')
#: Worker counters come with heartbeats (every 2 s): room for a busy machine, in ms.
HEARTBEAT_MS = 15_000


@pytest.fixture(scope='module')
def live():
    with Cluster(ARTIFACTS) as cluster:
        [cluster.worker] = cluster.start_workers({
            'name': f'live-pages-{uuid.uuid4().hex[:6]}@localhost', 'pool': 'threads',
            'concurrency': 4})
        cluster.flower = cluster.start_flower(auto_refresh=False)
        cluster.wait_known(cluster.flower, cluster.worker)
        yield cluster


def open_live(page, url):
    """Load ``url`` once, mark it, and wait until its stream is open."""
    page.goto(url)
    page.evaluate('window.loadedOnce = true')
    expect(page.locator('#live-control')).to_have_attribute('data-state', 'open')


def assert_not_reloaded(page):
    assert page.evaluate('window.loadedOnce') is True


def worker_row(page, hostname):
    return page.locator(f'#workers-table tbody tr[data-worker="{hostname}"]')


def cell(row, column):
    return row.locator(f'[data-column="{column}"]')


def number(locator):
    return int(locator.inner_text())


def known_to_flower(live, task_id):
    flower = live.flower
    return flower.call(lambda: task_id in flower.app.events.state.tasks)


def test_dashboard_rows_change_in_place_new_workers_appear_and_go_offline(page, live):
    open_live(page, live.flower.base_url + '/')
    row = worker_row(page, live.worker.hostname)
    processed = number(cell(row, 'processed'))
    total = number(page.locator('#workers-table tfoot [data-total="processed"]'))

    live.client.send_task('tasks.add', (1, 2)).get(timeout=30)
    # The counters come with the worker's next heartbeat (every 2 s).
    expect(cell(row, 'processed')).to_have_text(str(processed + 1), timeout=HEARTBEAT_MS)
    expect(cell(row, 'succeeded')).not_to_have_text('0')
    expect(page.locator('#workers-table tfoot [data-total="processed"]')).to_have_text(
        str(total + 1))

    [newcomer] = live.start_workers({'name': f'live-new-{uuid.uuid4().hex[:6]}@localhost',
                                     'pool': 'solo'})
    expect(cell(worker_row(page, newcomer.hostname), 'status')).to_have_text(
        'Online', timeout=HEARTBEAT_MS)
    expect(worker_row(page, newcomer.hostname).locator('td.worker-name a')).to_have_text(
        newcomer.hostname)
    newcomer.stop()
    expect(cell(worker_row(page, newcomer.hostname), 'status')).to_have_text(
        'Offline', timeout=HEARTBEAT_MS)
    save_screenshot(page, ARTIFACTS, 'dashboard-live')
    assert_not_reloaded(page)
    assert_no_browser_problems(page)


def test_a_worker_flower_forgets_leaves_the_dashboard(page, live):
    open_live(page, live.flower.base_url + '/')
    [gone] = live.start_workers({'name': f'live-gone-{uuid.uuid4().hex[:6]}@localhost',
                                 'pool': 'solo'})
    row = worker_row(page, gone.hostname)
    expect(cell(row, 'status')).to_have_text('Online', timeout=HEARTBEAT_MS)
    workers = int(page.locator('#summary-cards [data-card="workers"]').inner_text())
    gone.stop()
    expect(cell(row, 'status')).to_have_text('Offline', timeout=HEARTBEAT_MS)

    live.flower.call(live.flower.app.forget_worker, gone.hostname)  # as the purge timer does
    expect(row).to_have_count(0)
    expect(page.locator('#summary-cards [data-card="workers"]')).to_have_text(str(workers - 1))
    expect(worker_row(page, live.worker.hostname)).to_be_visible()
    assert_not_reloaded(page)
    assert_no_browser_problems(page)


def test_worker_page_shows_a_task_running_then_finished(page, live):
    name = live.worker.hostname
    open_live(page, live.flower.base_url + '/worker/' + name)
    page.locator('#tab-tasks').click()
    succeeded = number(page.locator('#worker-counters [data-column="succeeded"]'))

    hostile = '<img src=x onerror="window.injected=1">'
    result = live.client.send_task('tasks.sleep_with_args', (2, hostile))
    running = page.locator(f'#active-table tr[data-task="{result.id}"]')
    expect(running).to_be_visible()
    expect(running.locator('a')).to_have_attribute('href', f'/task/{result.id}')
    expect(running.locator('.task-args')).to_contain_text(hostile)  # as text, not markup
    save_screenshot(page, ARTIFACTS, 'worker-live')
    assert page.locator('#active-table img').count() == 0
    expect(page.locator('#processed-table tr[data-task-name="tasks.sleep_with_args"]')
           ).to_be_visible()
    result.get(timeout=30)
    expect(running).to_have_count(0)
    expect(page.locator('#worker-counters [data-column="succeeded"]')).to_have_text(
        str(succeeded + 1), timeout=HEARTBEAT_MS)
    expect(page.locator('#worker-status .status')).to_have_text('Online')
    assert page.evaluate('window.injected') is None
    assert_not_reloaded(page)
    assert_no_browser_problems(page)


def test_task_page_follows_its_task_and_children_and_pause_holds_it(page, live):
    # Sent to a queue no worker consumes yet: Flower knows them (task-sent) until the
    # worker is told to consume it, once every page is open.
    held = f'held-{uuid.uuid4().hex[:6]}'
    result = live.client.send_task('worker_only.spawn', queue=held)
    failing = live.client.send_task('tasks.error', ('<b>on purpose</b>',), queue=held)
    wait_for(lambda: known_to_flower(live, result.id) and known_to_flower(live, failing.id),
             what='Flower to know the tasks')
    url = f'{live.flower.base_url}/task/{result.id}'
    failure = page.context.new_page()
    open_live(failure, f'{live.flower.base_url}/task/{failing.id}')
    paused = page.context.new_page()
    open_live(paused, url)
    paused.locator('#live-toggle').uncheck()
    expect(paused.locator('#live-control')).to_have_attribute('data-state', 'paused')
    open_live(page, url)
    expect(page.locator('#field-state')).to_have_text('PENDING')
    live.client.control.add_consumer(held, destination=[live.worker.hostname], reply=True)

    child_id = result.get(timeout=30)
    expect(page.locator('#field-state')).to_have_text('SUCCESS')
    expect(page.locator('#field-result')).to_contain_text(child_id)
    expect(page.locator(f'#field-children a[href="/task/{child_id}"]')).to_be_visible()
    expect(page.locator('#field-worker a')).to_have_text(live.worker.hostname)
    expect(page.locator('#field-runtime')).to_have_text(re.compile(r'^\d+\.\d{3} s$'))
    save_screenshot(page, ARTIFACTS, 'task-live')
    assert_not_reloaded(page)

    expect(failure.locator('#field-state')).to_have_text('FAILURE')
    expect(failure.locator('#field-exception')).to_contain_text('<b>on purpose</b>')
    expect(failure.locator('#field-traceback')).to_contain_text('Traceback')
    assert failure.locator('#task-fields b').count() == 0
    assert_not_reloaded(failure)

    # The paused page has not moved, though the other one shows every change.
    expect(paused.locator('#field-state')).to_have_text('PENDING')
    paused.locator('#live-toggle').check()
    expect(paused.locator('#field-state')).to_have_text('SUCCESS')
    expect(paused.locator('#live-control')).to_have_attribute('data-state', 'open')
    assert_not_reloaded(paused)
    assert_no_browser_problems(page)


def graph_total(page, graph, series):
    return page.evaluate(
        """([graph, series]) => [...document.querySelectorAll(
               `#graph-${graph} g[data-series="${series}"] circle`)]
             .reduce((sum, dot) => sum + Number(dot.dataset.value), 0)""", [graph, series])


def runtime_total(page):
    return page.evaluate("""() => [...document.querySelectorAll('#graph-runtime rect.bar')]
                             .reduce((sum, bar) => sum + Number(bar.dataset.count), 0)""")


def test_monitor_counts_finished_tasks_from_the_stream(page, live):
    open_live(page, live.flower.base_url + '/monitor')
    before = graph_total(page, 'succeeded', 'tasks.mul')
    runtimes = runtime_total(page)

    live.client.send_task('tasks.mul', (6, 7)).get(timeout=30)
    wait_for(lambda: graph_total(page, 'succeeded', 'tasks.mul') == before + 1,
             what='the graph to count the task')
    wait_for(lambda: runtime_total(page) == runtimes + 1, what='the runtime bars')
    live.client.send_task('tasks.error', ('on purpose',)).get(timeout=30, propagate=False)
    wait_for(lambda: graph_total(page, 'failed', 'tasks.error') >= 1,
             what='the failed graph to count the task')
    save_screenshot(page, ARTIFACTS, 'monitor-live')
    assert_not_reloaded(page)

    status, body = live.flower.get('/monitor/data?parts=queues')
    assert status == 200 and list(json.loads(body)) == ['queues']

    # Grouped by worker, the counts come from the server again, then from the stream.
    page.locator('#monitor-group-by').select_option('worker')
    expect(page.locator(f'#graph-succeeded g[data-series="{live.worker.hostname}"]')).to_have_count(1)
    expect(page.locator('#live-control')).to_have_attribute('data-state', 'open')
    assert_no_browser_problems(page)


def test_without_event_source_the_pages_poll(page, live):
    flower = live.start_flower(auto_refresh=True)
    page.context.add_init_script('delete window.EventSource')
    worker_page = page.context.new_page()
    worker_page.goto(f'{flower.base_url}/worker/{live.worker.hostname}')
    page.goto(flower.base_url + '/')
    for each in (page, worker_page):
        each.evaluate('window.loadedOnce = true')
        expect(each.locator('#live-state')).to_have_text('polling')
    row = worker_row(page, live.worker.hostname)
    processed = number(cell(row, 'processed'))
    counter = worker_page.locator('#worker-counters [data-column="processed"]')
    on_worker_page = number(counter)

    live.client.send_task('tasks.add', (3, 4)).get(timeout=30)
    expect(cell(row, 'processed')).to_have_text(str(processed + 1), timeout=20_000)
    expect(counter).to_have_text(str(on_worker_page + 1), timeout=20_000)
    assert_not_reloaded(page)
    assert_not_reloaded(worker_page)
    assert_no_browser_problems(page)
