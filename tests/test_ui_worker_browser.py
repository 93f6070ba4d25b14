"""The dashboard and the worker page in headless Chromium, driving real workers.

One private Redis, two workers and a few Flowers (plain, under a URL prefix,
read-only, purging offline workers) are shared by the whole module; every
control is checked on the worker itself, through Celery's own ``inspect``.
"""
import datetime
import os
import re
import uuid
import zoneinfo

import pytest
import requests
from playwright.sync_api import expect

from tests.support.api_cluster import Cluster
from tests.support.browser import accept_dialogs, assert_no_browser_problems, save_screenshot
from tests.support.flower import FlowerServer
from tests.support.processes import EXAMPLES_DIR, REPO_DIR
from tests.support.waiting import wait_for

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'ui-worker-browser')
#: How long the server side may take to catch up (events, inspect), in ms.
CATCH_UP_MS = 30_000
TAB_NAMES = ('pool', 'broker', 'queues', 'tasks', 'limits', 'config', 'system')


class UiCluster(Cluster):
    """The module's Redis, workers, Celery client and Flowers."""

    def worker(self, prefix, **spec):
        """A ready worker named ``<prefix>-<random>@localhost``."""
        [worker] = self.start_workers({'name': f'{prefix}-{uuid.uuid4().hex[:6]}@localhost', **spec})
        return worker

    def start_flower(self, capp=None, **options):
        # No authentication here: the controls have to be opened on purpose.
        options.setdefault('unauthenticated_api', True)
        options.setdefault('inspect_timeout', 1000)  # Flower's default: refreshes wait for it
        return super().start_flower(capp, **options)


@pytest.fixture(scope='module')
def cluster():
    with UiCluster(ARTIFACTS, worker_app='tasks', worker_dir=EXAMPLES_DIR) as cluster:
        cluster.main = cluster.worker('ui-main', concurrency=2, queues=['celery', 'ui-main'])
        cluster.other = cluster.worker('ui-other', concurrency=1)
        cluster.flower = cluster.start_flower()
        yield cluster


def worker_url(flower, worker, prefix=''):
    return f"{flower.base_url}{prefix}/worker/{worker.hostname}"


def open_tab(page, name):
    page.locator(f'.tabs [data-tab="{name}"]').click()
    expect(page.locator(f'#panel-{name}')).to_be_visible()



def control_reply(page):
    return page.locator('#control-reply')


def test_worker_page_shows_the_live_worker_in_every_tab(page, cluster):
    worker = cluster.main
    client = cluster.client
    assert [client.send_task('tasks.add', (1, n)).get(timeout=30) for n in range(2)] == [1, 2]

    page.goto(worker_url(cluster.flower, worker))
    expect(page.locator('#worker-name')).to_have_text(worker.hostname)
    expect(page.locator('#worker-status .status')).to_have_text('Online')

    stats = cluster.inspect(worker, 'stats')
    expect(page.locator('#pool-max-concurrency')).to_have_text(
        str(stats['pool']['max-concurrency']))
    expect(page.locator('#pool-processes')).to_contain_text(str(stats['pool']['processes'][0]))
    save_screenshot(page, ARTIFACTS, 'worker-pool')

    open_tab(page, 'broker')
    expect(page.locator('#broker-info')).to_contain_text('127.0.0.1')
    expect(page.locator('#broker-info')).to_contain_text(str(cluster.redis.port))
    save_screenshot(page, ARTIFACTS, 'worker-broker')

    open_tab(page, 'queues')
    expect(page.locator('#queues-table tr[data-queue="celery"]')).to_be_visible()
    save_screenshot(page, ARTIFACTS, 'worker-queues')

    open_tab(page, 'tasks')
    processed = page.locator('#processed-table tbody tr', has_text='tasks.add')
    expect(processed.locator('td.num')).to_have_text(str(stats['total']['tasks.add']))
    save_screenshot(page, ARTIFACTS, 'worker-tasks')

    open_tab(page, 'limits')
    expect(page.locator('#limits-table tr[data-task-name="tasks.add"]')).to_be_visible()
    save_screenshot(page, ARTIFACTS, 'worker-limits')

    open_tab(page, 'config')
    expect(page.locator('#config-table tr[data-setting="worker_pool_restarts"] .setting-value')
           ).to_have_text('True')
    save_screenshot(page, ARTIFACTS, 'worker-config')

    open_tab(page, 'system')
    expect(page.locator('#system-pid')).to_have_text(str(stats['pid']))
    expect(page.locator('#system-prefetch-count')).to_have_text(str(stats['prefetch_count']))
    save_screenshot(page, ARTIFACTS, 'worker-system')

    # The tab is kept in the address, so a reload comes back to it.
    page.reload()
    expect(page.locator('#panel-system')).to_be_visible()
    expect(page.locator('#panel-pool')).to_be_hidden()
    assert_no_browser_problems(page)


