"""The dashboard, the actions that fit the state, and the worker page's polish, in
headless Chromium against real workers (issue 17, items 4, 7 and 10).

One private Redis, one thread-pool worker and a Flower with ``--auto_refresh=false``
(the pages change through the change stream only) are shared by the module.
"""
import os
import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.support.api_cluster import Cluster
from tests.support.browser import assert_no_browser_problems, save_screenshot
from tests.support.processes import REPO_DIR
from tests.support.waiting import wait_for

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'ui-dashboard-browser')
#: Worker counters and status come with heartbeats (every 2 s): room for a busy machine, in ms.
HEARTBEAT_MS = 15_000


@pytest.fixture(scope='module')
def cluster():
    with Cluster(ARTIFACTS) as cluster:
        [cluster.worker] = cluster.start_workers({
            'name': f'dashboard-{uuid.uuid4().hex[:6]}@localhost', 'pool': 'threads',
            'concurrency': 4})
        cluster.flower = cluster.start_flower(auto_refresh=False, unauthenticated_api=True)
        cluster.wait_known(cluster.flower, cluster.worker)
        yield cluster


def open_live(page, url):
    page.goto(url)
    expect(page.locator('#live-control')).to_have_attribute('data-state', 'open')


def task_state(cluster, task_id):
    flower = cluster.flower

    def state():
        task = flower.app.events.state.tasks.get(task_id)
        return task.state if task is not None else None
    return flower.call(state)


def assert_available(button):
    expect(button).to_be_enabled()
    expect(button).not_to_have_attribute('title', re.compile('.'))


def assert_unavailable(button, reason):
    expect(button).to_be_disabled()
    expect(button).to_have_attribute('title', reason)


def test_task_actions_fit_the_state_live_and_a_late_revoke_says_it_did_nothing(page, cluster):
    running = cluster.client.send_task('tasks.sleep_with_args', (8,))
    wait_for(lambda: task_state(cluster, running.id) == 'STARTED', what='the task to start')
    url = f'{cluster.flower.base_url}/task/{running.id}'
    stale = page.context.new_page()
    open_live(stale, url)
    stale.locator('#live-toggle').uncheck()
    open_live(page, url)
    expect(page.locator('#field-state')).to_have_text('STARTED')
    assert_available(page.locator('#revoke-task'))
    assert_available(page.locator('#terminate-task'))
    assert_unavailable(page.locator('#retry-task'), 'Only a failed, revoked, rejected or '
                                                    'retrying task can be retried (STARTED).')

    running.get(timeout=30)
    expect(page.locator('#field-state')).to_have_text('SUCCESS')
    assert_unavailable(page.locator('#revoke-task'), 'The task has finished: revoking it '
                                                     'would have no effect (SUCCESS).')
    assert_unavailable(page.locator('#terminate-task'),
                       'Only a running (STARTED) task can be terminated (SUCCESS).')
    save_screenshot(page, ARTIFACTS, 'task-actions-finished')

    # The paused page still shows it running: its Revoke is answered honestly.
    expect(stale.locator('#field-state')).to_have_text('STARTED')
    stale.on('dialog', lambda dialog: dialog.accept())
    stale.locator('#revoke-task').click()
    reply = stale.locator('#control-reply')
    expect(reply).to_have_text(f"'{running.id}' had already finished (SUCCESS): "
                               "revoking it had no effect")
    expect(reply).to_have_class('control-reply neutral')
    # Answering refreshed the page: it now shows the task finished, its buttons follow.
    expect(stale.locator('#field-state')).to_have_text('SUCCESS')
    expect(stale.locator('#revoke-task')).to_be_disabled()
    assert_no_browser_problems(page)


def test_a_failed_task_offers_retry_only(page, cluster):
    failed = cluster.client.send_task('tasks.error', ('on purpose',))
    wait_for(lambda: task_state(cluster, failed.id) == 'FAILURE', what='the task to fail')
    page.goto(f'{cluster.flower.base_url}/task/{failed.id}')
    assert_unavailable(page.locator('#revoke-task'), 'The task has finished: revoking it '
                                                     'would have no effect (FAILURE).')
    assert_unavailable(page.locator('#terminate-task'),
                       'Only a running (STARTED) task can be terminated (FAILURE).')
    assert_available(page.locator('#retry-task'))
    assert_no_browser_problems(page)


