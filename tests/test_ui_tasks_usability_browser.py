"""The tasks table and the task page for daily use, in headless Chromium: absolute
times, the table's view in the URL, search feedback, the keyboard, copy buttons and
a task's relatives.

One private Redis, one worker and one Flower are shared by the module; the tasks
(additions, failures, a task retried twice, a chain) run before the first test.
"""
import datetime
import os
import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.support.api_cluster import Cluster
from tests.support.browser import assert_no_browser_problems
from tests.support.processes import EXAMPLES_DIR, REPO_DIR
from tests.support.waiting import wait_for

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'ui-tasks-usability-browser')
CATCH_UP_MS = 30_000
ADDITIONS = 30
RELATIVE = re.compile(r'^(now|in \d+ seconds?|\d+ (seconds?|minutes?) ago)$')


@pytest.fixture(scope='module')
def tasks():
    with Cluster(ARTIFACTS, worker_app='tasks', worker_dir=EXAMPLES_DIR) as cluster:
        [cluster.worker] = cluster.start_workers({
            'name': f'ui-usability-{uuid.uuid4().hex[:6]}@localhost', 'pool': 'threads',
            'concurrency': 4})
        cluster.flower = cluster.start_flower(unauthenticated_api=True)
        cluster.wait_known(cluster.flower, cluster.worker)
        send = cluster.client.send_task
        additions = [send('tasks.add', (n, 100)) for n in range(ADDITIONS)]
        cluster.failure = send('tasks.error', ('broken <b>on purpose</b>',))
        cluster.retried = send('tasks.retry_then_succeed')
        cluster.chain = (cluster.client.signature('tasks.add', args=(1, 1))
                         | cluster.client.signature('tasks.add', args=(10,))).apply_async()
        for result in additions + [cluster.retried, cluster.chain]:
            result.get(timeout=60)
        with pytest.raises(Exception):
            cluster.failure.get(timeout=60)
        ids = [r.id for r in additions + [cluster.failure, cluster.retried, cluster.chain,
                                          cluster.chain.parent]]
        states = cluster.flower.app.events.state.tasks
        wait_for(lambda: cluster.flower.call(lambda: all(
            task_id in states and states[task_id].state in ('SUCCESS', 'FAILURE') for task_id in ids)),
            what='every task final in Flower')
        yield cluster


def row_ids(page):
    return page.locator('#tasks-table tbody tr[data-uuid]').evaluate_all(
        'rows => rows.map(row => row.dataset.uuid)')


def in_tokyo(page):
    cdp = page.context.new_cdp_session(page)
    cdp.send('Emulation.setTimezoneOverride', {'timezoneId': 'Asia/Tokyo'})
    cdp.send('Emulation.setLocaleOverride', {'locale': 'en-US'})


def test_times_are_absolute_with_their_zone_never_cut_and_a_task_shows_its_step_durations(page, tasks):
    in_tokyo(page)
    page.set_viewport_size({'width': 1400, 'height': 900})
    page.goto(f'{tasks.flower.base_url}/tasks')
    received = page.locator('#tasks-table tbody tr[data-uuid] td.column-received time').first
    moment = datetime.datetime.fromtimestamp(float(received.get_attribute('data-timestamp')),
                                             datetime.timezone(datetime.timedelta(hours=9)))
    expect(received).to_have_text(moment.strftime('%Y-%m-%d %H:%M:%S GMT+9'), timeout=CATCH_UP_MS)
    expect(received).to_have_attribute('title', RELATIVE)
    assert received.evaluate('time => time.parentElement.hasAttribute("title")') is False
    cut = page.locator('#tasks-table tbody td.column-received, #tasks-table tbody td.column-started') \
        .evaluate_all('cells => cells.filter(cell => cell.scrollWidth > cell.clientWidth).length')
    assert cut == 0

    page.goto(f'{tasks.flower.base_url}/task/{tasks.retried.id}')
    steps = page.locator('#field-timeline li')
    expect(steps.locator('.step')).to_have_text(['sent', 'received', 'started', 'finished'])
    expect(steps.nth(0).locator('.gap')).to_have_count(0)
    for index in (1, 2, 3):
        expect(steps.nth(index).locator('.gap')).to_have_text(re.compile(r'^\+[\d.]+ (ms|s)$'))
    assert_no_browser_problems(page)


