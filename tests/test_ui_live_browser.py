"""The tasks table follows the change stream in headless Chromium, without reloading.

One private Redis, one worker and a Flower with ``--auto_refresh=false`` (so no
polling could be what brings a row) are shared by the module; each test sends
its own tasks and looks for them by id.
"""
import os
import uuid

import pytest
from playwright.sync_api import expect

from tests.support.api_cluster import Cluster
from tests.support.browser import assert_no_browser_problems
from tests.support.processes import EXAMPLES_DIR, REPO_DIR

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'ui-live-browser')


@pytest.fixture(scope='module')
def live():
    with Cluster(ARTIFACTS, worker_app='tasks', worker_dir=EXAMPLES_DIR) as cluster:
        [cluster.worker] = cluster.start_workers({
            'name': f'ui-live-{uuid.uuid4().hex[:6]}@localhost', 'pool': 'threads',
            'concurrency': 4})
        cluster.flower = cluster.start_flower(auto_refresh=False)
        cluster.wait_known(cluster.flower, cluster.worker)
        yield cluster


def row(page, task_id):
    return page.locator(f'#tasks-table tbody tr[data-uuid="{task_id}"]')


def open_tasks_page(page, flower):
    """The tasks page, loaded once; ``window.loadedOnce`` would be gone after a reload."""
    page.goto(flower.base_url + '/tasks')
    expect(page.locator('#tasks-info')).to_contain_text('Showing')
    page.evaluate('window.loadedOnce = true')


def wait_streaming(page):
    """Changes made from now on reach the page: its stream is open."""
    expect(page.locator('#tasks-table')).to_have_attribute('data-live', 'open')
    expect(page.locator('#tasks-live-state')).to_have_text('live')


def run(live, name, *args):
    result = live.client.send_task(name, args)
    result.get(timeout=30)
    return result.id


def test_a_new_task_appears_at_the_top_and_changes_in_place_without_reloading(page, live):
    open_tasks_page(page, live.flower)
    wait_streaming(page)
    task_id = run(live, 'tasks.add', 2, 3)
    expect(row(page, task_id)).to_be_visible()
    expect(page.locator('#tasks-table tbody tr').first).to_have_attribute('data-uuid', task_id)
    expect(row(page, task_id).locator('.column-state')).to_have_text('SUCCESS')
    assert page.evaluate('window.loadedOnce') is True
    assert_no_browser_problems(page)


def test_paused_the_table_stays_and_a_notice_counts_the_new_tasks(page, live):
    open_tasks_page(page, live.flower)
    page.locator('#tasks-live input').uncheck()
    wait_streaming(page)
    first, second = run(live, 'tasks.add', 1, 1), run(live, 'tasks.add', 2, 2)
    expect(page.locator('#tasks-new')).to_have_text('2 new tasks: show')
    expect(row(page, first)).to_have_count(0)
    page.locator('#tasks-new').click()
    expect(row(page, first)).to_be_visible()
    expect(row(page, second)).to_be_visible()
    expect(page.locator('#tasks-new')).to_be_hidden()
    assert page.evaluate('window.loadedOnce') is True


def test_rows_do_not_move_under_the_pointer_of_a_reader(page, live):
    open_tasks_page(page, live.flower)
    wait_streaming(page)
    page.locator('#tasks-table').hover()
    task_id = run(live, 'tasks.mul', 3, 4)
    expect(page.locator('#tasks-new')).to_have_text('1 new task: show')
    expect(row(page, task_id)).to_have_count(0)
    page.mouse.move(0, 0)
    expect(row(page, task_id)).to_be_visible()


def test_only_tasks_matching_the_filters_are_announced(page, live):
    run(live, 'tasks.mul', 1, 5)  # the task-name filter lists the names Flower has seen
    open_tasks_page(page, live.flower)
    page.locator('select[name="taskname"]').select_option('tasks.mul')
    expect(page.locator('#tasks-info')).to_contain_text('filtered from')
    page.locator('#tasks-live input').uncheck()
    wait_streaming(page)
    run(live, 'tasks.add', 5, 5)
    wanted = run(live, 'tasks.mul', 5, 5)
    expect(page.locator('#tasks-new')).to_have_text('1 new task: show')
    page.locator('#tasks-new').click()
    expect(row(page, wanted)).to_be_visible()


def test_without_event_source_the_table_polls(page, live):
    flower = live.start_flower(auto_refresh=True)
    page.add_init_script('delete window.EventSource')
    open_tasks_page(page, flower)
    expect(page.locator('#tasks-live')).to_be_hidden()
    task_id = run(live, 'tasks.add', 7, 7)
    expect(row(page, task_id)).to_be_visible(timeout=15_000)
    assert page.evaluate('window.loadedOnce') is True