def test_an_offline_worker_has_no_load_and_no_controls(page, cluster):
    [leaving] = cluster.start_workers({'name': f'leaving-{uuid.uuid4().hex[:6]}@localhost',
                                       'pool': 'solo'})
    cluster.wait_known(cluster.flower, leaving)
    worker_page = page.context.new_page()
    open_live(worker_page, f'{cluster.flower.base_url}/worker/{leaving.hostname}')
    open_live(page, cluster.flower.base_url + '/')
    row = page.locator(f'#workers-table tbody tr[data-worker="{leaving.hostname}"]')
    expect(row.locator('[data-column="loadavg"]')).to_have_text(
        re.compile(r'^\d+\.\d\d, '), timeout=HEARTBEAT_MS)
    assert_available(worker_page.locator('#pool-grow button'))
    assert_available(worker_page.locator('form.shutdown button'))

    leaving.stop()
    expect(row.locator('[data-column="status"]')).to_have_text('Offline', timeout=HEARTBEAT_MS)
    expect(row.locator('[data-column="loadavg"]')).to_have_text('—')
    expect(worker_page.locator('#worker-status .status')).to_have_text('Offline')
    for selector in ('#pool-grow button', '#pool-shrink button', '#pool-autoscale button',
                     '#pool-restart button', 'form.shutdown button', '#add-consumer button'):
        assert_unavailable(worker_page.locator(selector), 'The worker is offline')
    expect(worker_page.locator('#pool-grow input[name=n]')).to_be_disabled()
    save_screenshot(worker_page, ARTIFACTS, 'worker-offline')

    # Loaded afresh, both pages say the same.
    page.reload()
    expect(row.locator('[data-column="loadavg"]')).to_have_text('—')
    worker_page.reload()
    assert_unavailable(worker_page.locator('form.shutdown button'), 'The worker is offline')
    assert_no_browser_problems(page)


def uuids_in_table(page):
    return set(page.locator('#tasks-table tbody tr[data-uuid]').evaluate_all(
        'rows => rows.map(row => row.dataset.uuid)'))


def flower_task_ids(cluster, worker, state):
    flower = cluster.flower
    return flower.call(lambda: {task.uuid for task in flower.app.events.state.tasks.values()
                                if task.state == state and task.worker is not None
                                and task.worker.hostname == worker})


def test_dashboard_cards_and_counts_lead_to_exactly_those_tasks(page, cluster):
    name = cluster.worker.hostname
    failures = [cluster.client.send_task('tasks.error', (f'card {n}',)) for n in range(2)]
    success = cluster.client.send_task('tasks.add', (1, 2))
    wait_for(lambda: task_state(cluster, success.id) == 'SUCCESS', what='the success')
    for failure in failures:
        wait_for(lambda f=failure: task_state(cluster, f.id) == 'FAILURE', what='the failures')
    failed = flower_task_ids(cluster, name, 'FAILURE')
    succeeded = flower_task_ids(cluster, name, 'SUCCESS')

    open_live(page, cluster.flower.base_url + '/')
    row = page.locator(f'#workers-table tbody tr[data-worker="{name}"]')
    # The counters come with the next heartbeat.
    expect(row.locator('[data-column="failed"] a')).to_have_text(str(len(failed)),
                                                                 timeout=HEARTBEAT_MS)
    expect(row.locator('[data-column="succeeded"] a')).to_have_text(str(len(succeeded)),
                                                                    timeout=HEARTBEAT_MS)
    expect(page.locator('#summary-cards [data-card="online"]')).to_have_text('1')
    expect(page.locator('#summary-cards [data-card="failed"]')).to_have_text(str(len(failed)))
    expect(page.locator('#summary-cards [data-card="succeeded"]')).to_have_text(
        str(len(succeeded)))
    save_screenshot(page, ARTIFACTS, 'dashboard-cards')

    row.locator('[data-column="failed"] a').click()
    expect(page).to_have_url(re.compile(r'/tasks\?state=FAILURE&worker=[^&]+$'))
    expect(page.locator('select[name="state"]')).to_have_value('FAILURE')
    wait_for(lambda: uuids_in_table(page) == failed, timeout=15,
             what='the table to show the failed tasks')

    page.go_back()
    page.locator('#summary-cards [data-card-link="succeeded"]').click()
    expect(page).to_have_url(re.compile(r'/tasks\?state=SUCCESS$'))
    wait_for(lambda: uuids_in_table(page) == succeeded, timeout=15,
             what='the table to show the succeeded tasks')
    assert_no_browser_problems(page)


