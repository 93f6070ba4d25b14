"""The broker page in headless Chromium, against a real Redis broker holding real messages."""
import json
import os
import uuid

import celery
import pytest
from kombu import Queue
from playwright.sync_api import expect

from tests.support.browser import assert_no_browser_problems, save_screenshot
from tests.support.flower import FlowerServer
from tests.support.processes import REPO_DIR, RedisServer, celery_client, free_port

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'ui-broker-browser')
CATCH_UP_MS = 30_000
BACKLOG = 'ui-backlog'
#: A queue whose name is markup: it must be shown as text.
MARKUP_QUEUE = '<img src=x onerror="window.injected = 1">'
#: Redis 6+ accepts any password for its default user when it has none, so
#: a broker URL can carry a password the page must not show.
PASSWORD = 'sekrit-' + uuid.uuid4().hex[:6]


@pytest.fixture(scope='module')
def redis():
    os.makedirs(ARTIFACTS, exist_ok=True)
    server = RedisServer(dir=ARTIFACTS)
    server.start()
    yield server
    server.stop()


def monitored_app(broker_url):
    """The Celery app Flower watches: a password in its URL, three configured queues."""
    app = celery.Celery('ui-broker', broker=broker_url)
    app.conf.task_queues = [Queue('celery'), Queue(BACKLOG), Queue(MARKUP_QUEUE)]
    return app


@pytest.fixture(scope='module')
def flower(redis):
    broker_url = f'redis://default:{PASSWORD}@127.0.0.1:{redis.port}/0'
    server = FlowerServer(broker_url, capp=monitored_app(broker_url))
    server.start()
    yield server
    server.stop()


def publish(redis, queue, count):
    client = celery_client(redis.url)
    try:
        for n in range(count):
            client.send_task('tasks.add', (n, n), queue=queue, ignore_result=True)
    finally:
        client.close()


def queue_row(page, name):
    return page.locator('#broker-queues-table tbody tr').filter(
        has=page.get_by_text(name, exact=True))


def test_broker_page_shows_queues_now_and_over_time(page, redis, flower):
    publish(redis, BACKLOG, 3)
    publish(redis, MARKUP_QUEUE, 1)
    flower.run_coroutine(flower.app.sample_queues)

    page.goto(flower.base_url + '/broker')
    expect(page.locator('#broker-url')).to_have_text(f'redis://default:****@127.0.0.1:{redis.port}/0')
    assert PASSWORD not in page.content()
    expect(queue_row(page, BACKLOG).locator('.messages')).to_have_text('3')
    expect(queue_row(page, MARKUP_QUEUE).locator('.messages')).to_have_text('1')
    expect(queue_row(page, 'celery').locator('.messages')).to_have_text('0')

    graph = page.locator('#queue-graph')
    expect(graph.locator('.legend li[data-queue]')).to_have_text(sorted(['celery', MARKUP_QUEUE, BACKLOG]))
    expect(graph.locator(f'g[data-queue="{BACKLOG}"] circle').last).to_have_attribute(
        'data-value', '3')
    expect(graph.locator('text.y-max')).to_have_text('3')

    # More messages: the table and the graph follow without a reload.
    page.evaluate('window.notReloaded = true')
    publish(redis, BACKLOG, 2)
    flower.run_coroutine(flower.app.sample_queues)
    expect(queue_row(page, BACKLOG).locator('.messages')).to_have_text('5', timeout=CATCH_UP_MS)
    expect(graph.locator(f'g[data-queue="{BACKLOG}"] circle').last).to_have_attribute(
        'data-value', '5', timeout=CATCH_UP_MS)
    expect(graph.locator(f'g[data-queue="{BACKLOG}"] polyline')).to_have_count(1)
    assert page.evaluate('window.notReloaded') is True

    assert page.locator('main img').count() == 0
    assert page.evaluate('window.injected') is None
    expect(page.locator('nav a.active')).to_have_text('Broker')
    save_screenshot(page, ARTIFACTS, 'broker')
    assert_no_browser_problems(page)


def test_broker_json_gives_the_numbers_and_the_history(flower, redis):
    status, body = flower.get('/broker?json=1')
    assert status == 200
    answer = json.loads(body)
    assert answer['broker_url'] == f'redis://default:****@127.0.0.1:{redis.port}/0'
    assert answer['error'] is None
    assert {queue['name'] for queue in answer['queues']} == {'celery', BACKLOG, MARKUP_QUEUE}
    history = answer['history']
    assert history['timestamps'] and set(history['queues']) == {'celery', BACKLOG, MARKUP_QUEUE}
    assert all(len(values) == len(history['timestamps']) for values in history['queues'].values())
    assert PASSWORD not in body


def test_broker_page_under_a_url_prefix(page, redis):
    broker_url = redis.url
    with FlowerServer(broker_url, capp=monitored_app(broker_url), url_prefix='flower') as flower:
        page.goto(flower.base_url + '/flower/')
        page.locator('nav a', has_text='Broker').click()
        expect(page).to_have_url(flower.base_url + '/flower/broker')
        expect(queue_row(page, BACKLOG)).to_be_visible()
        expect(page.locator('#queue-graph .legend li[data-queue]')).to_have_count(3)
        assert page.responses.get(flower.base_url + '/flower/broker?json=1') == 200
        assert_no_browser_problems(page)


def test_unreachable_broker_is_reported_on_the_page(page):
    broker_url = f'redis://127.0.0.1:{free_port()}/0'
    with FlowerServer(broker_url, capp=monitored_app(broker_url)) as flower:
        response = page.goto(flower.base_url + '/broker')
        assert response.status == 200
        expect(page.locator('#queues-error')).to_contain_text('Cannot query Redis')
        expect(page.locator('#queue-graph svg')).to_be_visible()
        save_screenshot(page, ARTIFACTS, 'broker-unreachable')
        assert_no_browser_problems(page)