def test_grow_on_the_pool_tab_grows_the_real_pool(page, cluster):
    worker = cluster.main
    before = len(cluster.inspect(worker, 'stats')['pool']['processes'])

    page.goto(worker_url(cluster.flower, worker))
    expect(page.locator('#pool-processes')).to_be_visible()
    page.locator('#pool-grow input[name=n]').fill('2')
    page.locator('#pool-grow button').click()

    expect(control_reply(page)).to_have_text(f"Growing '{worker.hostname}' worker's pool by 2")
    expect(control_reply(page)).to_have_class(re.compile(r'\bok\b'))
    pool = wait_for(lambda: (lambda p: p if len(p['processes']) == before + 2 else None)(
        cluster.inspect(worker, 'stats')['pool']), what='the pool to grow')
    # The page refreshed itself after the command: the new size is shown, without a reload.
    expect(page.locator('#pool-processes')).to_have_text(', '.join(map(str, pool['processes'])),
                                                           timeout=CATCH_UP_MS)
    expect(page.locator('#pool-max-concurrency')).to_have_text(str(pool['max-concurrency']))

    accept_dialogs(page)
    page.locator('#pool-shrink input[name=n]').fill('2')
    page.locator('#pool-shrink button').click()
    expect(control_reply(page)).to_have_text(f"Shrinking '{worker.hostname}' worker's pool by 2")
    wait_for(lambda: len(cluster.inspect(worker, 'stats')['pool']['processes']) == before,
             what='the pool to shrink back')
    assert_no_browser_problems(page)


def test_add_consumer_makes_the_worker_consume_the_queue(page, cluster):
    worker = cluster.other
    queue = f'ui-extra-{uuid.uuid4().hex[:6]}'
    page.goto(worker_url(cluster.flower, worker) + '#queues')
    expect(page.locator('#panel-queues')).to_be_visible()

    page.locator('#add-consumer input[name=queue]').fill(queue)
    page.locator('#add-consumer button').click()
    expect(control_reply(page)).to_have_text(f"add consumer {queue}")
    expect(page.locator(f'#queues-table tr[data-queue="{queue}"]')).to_be_visible()
    assert queue in [q['name'] for q in cluster.inspect(worker, 'active_queues')]
    # The worker now takes tasks from that queue.
    result = cluster.client.send_task('tasks.mul', (6, 7), queue=queue)
    assert result.get(timeout=30) == 42

    messages = accept_dialogs(page)
    page.locator(f'#queues-table tr[data-queue="{queue}"] button').click()
    expect(control_reply(page)).to_have_text(f"no longer consuming from {queue}")
    expect(page.locator(f'#queues-table tr[data-queue="{queue}"]')).to_have_count(0)
    assert messages and queue in messages[0]
    assert queue not in [q['name'] for q in cluster.inspect(worker, 'active_queues')]
    assert_no_browser_problems(page)