def test_the_updated_time_follows_the_stream_and_stands_still_when_paused(page, cluster):
    open_live(page, cluster.flower.base_url + '/')
    updated = page.locator('#live-updated')
    expect(updated).to_have_text(re.compile(r'^\d\d:\d\d:\d\d$'))
    first = updated.inner_text()
    # Heartbeats arrive every 2 s: the time moves on without a reload.
    expect(updated).not_to_have_text(first, timeout=HEARTBEAT_MS)

    page.locator('#live-toggle').uncheck()
    expect(page.locator('#live-control')).to_have_attribute('data-state', 'paused')
    paused_at = updated.inner_text()
    page.wait_for_timeout(5000)  # two heartbeats and more
    expect(updated).to_have_text(paused_at)
    page.locator('#live-toggle').check()
    expect(updated).not_to_have_text(paused_at, timeout=HEARTBEAT_MS)
    assert_no_browser_problems(page)


def test_worker_page_values_read_as_people_write_them(page, cluster):
    name = cluster.worker.hostname
    open_live(page, f'{cluster.flower.base_url}/worker/{name}')
    heard = page.locator('#worker-last-seen time')
    expect(heard).to_have_text(re.compile(r'^(just now|\d+ s ago)$'))
    expect(heard).to_have_attribute('title', re.compile(r'\d\d:\d\d:\d\d'))
    expect(page.locator('#pool-max-tasks-per-child')).to_have_text('None')

    page.locator('#tab-system').click()
    expect(page.locator('#system-uptime')).to_have_text(re.compile(r'^(\d+ s|\d+ m \d\d s)$'))
    rusage = page.locator('#rusage-table')
    expect(rusage.locator('tr[data-rusage="utime"] td').first).to_have_text('User CPU time')
    expect(rusage.locator('tr[data-rusage="utime"] td.num')).to_have_text(
        re.compile(r'^\d[\d,]*(\.\d{1,3})? s$'))
    expect(rusage.locator('tr[data-rusage="maxrss"] td.num')).to_have_text(
        re.compile(r'^\d{1,3}(,\d{3})+ KiB$'))
    page.locator('#tab-broker').click()
    expect(page.locator('#broker-info')).to_contain_text('Virtual host')
    assert '' not in page.locator('#broker-info dd').all_inner_texts()
    save_screenshot(page, ARTIFACTS, 'worker-humanized')
    assert_no_browser_problems(page)


def test_monitor_axes_have_units_and_runtime_labels_do_not_overlap(page, cluster):
    cluster.client.send_task('tasks.add', (3, 4)).get(timeout=30)
    open_live(page, cluster.flower.base_url + '/monitor')
    expect(page.locator('#graph-succeeded text.y-unit')).to_have_text('tasks per 1 min')
    expect(page.locator('#graph-runtime text.y-unit')).to_have_text('tasks')
    labels = page.locator('#graph-runtime text.bar-label')
    expect(labels).to_have_count(15)  # Prometheus' default buckets, and one above them
    boxes = labels.evaluate_all('texts => texts.map(text => { const box = text.getBoundingClientRect();'
                                ' return [box.left, box.top, box.right, box.bottom]; })')
    for index, (left, top, right, bottom) in enumerate(boxes):
        for other_left, other_top, other_right, other_bottom in boxes[index + 1:]:
            assert (right <= other_left or other_right <= left or bottom <= other_top
                    or other_bottom <= top), f'label {index} overlaps another: {boxes}'
    svg = page.locator('#graph-runtime svg').bounding_box()
    assert all(svg['y'] <= top and bottom <= svg['y'] + svg['height'] + 1
               for _, top, _, bottom in boxes), 'a label falls out of the graph'
    save_screenshot(page, ARTIFACTS, 'monitor-units')
    assert_no_browser_problems(page)


def test_the_tasks_table_has_numbered_pages(page, cluster):
    results = [cluster.client.send_task('tasks.add', (n, 0)) for n in range(21)]
    for result in results:
        result.get(timeout=30)
    wait_for(lambda: all(task_state(cluster, r.id) == 'SUCCESS' for r in results),
             what='Flower to see the tasks')
    page.goto(cluster.flower.base_url + '/tasks?state=SUCCESS')
    page.locator('#tasks-length').select_option('10')
    expect(page.locator('#tasks-info')).to_contain_text('Showing 1 to 10 of')
    pages = page.locator('#tasks-pages .page-number')
    expect(pages.first).to_have_text('1')
    count = pages.count()
    assert count >= 3
    expect(page.locator('#tasks-pages [aria-current=page]')).to_have_text('1')
    pages.last.click()
    expect(page.locator('#tasks-pages [aria-current=page]')).to_have_text(str(count))
    expect(page.locator('#tasks-info')).to_contain_text(f'Showing {(count - 1) * 10 + 1} to ')
    expect(page.locator('#tasks-next')).to_be_disabled()
    page.locator('#tasks-pages .page-number', has_text='2').click()
    expect(page.locator('#tasks-info')).to_contain_text('Showing 11 to 20 of')
    assert_no_browser_problems(page)
