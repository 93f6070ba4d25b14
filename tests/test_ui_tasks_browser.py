"""The tasks table and the task page in headless Chromium, over 200 real tasks.

One private Redis, one worker and one Flower are shared by the module. The
tasks run for real (successes, failures, retries, a chain, hostile markup)
before the first test, so every test looks at the same known history.
"""
import ast
import json
import os
import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.support.api_cluster import Cluster
from tests.support.browser import assert_no_browser_problems, save_screenshot
from tests.support.flower import FlowerServer
from tests.support.processes import EXAMPLES_DIR, REPO_DIR
from tests.support.waiting import wait_for

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'ui-tasks-browser')
CATCH_UP_MS = 30_000
SCRIPT_MARKUP = '<script>window.__xss = 1</script>'
IMG_MARKUP = '<img src=x onerror="window.__xss = 2">'


def drop_password(task):
    """A ``format_task`` hiding the ``password`` keyword argument."""
    try:
        kwargs = ast.literal_eval(task.kwargs or '{}')
    except (ValueError, SyntaxError):
        return task
    kwargs.pop('password', None)
    task.kwargs = repr(kwargs)
    return task


class History(Cluster):
    """The module's cluster and the ids of the tasks it ran."""

    def start_worker_and_flower(self):
        [self.worker] = self.start_workers({
            'name': f'ui-tasks-{uuid.uuid4().hex[:6]}@localhost', 'pool': 'threads', 'concurrency': 8})
        self.flower = self.start_flower(format_task=drop_password, unauthenticated_api=True)
        # Events sent before Flower subscribes are never seen: wait for a heartbeat first.
        self.wait_known(self.flower, self.worker)

    def run_tasks(self):
        send = self.client.send_task
        results = [send('tasks.add', (n, n)) for n in range(150)]
        results += [send('tasks.mul', (n, 3)) for n in range(24)]
        self.failures = [send('tasks.error', (f'failure {n}',)) for n in range(15)]
        self.retried = [send('tasks.retry_then_succeed') for _ in range(5)]
        self.hostile_args = send('tasks.echo', (SCRIPT_MARKUP,))
        self.hostile_error = send('tasks.error', (IMG_MARKUP,))
        self.secret = send('tasks.sleep_with_args', (0,), {'password': 'hunter2', 'user': 'bob'})
        chain = (self.client.signature('tasks.add', args=(1, 1))
                 | self.client.signature('tasks.add', args=(10,)))
        self.chain_last = chain.apply_async()
        self.chain_first = self.chain_last.parent
        for result in results + self.retried + [self.hostile_args, self.secret, self.chain_last]:
            result.get(timeout=60)
        for result in self.failures + [self.hostile_error]:
            with pytest.raises(Exception):
                result.get(timeout=60)
        self.ids = [r.id for r in results + self.failures + self.retried + [
            self.hostile_args, self.hostile_error, self.secret, self.chain_first, self.chain_last]]
        assert len(self.ids) == 199
        wait_for(lambda: not self.flower.call(self.unfinished),
                 what='every task final in Flower')

    def unfinished(self):
        tasks = self.flower.app.events.state.tasks
        return [(task_id, tasks[task_id].state if task_id in tasks else None)
                for task_id in self.ids
                if task_id not in tasks or tasks[task_id].state not in ('SUCCESS', 'FAILURE')]

    def datatable(self, **params):
        query = '&'.join(f'{key}={value}' for key, value in params.items())
        status, body = self.flower.get(f'/tasks/datatable?{query}')
        assert status == 200, body
        return json.loads(body)


@pytest.fixture(scope='module')
def history():
    with History(ARTIFACTS, worker_app='tasks', worker_dir=EXAMPLES_DIR) as cluster:
        cluster.start_worker_and_flower()
        cluster.run_tasks()
        yield cluster


def table_rows(page):
    return page.locator('#tasks-table tbody tr[data-uuid]')


def test_the_table_pages_through_every_task(page, history):
    page.goto(history.flower.base_url + '/tasks')
    expect(page.locator('#tasks-info')).to_contain_text('of 199 tasks', timeout=CATCH_UP_MS)
    page.locator('#tasks-length').select_option('100')
    expect(table_rows(page)).to_have_count(100)
    seen = set(table_rows(page).evaluate_all('rows => rows.map(r => r.dataset.uuid)'))
    page.locator('#tasks-next').click()
    expect(page.locator('#tasks-info')).to_contain_text('Showing 101 to 199 of 199')
    expect(table_rows(page)).to_have_count(99)
    seen |= set(table_rows(page).evaluate_all('rows => rows.map(r => r.dataset.uuid)'))
    assert seen == set(history.ids)
    expect(page.locator('#tasks-next')).to_be_disabled()
    save_screenshot(page, ARTIFACTS, 'tasks')
    assert_no_browser_problems(page)


