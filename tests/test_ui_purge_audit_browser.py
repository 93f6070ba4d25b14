"""The broker page's Purge button and the ``/audit`` page in headless Chromium,
against a real Redis holding real messages (priority sub-queues included)."""
import os
import re

import celery
import pytest
import redis as redis_client
from kombu import Queue
from playwright.sync_api import expect

from flower.views import audit as audit_view
from tests.support.browser import assert_no_browser_problems, save_screenshot
from tests.support.flower import FlowerServer
from tests.support.processes import REPO_DIR, RedisServer, celery_client

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'ui-purge-audit-browser')
CATCH_UP_MS = 30_000
BACKLOG = 'ui-purge-backlog'
#: A queue whose name is markup: the page, the dialog and the audit trail show it as text.
MARKUP_QUEUE = '<img src=x onerror="window.injected = 1">'


@pytest.fixture(scope='module')
def redis():
    os.makedirs(ARTIFACTS, exist_ok=True)
    server = RedisServer(dir=ARTIFACTS)
    server.start()
    yield server
    server.stop()


def monitored_app(broker_url):
    app = celery.Celery('ui-purge', broker=broker_url)
    app.conf.task_queues = [Queue('celery'), Queue(BACKLOG), Queue(MARKUP_QUEUE)]
    return app


@pytest.fixture(scope='module')
def flower(redis):
    # No authentication: the buttons have to be opened on purpose.
    with FlowerServer(redis.url, capp=monitored_app(redis.url), unauthenticated_api=True) as server:
        yield server


def publish(redis, queue, priorities):
    client = celery_client(redis.url)
    try:
        for priority in priorities:
            client.send_task('tasks.add', (1, 1), queue=queue, priority=priority,
                             ignore_result=True)
    finally:
        client.close()


def waiting(redis, queue):
    """Messages in the queue's lists, priority sub-queues included."""
    client = redis_client.Redis(port=redis.port)
    try:
        return sum(client.llen(key) for key in client.keys(f'{queue}*'))
    finally:
        client.close()


def queue_row(page, name):
    return page.locator('#broker-queues-table tbody tr').filter(
        has=page.get_by_text(name, exact=True))


def test_purge_asks_for_the_queue_name_and_then_empties_the_queue(page, redis, flower):
    publish(redis, BACKLOG, [None, 3, 9])
    page.goto(flower.base_url + '/broker')
    row = queue_row(page, BACKLOG)
    expect(row.locator('.messages')).to_have_text('3')
    dialog = page.locator('#purge-dialog')
    confirm = dialog.get_by_role('button', name='Purge queue')

    # Cancel changes nothing.
    row.get_by_role('button', name='Purge').click()
    expect(dialog).to_be_visible()
    expect(dialog.locator('.queue-name')).to_have_text(BACKLOG)
    expect(confirm).to_be_disabled()
    page.locator('#purge-name').fill(BACKLOG[:-1])
    expect(confirm).to_be_disabled()
    page.locator('#purge-name').fill(BACKLOG + ' ')
    expect(confirm).to_be_disabled()
    dialog.get_by_role('button', name='Cancel').click()
    expect(dialog).to_be_hidden()
    assert waiting(redis, BACKLOG) == 3

    # The name typed again from scratch: only the exact name enables the button.
    row.get_by_role('button', name='Purge').click()
    expect(page.locator('#purge-name')).to_have_value('')
    expect(confirm).to_be_disabled()
    page.locator('#purge-name').fill(BACKLOG)
    expect(confirm).to_be_enabled()
    confirm.click()

    expect(page.locator('#control-reply')).to_have_text(
        f"Purged 3 messages from queue '{BACKLOG}'", timeout=CATCH_UP_MS)
    expect(page.locator('#control-reply')).to_have_class(re.compile(r'\bok\b'))
    expect(dialog).to_be_hidden()
    expect(queue_row(page, BACKLOG).locator('.messages')).to_have_text('0')
    assert waiting(redis, BACKLOG) == 0
    save_screenshot(page, ARTIFACTS, 'purged')
    assert_no_browser_problems(page)


