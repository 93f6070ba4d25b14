"""Retry and the bulk actions in headless Chromium, driving a real worker on a private Redis.

The confirm dialogs are answered (and their text checked) by the test; what
the buttons did is checked through Celery: the new task's result, the
worker's list of revoked tasks.
"""
import os
import uuid

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.support.api_cluster import Cluster
from tests.support.browser import accept_dialogs, assert_no_browser_problems, save_screenshot
from tests.support.processes import EXAMPLES_DIR, REPO_DIR
from tests.support.waiting import wait_for

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'ui-retry-browser')
CATCH_UP_MS = 30_000


@pytest.fixture(scope='module')
def cluster():
    with Cluster(ARTIFACTS, worker_app='tasks', worker_dir=EXAMPLES_DIR) as cluster:
        [cluster.worker] = cluster.start_workers(
            {'name': f'ui-retry-{uuid.uuid4().hex[:6]}@localhost', 'concurrency': 2})
        cluster.flower = cluster.start_flower(unauthenticated_api=True)
        cluster.read_only = cluster.start_flower(unauthenticated_api=True, read_only=True)
        cluster.wait_known(cluster.flower, cluster.worker)
        cluster.wait_known(cluster.read_only, cluster.worker)
        yield cluster



def flower_state(flower, task_id):
    return flower.call(lambda: getattr(flower.app.events.state.tasks.get(task_id), 'state', None))


def failed_task(cluster, message):
    result = cluster.client.send_task('tasks.error', (message,))
    for flower in (cluster.flower, cluster.read_only):
        wait_for(lambda: flower_state(flower, result.id) == 'FAILURE',
                 what='Flower to see the failure')
    return result.id


def revoked(cluster):
    replies = cluster.client.control.inspect(destination=[cluster.worker.hostname],
                                             timeout=5).revoked()
    return set((replies or {}).get(cluster.worker.hostname) or ())


def test_retry_on_the_task_page_sends_the_task_again_and_links_both_ways(page, cluster):
    original = failed_task(cluster, 'retry me')
    page.goto(f'{cluster.flower.base_url}/task/{original}')
    dialogs = accept_dialogs(page)

    page.locator('#retry-task').click()

    reply = page.locator('#control-reply')
    expect(reply).to_contain_text('Retried as', timeout=CATCH_UP_MS)
    assert dialogs == [f'Retry task {original}? A new task is sent with its name, arguments '
                       'and queue.']
    new_id = reply.locator('a.reply-link').text_content()
    retried = cluster.client.AsyncResult(new_id)
    wait_for(lambda: retried.state == 'FAILURE', what='the retry to run')
    assert str(retried.result) == 'retry me'
    expect(page.locator('#field-retried-as a')).to_have_text(new_id, timeout=CATCH_UP_MS)
    reply.locator('a.reply-link').click()
    expect(page.locator('#field-retry-of a')).to_have_text(original)
    save_screenshot(page, ARTIFACTS, 'retried')
    assert_no_browser_problems(page)


def test_a_failed_row_of_the_table_has_its_own_retry_button(page, cluster):
    original = failed_task(cluster, 'row retry')
    page.goto(f'{cluster.flower.base_url}/tasks')
    page.locator('#task-search').fill('args:"row retry"')
    row = page.locator(f'#tasks-table tr[data-uuid="{original}"]')
    dialogs = accept_dialogs(page)

    row.locator('button.row-retry').click(timeout=CATCH_UP_MS)

    link = page.locator('#control-reply a.reply-link')
    expect(link).to_be_visible(timeout=CATCH_UP_MS)
    assert dialogs[0].startswith(f'Retry task {original}?')
    assert cluster.flower.call(lambda: cluster.flower.app.retry_links.retries_of(original)) == [
        link.text_content()]
    assert_no_browser_problems(page)


def test_select_all_matching_and_revoke_after_a_confirm_showing_the_count(page, cluster):
    tag = uuid.uuid4().hex[:8]
    picked = [cluster.client.send_task('tasks.echo', (f'{tag}-pick-{n}',), countdown=3600).id
              for n in range(30)]
    kept = cluster.client.send_task('tasks.echo', (f'{tag}-keep',), countdown=3600).id
    wait_for(lambda: all(flower_state(cluster.flower, task_id) == 'RECEIVED'
                         for task_id in picked + [kept]), what='the tasks to be received')
    try:
        page.goto(f'{cluster.flower.base_url}/tasks')
        page.locator('#task-search').fill(f'args:{tag}-pick')
        expect(page.locator('#tasks-info')).to_contain_text('of 30 tasks', timeout=CATCH_UP_MS)
        rows = page.locator('#tasks-table tbody tr[data-uuid]')
        expect(rows).to_have_count(25)
        rows.first.locator('input.select-row').check()
        expect(page.locator('#bulk-selection')).to_have_text('1 task selected')
        page.locator('#tasks-table thead input.select-page').check()
        expect(page.locator('#bulk-selection')).to_have_text('25 tasks selected')
        page.locator('#bulk-select-matching').click()
        expect(page.locator('#bulk-selection')).to_have_text(
            'All 30 tasks matching the filters selected')
        dialogs = accept_dialogs(page)

        page.locator('#bulk-revoke').click()

        expect(page.locator('#control-reply')).to_have_text('Revoked 30 tasks.',
                                                            timeout=CATCH_UP_MS)
        assert dialogs == ['Revoke all 30 tasks matching the filters?']
        on_worker = revoked(cluster)
        assert set(picked) <= on_worker and kept not in on_worker
        expect(page.locator('#bulk-selection')).to_have_text('No task selected')
        save_screenshot(page, ARTIFACTS, 'bulk-revoked')
        assert_no_browser_problems(page)
    finally:
        cluster.client.control.revoke(picked + [kept])


def test_a_refused_confirm_does_nothing(page, cluster):
    original = failed_task(cluster, 'not retried')
    page.goto(f'{cluster.flower.base_url}/task/{original}')
    page.on('dialog', lambda dialog: dialog.dismiss())

    page.locator('#retry-task').click()

    expect(page.locator('#field-state')).to_have_text('FAILURE')
    assert cluster.flower.call(lambda: cluster.flower.app.retry_links.retries_of(original)) == []
    expect(page.locator('#control-reply')).to_be_hidden()


def tick(box):
    """Check ``box``. The table is drawn anew by each answer (the search's, a live
    update's): a click landing on rows just replaced is lost, so tick again."""
    for attempt in range(10):
        try:
            box.check(timeout=CATCH_UP_MS)
            return
        except PlaywrightError as error:
            if 'did not change its state' not in str(error) or attempt == 9:
                raise


def test_read_only_disables_retry_and_the_bulk_actions(page, cluster):
    original = failed_task(cluster, 'read only')
    page.goto(f'{cluster.read_only.base_url}/task/{original}')
    expect(page.locator('#retry-task')).to_be_disabled()

    page.goto(f'{cluster.read_only.base_url}/tasks')
    page.locator('#task-search').fill('args:"read only"')
    row = page.locator(f'#tasks-table tr[data-uuid="{original}"]')
    tick(row.locator('input.select-row'))
    expect(page.locator('#bulk-selection')).to_have_text('1 task selected')
    for name in ('revoke', 'terminate', 'retry'):
        expect(page.locator(f'#bulk-{name}')).to_be_disabled()
    expect(row.locator('button.row-retry')).to_be_disabled()
