"""The workers dashboard in a real headless Chromium, against real workers and a real Flower."""
import re

from playwright.sync_api import expect

from tests.support.browser import assert_no_browser_problems, reload_until, save_screenshot

#: How long a reload loop waits for the server side to catch up (events, inspect).
CATCH_UP = 30.0
#: Per-attempt wait of ``expect`` inside a reload loop, in ms.
ATTEMPT_MS = 500

# Column positions (1-based) of the dashboard table.
PROCESSED, SUCCEEDED, LOAD_AVERAGE = 4, 6, 8


def worker_row(page, hostname):
    return page.locator(f'#workers-table tbody tr[data-worker="{hostname}"]')


def totals_cell(page, column):
    return page.locator(f'#workers-table tfoot tr.totals td:nth-child({column})')


def static_assets(page):
    """Absolute URLs of the page's stylesheet, scripts and icon, as the browser resolved them."""
    return page.evaluate("""() => ({
        css: [...document.querySelectorAll('link[rel=stylesheet]')].map(link => link.href),
        js: [...document.querySelectorAll('script[src]')].map(script => script.src),
        icon: [...document.querySelectorAll('link[rel~=icon]')].map(link => link.href),
    })""")


def assert_static_assets_load(page, static_prefix):
    """CSS and JS were loaded by the page; the icon is fetched by the page (headless skips it)."""
    assets = static_assets(page)
    assert assets['css'] and assets['js'] and assets['icon'], assets
    for url in assets['css'] + assets['js'] + assets['icon']:
        assert url.startswith(static_prefix), f"{url} is not under {static_prefix}"
    for url in assets['css'] + assets['js']:
        assert page.responses.get(url) == 200, f"{url} not loaded: {page.responses.get(url)}"
    for url in assets['icon']:
        status = page.evaluate(
            "async url => { const response = await fetch(url); await response.text();"
            " return response.status; }", url)
        assert status == 200, f"{url} -> HTTP {status}"


def test_dashboard_lists_workers_and_counts_tasks(
        page, broker_url, worker_factory, celery_client, flower_factory, artifacts_dir):
    workers = [worker_factory(broker_url), worker_factory(broker_url)]
    flower = flower_factory(broker_url)

    page.goto(flower.base_url + '/')
    expect(page).to_have_title(re.compile('Flower'))
    for worker in workers:
        reload_until(page, lambda w=worker: expect(worker_row(page, w.hostname)).to_be_visible(
            timeout=ATTEMPT_MS), timeout=CATCH_UP)
    for worker in workers:
        row = worker_row(page, worker.hostname)
        expect(row.locator('td.worker-name')).to_have_text(worker.hostname)
        expect(row.locator('span.status')).to_have_text('Online')
        expect(row.locator('span.status')).to_have_class(re.compile(r'\bonline\b'))

    client = celery_client(broker_url)
    results = [client.send_task('tasks.add', (2, n)) for n in range(3)]
    assert [result.get(timeout=30) for result in results] == [2, 3, 4]

    reload_until(page, lambda: (
        expect(totals_cell(page, PROCESSED)).to_have_text('3', timeout=ATTEMPT_MS),
        expect(totals_cell(page, SUCCEEDED)).to_have_text('3', timeout=ATTEMPT_MS),
    ), timeout=CATCH_UP)
    expect(page.locator('#workers-table tbody tr[data-worker]')).to_have_count(2)

    assert_static_assets_load(page, flower.base_url + '/static/')
    save_screenshot(page, artifacts_dir, 'dashboard')
    assert_no_browser_problems(page)


def test_dashboard_under_url_prefix(page, broker_url, worker_factory, flower_factory):
    worker = worker_factory(broker_url)
    flower = flower_factory(broker_url, url_prefix='flower')

    page.goto(flower.base_url + '/flower/')
    reload_until(page, lambda: expect(worker_row(page, worker.hostname)).to_be_visible(
        timeout=ATTEMPT_MS), timeout=CATCH_UP)
    expect(worker_row(page, worker.hostname).locator('span.status')).to_have_text('Online')

    navbar_background = page.locator('nav.navbar').evaluate(
        "element => getComputedStyle(element).backgroundColor")
    assert navbar_background not in ('', 'transparent', 'rgba(0, 0, 0, 0)'), \
        f"the stylesheet is not applied (navbar background {navbar_background!r})"
    expect(page.locator('nav.navbar a.brand')).to_have_attribute('href', '/flower/')
    assert_static_assets_load(page, flower.base_url + '/flower/static/')
    assert_no_browser_problems(page)

    response = page.goto(flower.base_url + '/flower')
    expect(page).to_have_url(flower.base_url + '/flower/')
    assert response.status == 200
    assert response.request.redirected_from is not None
    assert response.request.redirected_from.url == flower.base_url + '/flower'
    expect(worker_row(page, worker.hostname)).to_be_visible()
    assert_no_browser_problems(page)


def test_unknown_url_shows_the_404_page(page, broker_url, flower_factory):
    flower = flower_factory(broker_url)
    missing = flower.base_url + '/no/such/page'

    response = page.goto(missing)
    assert response.status == 404
    expect(page.locator('main h1')).to_have_text('404')
    expect(page.locator('nav.navbar')).to_be_visible()
    assert_static_assets_load(page, flower.base_url + '/static/')
    # The document's own 404 is the point of the test; nothing else may fail.
    assert_no_browser_problems(page, allow_failed=[missing])


def test_stopped_worker_goes_offline(page, broker_url, worker_factory, flower_factory):
    worker = worker_factory(broker_url)
    flower = flower_factory(broker_url)
    row = worker_row(page, worker.hostname)
    status = row.locator('span.status')

    page.goto(flower.base_url + '/')
    # The load average comes from heartbeat events only: once it shows, Flower
    # receives the worker's events and will get its worker-offline too (an
    # "Online" alone may come from the inspect reply at start-up).
    reload_until(page, lambda: expect(row.locator(f'td:nth-child({LOAD_AVERAGE})')).to_have_text(
        re.compile(r'\d'), timeout=ATTEMPT_MS), timeout=CATCH_UP)
    expect(status).to_have_text('Online')

    worker.stop()
    reload_until(page, lambda: expect(status).to_have_text('Offline', timeout=ATTEMPT_MS),
                 timeout=CATCH_UP)
    expect(status).to_have_class(re.compile(r'\boffline\b'))
    assert_no_browser_problems(page)