def test_every_filter_search_sort_page_and_size_survive_a_reload_and_a_shared_link(page, tasks):
    base = tasks.flower.base_url
    page.goto(f'{base}/tasks')
    expect(page.locator('#tasks-info')).to_contain_text(' tasks', timeout=CATCH_UP_MS)
    # The default sort is shown: newest first, as received descending.
    expect(page.locator('#tasks-table th[data-column="received"]')).to_have_attribute('aria-sort', 'descending')
    expect(page.locator('#tasks-table th[data-column="runtime"]')).to_have_attribute('aria-sort', 'none')

    hour_ago = (datetime.datetime.now() - datetime.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M')
    in_an_hour = (datetime.datetime.now() + datetime.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M')
    chosen = {
        '#task-search': 'args:100', 'select[name="state"]': 'SUCCESS',
        'select[name="worker"]': tasks.worker.hostname, 'select[name="taskname"]': 'tasks.add',
        'input[name="received_start"]': hour_ago, 'input[name="received_end"]': in_an_hour,
        'input[name="started_start"]': hour_ago, 'input[name="started_end"]': in_an_hour,
    }
    for selector, value in chosen.items():
        field = page.locator(selector)
        if selector.startswith('select'):
            field.select_option(value)
        else:
            field.fill(value)
    expect(page.locator('#tasks-info')).to_contain_text(f'of {ADDITIONS} tasks', timeout=CATCH_UP_MS)
    page.locator('#tasks-table th[data-column="runtime"] button').click()
    page.locator('#tasks-table th[data-column="runtime"] button').click()
    page.locator('#tasks-length').select_option('10')
    # Besides the additions: a failure, a retried task and a chain of two.
    expect(page.locator('#tasks-info')).to_have_text(f'Showing 1 to 10 of {ADDITIONS} tasks (filtered from '
                                                     f'{ADDITIONS + 4})', timeout=CATCH_UP_MS)
    page.locator('#tasks-next').click()
    info = page.locator('#tasks-info')
    expect(info).to_contain_text(f'Showing 11 to 20 of {ADDITIONS}')
    shown = row_ids(page)
    assert len(shown) == 10

    url = page.url
    query = dict(re.findall(r'[?&]([^=&]+)=([^&]*)', url))
    assert query['sort'] == '-runtime' and query['page'] == '2' and query['length'] == '10'
    assert query['state'] == 'SUCCESS' and query['taskname'] == 'tasks.add'

    def assert_restored(restored):
        for selector, value in chosen.items():
            expect(restored.locator(selector)).to_have_value(value)
        expect(restored.locator('#tasks-length')).to_have_value('10')
        header = restored.locator('#tasks-table th[data-column="runtime"]')
        expect(header).to_have_attribute('aria-sort', 'descending')
        expect(restored.locator('#tasks-table th[data-column="received"]')).to_have_attribute('aria-sort', 'none')
        expect(restored.locator('#tasks-info')).to_contain_text(f'Showing 11 to 20 of {ADDITIONS}',
                                                                timeout=CATCH_UP_MS)
        assert row_ids(restored) == shown
        assert restored.url == url

    page.reload()
    assert_restored(page)
    shared = page.context.new_page()
    shared.goto(url)
    assert_restored(shared)
    assert_no_browser_problems(page)


def test_the_search_box_says_what_it_could_not_read_and_links_the_syntax(page, tasks):
    page.goto(f'{tasks.flower.base_url}/tasks')
    feedback = page.locator('#search-feedback')
    expect(page.locator('#tasks-info')).to_contain_text(' tasks', timeout=CATCH_UP_MS)
    expect(feedback).to_be_hidden()
    page.locator('#task-search').fill('state:FAILURE result:')
    expect(feedback).to_have_text(re.compile(r"'result:' has no value after the colon: ignored"))
    expect(page.locator('#tasks-info')).to_contain_text('of 1 tasks')
    feedback.locator('a.search-help-link').click()
    expect(page.locator('#search-help')).to_have_attribute('open', '')
    expect(page.locator('#search-help')).to_contain_text('kwargs:user=bob')
    page.locator('#column-menu summary').click()
    page.set_viewport_size({'width': 360, 'height': 740})
    for box in ('#search-help', '#column-menu', '#search-feedback'):
        assert page.locator(box).evaluate('box => box.getBoundingClientRect().right <= innerWidth'), box
    page.set_viewport_size({'width': 1280, 'height': 800})

    page.locator('#task-search').fill('args:"never closed')
    expect(feedback).to_contain_text('the quote at character 6 is never closed')
    expect(feedback).to_have_class(re.compile(r'\berror\b'))
    status, _ = tasks.flower.get('/api/tasks?search=args:%22never')
    assert status == 400

    page.locator('#task-search').fill('nothing-has-this-zzz')
    expect(page.locator('#tasks-table tbody tr.empty')).to_have_text('No tasks match the filters and search.')
    expect(feedback).to_be_hidden()
    # The malformed search's own requests failed, as they should: nothing else.
    assert_no_browser_problems(page, allow_failed=[
        failed.url for failed in page.failed_requests if 'never+closed' in failed.url])

    empty = tasks.start_flower(unauthenticated_api=True)
    page.goto(f'{empty.base_url}/tasks')
    expect(page.locator('#tasks-table tbody tr.empty')).to_contain_text('No tasks received yet')
    expect(page.locator('#tasks-table tbody tr.empty')).to_contain_text('-E')


def test_sorting_tabs_skip_link_and_column_menu_work_from_the_keyboard(page, tasks):
    base = tasks.flower.base_url
    page.goto(f'{base}/tasks')
    page.keyboard.press('Tab')
    expect(page.locator('.skip-link')).to_be_focused()
    page.keyboard.press('Enter')
    expect(page.locator('main#content')).to_be_focused()

    runtime = page.locator('#tasks-table th[data-column="runtime"]')
    runtime.locator('button').focus()
    page.keyboard.press('Enter')
    expect(runtime).to_have_attribute('aria-sort', 'ascending')
    expect(runtime).to_have_class('sortable sorted-asc')
    page.keyboard.press('Space')
    expect(runtime).to_have_attribute('aria-sort', 'descending')
    expect(runtime.locator('button')).to_be_focused()
    assert '-runtime' in page.url

    menu = page.locator('#column-menu')
    menu.locator('summary').focus()
    page.keyboard.press('Enter')
    expect(menu).to_have_attribute('open', '')
    worker_up = menu.locator('li[data-column="worker"] button[data-move="-1"]')
    worker_up.focus()
    headers = page.locator('#tasks-table thead th[data-column]')
    before = headers.evaluate_all('ths => ths.map(th => th.dataset.column)')
    page.keyboard.press('Enter')
    page.keyboard.press('Enter')
    moved = list(before)
    moved.remove('worker')
    moved.insert(before.index('worker') - 2, 'worker')
    expect(headers).to_have_count(len(before))
    assert headers.evaluate_all('ths => ths.map(th => th.dataset.column)') == moved
    menu.locator('li[data-column="uuid"] input').focus()
    page.keyboard.press('Space')
    expect(page.locator('#tasks-table th[data-column="uuid"]')).to_have_count(0)
    expect(page.locator('#tasks-table tbody td.column-uuid')).to_have_count(0)
    page.reload()
    expect(page.locator('#tasks-table th[data-column="uuid"]')).to_have_count(0)
    assert headers.evaluate_all('ths => ths.map(th => th.dataset.column)') == \
        [name for name in moved if name != 'uuid']

    page.goto(f'{base}/worker/{tasks.worker.hostname}')
    tabs = page.locator('[role="tablist"] [role="tab"]')
    tabs.first.focus()
    page.keyboard.press('ArrowRight')
    expect(tabs.nth(1)).to_be_focused()
    expect(tabs.nth(1)).to_have_attribute('aria-selected', 'true')
    expect(page.locator(f"#{tabs.nth(1).get_attribute('aria-controls')}")).to_be_visible()
    page.keyboard.press('End')
    expect(tabs.last).to_have_attribute('aria-selected', 'true')
    page.keyboard.press('ArrowRight')
    expect(tabs.first).to_have_attribute('aria-selected', 'true')
    expect(tabs.first).to_have_attribute('tabindex', '0')
    expect(tabs.nth(1)).to_have_attribute('tabindex', '-1')
    assert_no_browser_problems(page)


def copied(page, button):
    page.locator(button).click()
    expect(page.locator(button)).to_have_text('Copied')
    return page.evaluate('navigator.clipboard.readText()')


def test_copy_buttons_put_the_id_args_result_and_traceback_on_the_clipboard(page, tasks):
    base = tasks.flower.base_url
    page.context.grant_permissions(['clipboard-read', 'clipboard-write'], origin=base)
    page.goto(f'{base}/task/{tasks.chain.id}')
    assert copied(page, 'button[data-copy="#field-uuid"]') == tasks.chain.id
    assert copied(page, 'button[data-copy="#field-args"]') == '(2, 10)'
    assert copied(page, 'button[data-copy="#field-result"]') == '12'
    page.goto(f'{base}/task/{tasks.failure.id}')
    traceback = copied(page, 'button[data-copy="#field-traceback"]')
    assert traceback.startswith('Traceback') and 'broken <b>on purpose</b>' in traceback
    assert traceback == page.locator('#field-traceback').text_content()
    assert_no_browser_problems(page)


def test_a_retried_task_is_not_its_own_relative_and_its_old_error_is_labelled(page, tasks):
    task_id = tasks.retried.id
    known = tasks.flower.call(lambda: tasks.flower.app.events.state.tasks[task_id])
    # Celery sends the retry from within the task: the task names itself as its parent.
    assert known.parent_id == task_id and known.state == 'SUCCESS' and known.exception
    page.goto(f'{tasks.flower.base_url}/task/{task_id}')
    expect(page.locator('#field-state')).to_have_text('SUCCESS')
    expect(page.locator(f'#task-fields a[href="/task/{task_id}"]')).to_have_count(0)
    expect(page.locator('#field-parent_id')).to_have_count(0)
    expect(page.locator('#field-exception')).to_contain_text('Retry')
    label = page.locator('#task-table tr', has=page.locator('#field-exception')).locator('th')
    expect(label).to_have_text("Last retry's error")
    assert_no_browser_problems(page)