def test_the_table_shows_new_tasks_without_a_reload(page, history):
    page.goto(history.flower.base_url + '/tasks')
    expect(table_rows(page)).to_have_count(25, timeout=CATCH_UP_MS)
    page.evaluate('document.body.dataset.loadedOnce = "yes"')
    fresh = history.client.send_task('tasks.add', (100, 23))
    assert fresh.get(timeout=30) == 123
    # auto_refresh (on by default) asks for the page again every few seconds.
    expect(table_rows(page).first).to_have_attribute('data-uuid', fresh.id, timeout=CATCH_UP_MS)
    assert page.evaluate('document.body.dataset.loadedOnce') == 'yes'  # the same page, not reloaded
    history.ids.append(fresh.id)
    assert_no_browser_problems(page)


def test_sorting_by_runtime_orders_the_rows(page, history):
    page.goto(history.flower.base_url + '/tasks')
    expect(table_rows(page)).to_have_count(25, timeout=CATCH_UP_MS)
    header = page.locator('#tasks-table th[data-column="runtime"]')
    header.click()
    expect(header).to_have_class('sortable sorted-asc')
    header.click()
    expect(header).to_have_class('sortable sorted-desc')
    expected = history.datatable(**{'length': 25, 'order[0][column]': 0, 'order[0][dir]': 'desc',
                                    'columns[0][data]': 'runtime'})['data']
    runtimes = [task['runtime'] for task in expected]
    assert runtimes == sorted(runtimes, reverse=True)
    expect(table_rows(page).first).to_have_attribute('data-uuid', expected[0]['uuid'])
    shown = table_rows(page).evaluate_all('rows => rows.map(r => r.dataset.uuid)')
    assert shown == [task['uuid'] for task in expected]
    assert_no_browser_problems(page)


def test_state_and_args_searches_show_exactly_the_matching_rows(page, history):
    page.goto(history.flower.base_url + '/tasks')
    page.locator('#tasks-length').select_option('100')
    page.locator('#task-search').fill('state:FAILURE')
    expect(page.locator('#tasks-info')).to_contain_text('of 16 tasks', timeout=CATCH_UP_MS)
    shown = set(table_rows(page).evaluate_all('rows => rows.map(r => r.dataset.uuid)'))
    assert shown == {r.id for r in history.failures + [history.hostile_error]}

    page.locator('#task-search').fill('args:7')
    expected = {task_id for task_id, task in history.flower.call(
        lambda: [(i, t) for i, t in history.flower.app.events.state.tasks.items()])
        if task.args and '7' in task.args}
    expect(page.locator('#tasks-info')).to_contain_text(f'of {len(expected)} tasks')
    shown = set(table_rows(page).evaluate_all('rows => rows.map(r => r.dataset.uuid)'))
    assert shown == expected and len(expected) > 10
    assert_no_browser_problems(page)


def test_a_dragged_column_stays_in_place_after_reload(page, history):
    page.goto(history.flower.base_url + '/tasks')
    headers = page.locator('#tasks-table thead th[data-column]')
    expect(headers.first).to_have_attribute('data-column', 'name')
    page.locator('#tasks-table th[data-column="worker"]').drag_to(headers.first)
    expect(headers.first).to_have_attribute('data-column', 'worker')
    expect(table_rows(page).first.locator('td[class^="column-"]').first).to_have_class('column-worker')
    page.reload()
    expect(headers.first).to_have_attribute('data-column', 'worker', timeout=CATCH_UP_MS)
    expect(headers.nth(1)).to_have_attribute('data-column', 'name')
    expect(table_rows(page).first.locator('td[class^="column-"]').first).to_have_class('column-worker')
    assert_no_browser_problems(page)


def test_the_task_page_shows_a_failure_with_its_traceback(page, history):
    failed = history.failures[0]
    page.goto(f"{history.flower.base_url}/task/{failed.id}")
    expect(page.locator('#field-state')).to_have_text('FAILURE')
    expect(page.locator('#field-exception')).to_contain_text("ValueError('failure 0')")
    traceback = page.locator('#field-traceback')
    expect(traceback).to_contain_text('Traceback (most recent call last)')
    # Shown verbatim, line breaks included.
    assert traceback.inner_text().count('\n') >= 3
    save_screenshot(page, ARTIFACTS, 'task-failure')
    assert_no_browser_problems(page)