def test_limits_tab_sets_rate_and_time_limits_on_the_worker(page, cluster):
    worker = cluster.other
    page.goto(worker_url(cluster.flower, worker) + '#limits')
    row = page.locator('#limits-table tr[data-task-name="tasks.mul"]')

    row.locator('form.rate-limit input[name=ratelimit]').fill('7/m')
    row.locator('form.rate-limit button').click()
    expect(control_reply(page)).to_have_text('new rate limit set successfully')
    assert 'tasks.mul [rate_limit=7/m]' in cluster.inspect(worker, 'registered')
    expect(row.locator('.current-rate-limit')).to_have_text('7/m')

    row.locator('form.time-limit input[name=soft]').fill('30')
    row.locator('form.time-limit input[name=hard]').fill('60')
    row.locator('form.time-limit button').click()
    expect(control_reply(page)).to_have_text('time limits set successfully')
    registered = cluster.inspect(worker, 'registered', 'soft_time_limit', 'time_limit')
    assert 'tasks.mul [soft_time_limit=30.0 time_limit=60.0]' in registered

    # A bad value is refused with the reason, and nothing reaches the worker.
    row.locator('form.rate-limit input[name=ratelimit]').fill('fast')
    row.locator('form.rate-limit button').click()
    expect(control_reply(page)).to_contain_text("Invalid value for argument 'ratelimit'")
    expect(control_reply(page)).to_have_class(re.compile(r'\berror\b'))
    assert 'tasks.mul [rate_limit=7/m]' in cluster.inspect(worker, 'registered')
    rate_limit_url = cluster.flower.base_url + '/control/task/rate-limit/tasks.mul'
    assert_no_browser_problems(page, allow_failed=[rate_limit_url])


def test_task_arguments_carrying_markup_are_shown_as_text(page, cluster):
    worker = cluster.main
    markup = '<script>window.injected = 1</script>'
    result = cluster.client.send_task('tasks.sleep_with_args', (4, markup),
                                      {'note': '<img src=x onerror="window.injected = 2">'},
                                      queue='ui-main')
    wait_for(lambda: any(task['id'] == result.id for task in cluster.inspect(worker, 'active')),
             what='the task to run')

    page.goto(worker_url(cluster.flower, worker) + '#tasks')
    active = page.locator(f'#active-table tr[data-task="{result.id}"]')
    expect(active.locator('.task-args')).to_contain_text(markup)
    expect(active.locator('.task-kwargs')).to_contain_text('<img src=x onerror=')
    expect(active.locator('a')).to_have_attribute('href', f'/task/{result.id}')
    assert page.locator('#panel-tasks script, #panel-tasks img').count() == 0
    assert page.evaluate('window.injected') is None
    save_screenshot(page, ARTIFACTS, 'worker-tasks-active')
    assert_no_browser_problems(page)
    assert result.get(timeout=30) == 4


def test_dashboard_filters_and_refreshes_itself(page, cluster):
    page.goto(cluster.flower.base_url + '/')
    rows = page.locator('#workers-table tbody tr[data-worker]')
    main_row = page.locator(f'tr[data-worker="{cluster.main.hostname}"]')
    other_row = page.locator(f'tr[data-worker="{cluster.other.hostname}"]')
    expect(main_row).to_be_visible()
    expect(other_row).to_be_visible()

    page.locator('#worker-filter').fill('ui-other')
    expect(main_row).to_be_hidden()
    expect(other_row).to_be_visible()
    page.locator('#worker-filter').fill('no-such-worker')
    expect(rows.filter(has=page.locator('td'))).to_have_count(2)
    expect(page.locator('.filtered-out-note')).to_be_visible()
    page.locator('#worker-filter').fill('')
    expect(main_row).to_be_visible()

    # New tasks show up without a page load (a reload would drop this marker).
    page.evaluate('window.notReloaded = true')
    page.locator('#worker-filter').fill('ui-main')
    processed = page.locator('#workers-table tfoot td:nth-child(4)')
    before = int(processed.inner_text())
    cluster.client.send_task('tasks.add', (1, 1)).get(timeout=30)
    wait_for(lambda: int(processed.inner_text()) > before, what='the dashboard to refresh')
    assert page.evaluate('window.notReloaded') is True
    # The filter still applies to the refreshed rows.
    expect(other_row).to_be_hidden()
    expect(main_row.locator('td.worker-name a')).to_have_attribute(
        'href', f'/worker/{cluster.main.hostname.replace("@", "%40")}')
    save_screenshot(page, ARTIFACTS, 'dashboard')
    assert_no_browser_problems(page)