def test_a_queue_named_with_markup_is_purged_and_shown_as_text(page, redis, flower):
    publish(redis, MARKUP_QUEUE, [None])
    page.goto(flower.base_url + '/broker')
    queue_row(page, MARKUP_QUEUE).get_by_role('button', name='Purge').click()
    expect(page.locator('#purge-dialog .queue-name')).to_have_text(MARKUP_QUEUE)
    page.locator('#purge-name').fill(MARKUP_QUEUE)
    page.locator('#purge-dialog').get_by_role('button', name='Purge queue').click()

    expect(page.locator('#control-reply')).to_have_text(
        f"Purged 1 message from queue '{MARKUP_QUEUE}'", timeout=CATCH_UP_MS)
    assert waiting(redis, MARKUP_QUEUE) == 0

    page.locator('nav a', has_text='Audit').click()
    expect(page.locator('nav a.active')).to_have_text('Audit')
    newest = page.locator('#audit-table tbody tr').first
    expect(newest.locator('.action')).to_have_text('queue.purge')
    expect(newest.locator('.targets')).to_have_text(MARKUP_QUEUE)
    expect(newest.locator('.user')).to_have_text('anonymous')
    expect(newest.locator('.status')).to_have_text('200')
    expect(newest.locator('.outcome')).to_contain_text('purged: 1')
    assert page.locator('main img').count() == 0
    assert page.evaluate('window.injected') is None
    assert_no_browser_problems(page)


def post_purge(page, queue):
    """POST the broker page's purge form for ``queue`` from the page; the answer's status."""
    return page.evaluate("""async url => {
        const form = new FormData(document.querySelector('#purge-form'));
        const response = await fetch(url, {method: 'POST', body: new URLSearchParams(form)});
        return response.status;
    }""", '/control/queues/purge/' + queue)


def test_the_audit_page_pages_newest_first_and_filters(page, redis, monkeypatch):
    monkeypatch.setattr(audit_view, 'PAGE_SIZE', 2)
    with FlowerServer(redis.url, capp=monitored_app(redis.url),
                      unauthenticated_api=True) as flower:
        page.goto(flower.base_url + '/broker')
        assert post_purge(page, BACKLOG) == 200
        assert [post_purge(page, 'nowhere') for _ in range(2)] == [404, 404]

        page.goto(flower.base_url + '/audit')
        rows = page.locator('#audit-table tbody tr')
        expect(rows).to_have_count(2)
        expect(rows.locator('.targets')).to_have_text(['nowhere', 'nowhere'])
        expect(rows.locator('.status')).to_have_text(['404', '404'])
        expect(rows.first.locator('.outcome')).to_contain_text("Unknown queue 'nowhere'")
        expect(page.locator('#audit-pager')).to_contain_text('1–2 of 3')
        expect(page.locator('#audit-pager a[rel=prev]')).to_have_count(0)
        expect(page.locator('#audit-pager .page-number')).to_have_text(['1', '2'])
        expect(page.locator('#audit-pager [aria-current=page]')).to_have_text('1')

        page.locator('#audit-pager a[rel=next]').click()
        expect(rows.locator('.targets')).to_have_text([BACKLOG])
        expect(rows.locator('.status')).to_have_text(['200'])
        expect(page.locator('#audit-pager')).to_contain_text('3–3 of 3')
        expect(page.locator('#audit-pager [aria-current=page]')).to_have_text('2')
        expect(page.locator('#audit-pager a[rel=next]')).to_have_count(0)
        page.locator('#audit-pager a[rel=prev]').click()
        expect(page.locator('#audit-pager')).to_contain_text('1–2 of 3')

        rows.first.locator('.user a').click()
        expect(page.locator('#audit-filters')).to_contain_text('user anonymous')
        page.goto(flower.base_url + '/audit?action=task.revoke')
        expect(rows).to_have_text(['No action recorded yet.'])
        assert_no_browser_problems(
            page, allow_failed=[flower.base_url + '/control/queues/purge/nowhere'])


def test_read_only_disables_the_purge_buttons(page, redis):
    with FlowerServer(redis.url, capp=monitored_app(redis.url), read_only=True,
                      unauthenticated_api=True) as flower:
        page.goto(flower.base_url + '/broker')
        expect(page.locator('.alert-info')).to_contain_text('read-only')
        buttons = page.locator('#broker-queues-table button.purge')
        expect(buttons).to_have_count(3)
        for index in range(3):
            expect(buttons.nth(index)).to_be_disabled()
        # A purge posted anyway is refused, and the refusal recorded.
        publish(redis, BACKLOG, [None])
        assert post_purge(page, BACKLOG) == 403
        assert waiting(redis, BACKLOG) == 1
        page.goto(flower.base_url + '/audit')
        expect(page.locator('#audit-table tbody tr .status')).to_have_text(['403'])
        expect(page.locator('#audit-table tbody tr .outcome')).to_contain_text(['read-only'])
        assert_no_browser_problems(
            page, allow_failed=[f'{flower.base_url}/control/queues/purge/{BACKLOG}'])