def test_the_task_page_links_a_chain_both_ways(page, history):
    """Relatives are shown by name and state badge, with their id beside."""
    first, last = history.chain_first, history.chain_last
    page.goto(f"{history.flower.base_url}/task/{first.id}")
    child = page.locator('#field-children li')
    expect(child.locator('a')).to_have_text('tasks.add')
    expect(child.locator('a')).to_have_attribute('href', f'/task/{last.id}')
    expect(child.locator('.state')).to_have_text('SUCCESS')
    expect(child.locator('.task-ref-id')).to_have_text(last.id)
    child.locator('a').click()
    expect(page.locator('#field-uuid')).to_have_text(last.id)
    expect(page.locator('#field-result')).to_have_text('12')
    for relative in ('#field-parent_id', '#field-root_id'):
        expect(page.locator(f'{relative} a')).to_have_attribute('href', f'/task/{first.id}')
        expect(page.locator(f'{relative} .state')).to_have_text('SUCCESS')
        expect(page.locator(f'{relative} .task-ref-id')).to_have_text(first.id)
    save_screenshot(page, ARTIFACTS, 'task-chain')
    assert_no_browser_problems(page)


def test_revoke_on_a_scheduled_task_revokes_it_on_the_worker(page, history):
    # Its ETA leaves time to open the page and click on a busy machine; the worker
    # says REVOKED when the ETA comes (well within CATCH_UP_MS).
    scheduled = history.client.send_task('tasks.add', (5, 5), countdown=12)
    wait_for(lambda: history.flower.call(
        lambda: scheduled.id in history.flower.app.events.state.tasks), what='task received')
    page.on('dialog', lambda dialog: dialog.accept())
    page.goto(f"{history.flower.base_url}/task/{scheduled.id}")
    page.locator('#revoke-task').click()
    expect(page.locator('#control-reply')).to_have_text(f"Revoked '{scheduled.id}'", timeout=CATCH_UP_MS)

    revoked = history.client.control.inspect(destination=[history.worker.hostname],
                                             timeout=5).revoked()
    assert scheduled.id in revoked[history.worker.hostname]
    expect(page.locator('#field-state')).to_have_text('REVOKED', timeout=CATCH_UP_MS)
    assert history.flower.call(
        lambda: history.flower.app.events.state.tasks[scheduled.id].state) == 'REVOKED'
    assert_no_browser_problems(page)


def test_hostile_markup_is_shown_as_text_in_the_table_and_the_task_page(page, history):
    page.goto(history.flower.base_url + '/tasks')
    page.locator('#task-search').fill('xss')
    # The search's answer is in (leaving the page before it would abort it).
    expect(page.locator('#tasks-info')).to_contain_text('filtered from', timeout=CATCH_UP_MS)
    row = page.locator(f'#tasks-table tr[data-uuid="{history.hostile_args.id}"]')
    expect(row.locator('td.column-args')).to_contain_text(SCRIPT_MARKUP, timeout=CATCH_UP_MS)
    expect(row.locator('td.column-result')).to_contain_text(SCRIPT_MARKUP)
    page.goto(f"{history.flower.base_url}/task/{history.hostile_args.id}")
    expect(page.locator('#field-args')).to_contain_text(SCRIPT_MARKUP)
    expect(page.locator('#field-result')).to_contain_text(SCRIPT_MARKUP)
    page.goto(f"{history.flower.base_url}/task/{history.hostile_error.id}")
    expect(page.locator('#field-exception')).to_contain_text(IMG_MARKUP)
    expect(page.locator('#field-traceback')).to_contain_text(IMG_MARKUP)
    assert page.evaluate('window.__xss') is None
    assert page.locator('#task-fields img, #task-fields script').count() == 0
    assert_no_browser_problems(page)


def test_format_task_hides_a_kwarg_in_the_page_the_table_and_the_api(page, history, monkeypatch):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    page.goto(f"{history.flower.base_url}/task/{history.secret.id}")
    expect(page.locator('#field-kwargs')).to_have_text("{'user': 'bob'}")
    assert 'hunter2' not in page.content()
    rows = history.datatable(**{'search[value]': 'bob', 'length': 10})['data']
    assert [row['kwargs'] for row in rows] == ["{'user': 'bob'}"]
    status, body = history.flower.get(f'/api/task/info/{history.secret.id}')
    assert status == 200 and 'hunter2' not in body and "'user': 'bob'" in body
    # The monitored state itself is untouched.
    assert 'hunter2' in history.flower.call(
        lambda: history.flower.app.events.state.tasks[history.secret.id].kwargs)


def test_an_unknown_task_is_a_404_page(history):
    status, body = history.flower.get('/task/no-such-task')
    assert status == 404
    assert 'Unknown task' in body and 'no-such-task' in body


def monitor_data(history, **params):
    query = '&'.join(f'{key}={value}' for key, value in params.items())
    status, body = history.flower.get(f'/monitor/data?{query}')
    assert status == 200, body
    return json.loads(body)