def metrics_mention(flower, hostname):
    status, body = flower.get('/metrics')
    assert status == 200
    return f'worker="{hostname}"' in body


def test_autoscale_then_shutdown_and_the_worker_goes_offline_then_is_purged(page, cluster):
    victim = cluster.worker('ui-victim', concurrency=1, extra_args=['--autoscale=2,1'])
    with FlowerServer(cluster.url, purge_offline_workers=2, unauthenticated_api=True) as purging:
        wait_for(lambda: metrics_mention(purging, victim.hostname),
                 what="the purging Flower to hear from the worker")
        page.goto(worker_url(cluster.flower, victim))
        expect(page.locator('#worker-status .status')).to_have_text('Online')
        expect(page.locator('#pool-autoscaler')).to_contain_text('min 1, max 2')

        page.locator('#pool-autoscale input[name=min]').fill('2')
        page.locator('#pool-autoscale input[name=max]').fill('4')
        page.locator('#pool-autoscale button').click()
        expect(control_reply(page)).to_have_text(
            f"Autoscaling '{victim.hostname}' worker (min=2, max=4)")
        autoscaler = cluster.inspect(victim, 'stats')['autoscaler']
        assert (autoscaler['min'], autoscaler['max']) == (2, 4)
        expect(page.locator('#pool-autoscaler')).to_contain_text('min 2, max 4')

        messages = accept_dialogs(page)
        page.locator('form.shutdown button').click()
        expect(control_reply(page)).to_have_text('Shutting down!')
        assert messages and victim.hostname in messages[0]
        wait_for(lambda: victim.process.poll() is not None, what='the worker to exit')

        page.goto(cluster.flower.base_url + '/workers')
        row = page.locator(f'tr[data-worker="{victim.hostname}"]')
        expect(row.locator('.status')).to_have_text('Offline', timeout=CATCH_UP_MS)
        expect(row.locator('.status')).to_have_class(re.compile(r'\boffline\b'))
        save_screenshot(page, ARTIFACTS, 'dashboard-offline')
        assert_no_browser_problems(page)

        # The Flower with --purge_offline_workers forgets it, its metrics too, and a page
        # opened since does not list it (an open one drops its row: test_ui_live_pages_browser).
        wait_for(lambda: not metrics_mention(purging, victim.hostname), timeout=CATCH_UP_MS / 1000,
                 what="the purging Flower to forget the worker")
        assert metrics_mention(purging, cluster.main.hostname)
        purged_page = page.context.new_page()
        purged_page.goto(purging.base_url + '/')
        expect(purged_page.locator(f'tr[data-worker="{cluster.main.hostname}"]')).to_be_visible()
        expect(purged_page.locator(f'tr[data-worker="{victim.hostname}"]')).to_have_count(0)
    # Still listed, as offline, where purging is off.
    assert cluster.flower.get('/workers?json=1')[1].count(victim.hostname) == 1


def test_unknown_worker_is_a_404_page(page, cluster):
    missing = cluster.flower.base_url + '/worker/nobody@nowhere'
    response = page.goto(missing)
    assert response.status == 404
    expect(page.locator('main h1')).to_have_text('404')
    expect(page.locator('main .error-message')).to_have_text("Unknown worker 'nobody@nowhere'")
    save_screenshot(page, ARTIFACTS, 'worker-404')
    assert_no_browser_problems(page, allow_failed=[missing])


def prefixed_links(page):
    """Every URL the page links to, loads or posts to, as written in the document
    (links within the page, such as the skip link, aside)."""
    return page.evaluate("""() => [
        ...[...document.querySelectorAll('a[href]:not([href^="#"]), link[href]')]
            .map(e => e.getAttribute('href')),
        ...[...document.querySelectorAll('script[src]')].map(e => e.getAttribute('src')),
        ...[...document.querySelectorAll('form[action]')].map(e => e.getAttribute('action')),
    ]""")


def test_pages_and_controls_work_under_a_url_prefix(page, cluster):
    worker = cluster.other
    with FlowerServer(cluster.url, url_prefix='flower', unauthenticated_api=True) as flower:
        page.goto(flower.base_url + '/flower/')
        link = page.locator(f'tr[data-worker="{worker.hostname}"] td.worker-name a')
        expect(link).to_be_visible(timeout=CATCH_UP_MS)
        links = prefixed_links(page)
        assert links and all(url.startswith('/flower/') for url in links), links
        link.click()
        expect(page).to_have_url(re.compile(re.escape(flower.base_url + '/flower/worker/')))
        expect(page.locator('#worker-name')).to_have_text(worker.hostname)
        links = prefixed_links(page)
        assert any('/control/' in url for url in links)
        assert all(url.startswith('/flower/') for url in links if not url.startswith('#')), links

        before = len(cluster.inspect(worker, 'stats')['pool']['processes'])
        page.locator('#pool-grow button').click()
        expect(control_reply(page)).to_have_text(f"Growing '{worker.hostname}' worker's pool by 1")
        wait_for(lambda: len(cluster.inspect(worker, 'stats')['pool']['processes']) == before + 1,
                 what='the pool to grow')
        accept_dialogs(page)
        page.locator('#pool-shrink button').click()
        expect(control_reply(page)).to_have_text(f"Shrinking '{worker.hostname}' worker's pool by 1")
        wait_for(lambda: len(cluster.inspect(worker, 'stats')['pool']['processes']) == before,
                 what='the pool to shrink')
        save_screenshot(page, ARTIFACTS, 'worker-under-prefix')
        assert_no_browser_problems(page)


def test_read_only_mode_disables_every_control(page, cluster):
    with FlowerServer(cluster.url, read_only=True, unauthenticated_api=True) as flower:
        page.goto(worker_url(flower, cluster.main))
        expect(page.locator('.alert-info')).to_contain_text('read-only')
        buttons = page.locator('form.control button')
        assert buttons.count() > 5
        for index in range(buttons.count()):
            expect(buttons.nth(index)).to_be_disabled()
        # A POST sent anyway is refused.
        status = page.evaluate("""async url => {
            const form = new FormData(document.querySelector('#pool-grow'));
            const response = await fetch(url, {method: 'POST', body: new URLSearchParams(form)});
            return [response.status, (await response.json()).error];
        }""", f"/control/worker/pool/grow/{cluster.main.hostname}")
        assert status[0] == 403 and 'read-only' in status[1]
        grow_url = f"{flower.base_url}/control/worker/pool/grow/{cluster.main.hostname}"
        assert_no_browser_problems(page, allow_failed=[grow_url])


def test_control_posts_need_the_xsrf_token_and_page_credentials(cluster):
    with FlowerServer(cluster.url, basic_auth=['alice:secret']) as flower:
        session = requests.Session()
        page_url = worker_url(flower, cluster.main)
        assert session.get(page_url, timeout=30).status_code == 401
        response = session.get(page_url, auth=('alice', 'secret'), timeout=30)
        assert response.status_code == 200
        token = session.cookies['_xsrf']
        grow = f"{flower.base_url}/control/worker/pool/restart/{cluster.main.hostname}"

        refused = session.post(grow, auth=('alice', 'secret'), timeout=30)
        assert refused.status_code == 403
        anonymous = session.post(grow, data={'_xsrf': token}, timeout=30)
        assert anonymous.status_code == 401
        assert anonymous.json() == {'error': 'Authentication required'}
        accepted = session.post(grow, data={'_xsrf': token}, auth=('alice', 'secret'), timeout=30)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {'message': f"Restarting '{cluster.main.hostname}' worker's pool"}