def test_graphs_show_the_run_per_task_name_and_per_worker(page, history):
    outcomes = monitor_data(history)['outcomes']
    assert sum(outcomes['failed']['tasks.error']) == 16
    assert sum(outcomes['retried']['tasks.retry_then_succeed']) == 5
    assert sum(outcomes['succeeded']['tasks.mul']) == 24
    assert sum(outcomes['succeeded']['tasks.add']) >= 152
    runtime = monitor_data(history)['runtime']
    finished = history.flower.call(lambda: sum(
        1 for task in history.flower.app.events.state.tasks.values() if task.runtime is not None))
    assert sum(runtime['counts']) == finished

    page.goto(history.flower.base_url + '/monitor')
    failed = page.locator('#graph-failed')
    expect(failed.locator('.legend li[data-series]')).to_have_text(['tasks.error'],
                                                                  timeout=CATCH_UP_MS)
    values = failed.locator('g[data-series="tasks.error"] circle').evaluate_all(
        'dots => dots.map(d => Number(d.dataset.value))')
    assert sum(values) == 16
    bars = page.locator('#graph-runtime rect.bar').evaluate_all(
        'bars => bars.map(b => Number(b.dataset.count))')
    assert sum(bars) == finished
    expect(page.locator('#graph-queues svg')).to_be_visible()
    save_screenshot(page, ARTIFACTS, 'monitor')

    page.locator('#monitor-group-by').select_option('worker')
    expect(page.locator('#graph-succeeded .legend li')).to_have_text([history.worker.hostname])
    assert_no_browser_problems(page)


def test_graph_labels_carrying_markup_are_text(page, history):
    now = time.time()
    name = '<img src=x onerror="window.__xss = 3">'
    for kind, extra in (('task-received', {'name': name, 'args': '()', 'kwargs': '{}'}),
                        ('task-succeeded', {'result': '1', 'runtime': 0.01})):
        history.flower.app.events.on_event(dict(
            extra, type=kind, uuid='hostile-label', hostname=history.worker.hostname,
            timestamp=now, local_received=now, clock=1))
    wait_for(lambda: history.flower.call(lambda: getattr(
        history.flower.app.events.state.tasks.get('hostile-label'), 'state', None) == 'SUCCESS'),
        what='the synthetic task applied')
    page.goto(history.flower.base_url + '/monitor')
    legend = page.locator('#graph-succeeded .legend')
    expect(legend).to_contain_text(name, timeout=CATCH_UP_MS)
    assert page.locator('#monitor-graphs img').count() == 0
    assert page.evaluate('window.__xss') is None
    assert_no_browser_problems(page)


@pytest.mark.parametrize('path, message', [
    ('/tasks/datatable?length=0', "'length' between 1 and 1000"),
    ('/tasks/datatable?start=-1', "'start' must be >= 0"),
    ('/tasks/datatable?start=abc', "Invalid value for argument 'start'"),
    ('/tasks/datatable?order[0][column]=0&columns[0][data]=nonsense', 'Cannot sort by column 0'),
    ('/tasks/datatable?order[0][column]=0&columns[0][data]=name&order[0][dir]=up',
     "'order[0][dir]'"),
    ('/tasks/datatable?received_start=yesterday', "Invalid value for argument 'received_start'"),
    ('/monitor/data?window=7', "'window' must be one of"),
    ('/monitor/data?window=abc', "Invalid value for argument 'window'"),
    ('/monitor/data?group_by=queue', "'group_by' must be one of"),
    ('/monitor/data?parts=all', "'parts' must be 'queues'"),
])
def test_the_pages_json_answers_bad_parameters_with_a_json_400(history, path, message):
    status, body = history.flower.get(path)
    assert status == 400
    assert message in json.loads(body)['error']


def test_tasks_task_and_monitor_pages_work_under_a_url_prefix(page, history):
    prefixed = FlowerServer(history.url, url_prefix='flower', unauthenticated_api=True).start()
    try:
        history.wait_known(prefixed, history.worker)
        base = prefixed.base_url + '/flower'
        # This Flower started after the run: it learns of tasks from new events only.
        done = history.client.send_task('tasks.add', (20, 22))
        assert done.get(timeout=30) == 42
        wait_for(lambda: prefixed.call(
            lambda: getattr(prefixed.app.events.state.tasks.get(done.id), 'state', None))
            == 'SUCCESS', what='the new task seen by the prefixed Flower')
        page.goto(base + '/tasks')
        row = page.locator(f'#tasks-table tr[data-uuid="{done.id}"]')
        expect(row).to_be_visible(timeout=CATCH_UP_MS)
        row.locator('td.column-uuid a').click()
        expect(page).to_have_url(f'{base}/task/{done.id}')
        expect(page.locator('#field-result')).to_have_text('42')
        page.locator('nav a', has_text='Monitor').click()
        expect(page).to_have_url(base + '/monitor')
        expect(page.locator('#graph-succeeded .legend li[data-series="tasks.add"]')).to_be_visible()
        assert_no_browser_problems(page)
    finally:
        prefixed.stop()