@pytest.mark.parametrize('natural_time', [True, False], ids=['natural', 'absolute'])
def test_times_are_shown_in_the_browser_time_zone(page, cluster, natural_time):
    cdp = page.context.new_cdp_session(page)
    cdp.send('Emulation.setTimezoneOverride', {'timezoneId': 'Asia/Tokyo'})
    cdp.send('Emulation.setLocaleOverride', {'locale': 'en-US'})
    with FlowerServer(cluster.url, natural_time=natural_time, unauthenticated_api=True) as flower:
        cluster.wait_known(flower, cluster.main)  # its events are followed from here on
        done = cluster.client.send_task('tasks.add', (1, 1), queue='ui-main')
        done.get(timeout=30)
        wait_for(lambda: flower.call(lambda: done.id in flower.app.events.state.tasks),
                 what='Flower to know the task')
        page.goto(f'{flower.base_url}/task/{done.id}')
        shown = page.locator('#field-received time')
        moment = datetime.datetime.fromtimestamp(
            float(shown.get_attribute('data-timestamp')), zoneinfo.ZoneInfo('Asia/Tokyo'))
        in_tokyo = moment.strftime('%Y-%m-%d %H:%M:%S GMT+9')
        relative = re.compile(r'^(now|\d+ seconds? ago)$')
        if natural_time:
            expect(shown).to_have_attribute('title', in_tokyo)
            expect(shown).to_have_text(relative)
        else:
            expect(shown).to_have_text(in_tokyo)
            expect(shown).to_have_attribute('title', relative)
        # When flower last heard from a worker reads "just now" either way, the date in its title.
        page.goto(worker_url(flower, cluster.main))
        heard = page.locator('#worker-status time')
        expect(heard).to_have_text(re.compile(r'^(just now|\d+ s ago)$'))
        expect(heard).to_have_attribute(
            'title', re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\+9$'))
        assert_no_browser_problems(page)


def test_tasks_tab_lists_scheduled_tasks_and_revoked_ones(page, cluster):
    worker = cluster.main
    result = cluster.client.send_task('tasks.add', (2, 2), countdown=120, queue='ui-main',
                                      ignore_result=True)
    wait_for(lambda: any(entry['request']['id'] == result.id
                         for entry in cluster.inspect(worker, 'scheduled')),
             what='the task to be scheduled')

    page.goto(worker_url(cluster.flower, worker) + '#tasks')
    scheduled = page.locator(f'#scheduled-table tr[data-task="{result.id}"]')
    expect(scheduled).to_contain_text('tasks.add')
    expect(scheduled.locator('time')).to_have_attribute('datetime', re.compile(r'^\d{4}-'))

    # The page's twin of the API's revoke, as the task page's buttons use it.
    answer = page.evaluate("""async url => {
        const token = document.querySelector('input[name=_xsrf]').value;
        const response = await fetch(url, {method: 'POST', body: new URLSearchParams({_xsrf: token})});
        return [response.status, await response.json()];
    }""", f"/control/task/revoke/{result.id}")
    assert answer == [200, {'message': f"Revoked '{result.id}'"}]
    assert result.id in cluster.inspect(worker, 'revoked')

    page.reload()
    expect(page.locator('#revoked-list')).to_contain_text(result.id)
    expect(page.locator(f'#revoked-list a[href="/task/{result.id}"]')).to_be_visible()
    assert_no_browser_problems(page)


def test_without_auto_refresh_pages_change_only_when_reloaded(page, cluster):
    with FlowerServer(cluster.url, auto_refresh=False, unauthenticated_api=True) as flower:
        fetched = []
        page.on('request', lambda request: fetched.append(request.url))
        page.clock.install()  # the page's timers run when the test moves its clock
        for path in ('/', worker_url(flower, cluster.main)[len(flower.base_url):]):
            fetched.clear()
            page.goto(flower.base_url + path)
            page.clock.run_for(7_000)  # longer than the refresh interval
            page.wait_for_load_state('networkidle')
            assert fetched.count(flower.base_url + path) == 1, fetched
        assert_no_browser_problems(page)
