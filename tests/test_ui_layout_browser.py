"""Issue 17, items 1 and 6: every page fits a phone, and both colour themes are readable.

One private Redis, one worker (the examples' tasks) and one Flower are shared by
the module; the tasks below ran before the first test, so every page has real
data to lay out: a long unbroken argument, a failure with its traceback, a retried
task, a chain (for the workflow page) and an audit record.
"""
import os
import urllib.parse
import uuid

import pytest
import requests
from playwright.sync_api import expect

from tests.support.api_cluster import Cluster
from tests.support.browser import assert_no_browser_problems, save_screenshot
from tests.support.processes import EXAMPLES_DIR, REPO_DIR
from tests.support.waiting import wait_for

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'ui-layout-browser')
PHONE = {'width': 360, 'height': 740}
DESKTOP = {'width': 1400, 'height': 900}
LONG_ARGUMENT = 'x' * 3000  # no space to break at: only overflow-wrap keeps it in the page
STATES = ('SUCCESS', 'FAILURE', 'RETRY', 'REVOKED', 'STARTED', 'RECEIVED', 'PENDING', 'REJECTED')
#: WCAG 2 AA, normal text.
MINIMUM_CONTRAST = 4.5

#: The contrast of an element's text against what is painted behind it: the colours
#: as rendered (getComputedStyle), backgrounds of the ancestors composited until an
#: opaque one, and the WCAG relative luminance formula.
CONTRAST_JS = """
element => {
  function rgba(value) {
    const parts = value.match(/[\\d.]+/g).map(Number);
    return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
  }
  function over(top, bottom) {
    return [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  }
  function background(start) {
    const layers = [];
    for (let node = start; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour[3] > 0) { layers.push(colour); }
      if (colour[3] >= 1) { break; }
    }
    return layers.reduceRight((below, layer) => over(layer, below), [255, 255, 255, 1]);
  }
  function luminance(colour) {
    const [r, g, b] = colour.slice(0, 3).map(channel => {
      const c = channel / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  const behind = background(element);
  const text = over(rgba(getComputedStyle(element).color), behind);
  const [light, dark] = [luminance(text), luminance(behind)].sort((a, b) => b - a);
  return (light + 0.05) / (dark + 0.05);
}
"""


class Layout(Cluster):
    """The module's cluster and the tasks every page is checked with."""

    def run_tasks(self):
        send = self.client.send_task
        self.long = send('tasks.echo', (LONG_ARGUMENT,))
        self.failure = send('tasks.error', ('a failure ' + 'with-a-long-message-' * 20,))
        self.retried = send('tasks.retry_then_succeed')
        chain = (self.client.signature('tasks.add', args=(1, 1))
                 | self.client.signature('tasks.mul', args=(10,)))
        self.chain = chain.apply_async()
        for result in (self.long, self.retried, self.chain):
            result.get(timeout=60)
        with pytest.raises(Exception):
            self.failure.get(timeout=60)
        ids = [self.long.id, self.failure.id, self.retried.id, self.chain.id, self.chain.parent.id]
        wait_for(lambda: self.flower.call(
            lambda: all(task_id in self.flower.app.events.state.tasks for task_id in ids)),
            what='Flower to know every task')
        # An audit record: revoking a finished task is harmless.
        reply = requests.post(f'{self.flower.base_url}/api/task/revoke/{self.long.id}', timeout=30)
        assert reply.status_code == 200, reply.text

    def pages(self):
        """Every page, as (path, what to wait for before measuring)."""
        worker = urllib.parse.quote(self.worker.hostname)
        return [
            ('/', '#workers-table tbody tr[data-worker]'),
            ('/workers', '#workers-table tbody tr[data-worker]'),
            (f'/worker/{worker}', '#pool-info'),
            ('/tasks', '#tasks-table tbody tr[data-uuid]'),
            (f'/task/{self.long.id}', '#field-args'),
            (f'/task/{self.failure.id}', '#field-traceback'),
            ('/broker', '#broker-queues-table'),
            ('/monitor', '#graph-runtime svg *'),
            ('/audit', '#audit-table tr.audit-record'),
            (f'/workflow/{self.chain.id}', '#workflow-graph .wf-node'),
            ('/no-such-page', '.error-message'),
            ('/logout', 'main h1'),
        ]


@pytest.fixture(scope='module')
def layout():
    with Layout(ARTIFACTS, worker_app='tasks', worker_dir=EXAMPLES_DIR) as cluster:
        [cluster.worker] = cluster.start_workers({
            'name': f'ui-layout-{uuid.uuid4().hex[:6]}-with-a-rather-long-host-name@localhost',
            'pool': 'threads', 'concurrency': 4})
        cluster.flower = cluster.start_flower(unauthenticated_api=True)
        cluster.wait_known(cluster.flower, cluster.worker)
        cluster.run_tasks()
        yield cluster


def page_overflow(page):
    """How many CSS pixels the page is wider than the viewport (0 when it fits)."""
    return page.evaluate('document.documentElement.scrollWidth - window.innerWidth')


def sticking_out(page):
    """The innermost visible elements whose right edge is past the viewport, for the
    failure message."""
    return page.evaluate("""() => Array.from(document.body.querySelectorAll('*')).filter(element => {
        const box = element.getBoundingClientRect();
        return box.width > 0 && box.right > window.innerWidth + 0.5 &&
               !Array.from(element.children).some(child => child.getBoundingClientRect().right > window.innerWidth + 0.5);
      }).slice(0, 8).map(element => element.tagName.toLowerCase() + (element.id ? '#' + element.id : '') +
        (element.className && element.className.baseVal === undefined ? '.' + element.className.split(' ').join('.') : '') +
        ' ' + Math.round(element.getBoundingClientRect().right))""")


def test_every_page_fits_a_phone_without_scrolling_sideways(page, layout):
    page.set_viewport_size(PHONE)
    for path, ready in layout.pages():
        page.goto(layout.flower.base_url + path)
        page.locator(ready).first.wait_for(state='attached')
        assert page_overflow(page) <= 0, (path, sticking_out(page))
        if path.startswith('/worker/'):
            for tab in page.locator('[role=tab]').all():
                tab.click()
                assert page_overflow(page) <= 0, (path, tab.inner_text(), sticking_out(page))
        save_screenshot(page, ARTIFACTS, 'phone' + path.replace('/', '-')[:40])
    assert_no_browser_problems(page, allow_failed=[layout.flower.base_url + '/no-such-page'])


def test_tables_scroll_in_their_own_box_and_the_tasks_table_is_compact(page, layout):
    page.set_viewport_size(PHONE)
    page.goto(layout.flower.base_url + f'/worker/{urllib.parse.quote(layout.worker.hostname)}')
    page.locator('#tab-limits').click()
    # The limits table is wider than a phone: its box scrolls, the page does not.
    box = page.locator('#panel-limits .table-scroll')
    assert box.evaluate('box => box.scrollWidth > box.clientWidth')
    assert box.evaluate('box => getComputedStyle(box).overflowX') == 'auto'
    assert page_overflow(page) <= 0

    page.goto(layout.flower.base_url + '/tasks')
    row = page.locator(f'#tasks-table tbody tr[data-uuid="{layout.long.id}"]')
    expect(row.locator('.column-name')).to_be_visible()
    expect(row.locator('.column-state')).to_be_visible()
    expect(row.locator('.column-received')).to_be_visible()
    for column in ('uuid', 'args', 'kwargs', 'result', 'runtime', 'worker'):
        expect(row.locator(f'.column-{column}')).to_be_hidden()
        expect(page.locator(f'#tasks-table th[data-column="{column}"]')).to_be_hidden()
    page.set_viewport_size(DESKTOP)
    expect(row.locator('.column-args')).to_be_visible()
    expect(row.locator('.column-uuid')).to_be_visible()


def test_the_navigation_folds_into_a_menu_on_a_phone(page, layout):
    page.set_viewport_size(PHONE)
    page.goto(layout.flower.base_url + '/workers')
    toggle = page.locator('#nav-toggle')
    links = page.locator('.nav-links a')
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute('aria-expanded', 'false')
    expect(links.first).to_be_hidden()
    # The broker's state stays on the bar, readable on it.
    status = page.locator('.navbar .broker-status')
    expect(status).to_be_visible()
    assert status.evaluate(CONTRAST_JS) >= MINIMUM_CONTRAST
    assert status.bounding_box()['y'] < toggle.bounding_box()['y'] + toggle.bounding_box()['height']

    toggle.focus()
    page.keyboard.press('Enter')
    expect(toggle).to_have_attribute('aria-expanded', 'true')
    expect(links).to_have_count(5)
    for link in links.all():
        expect(link).to_be_visible()
    expect(page.locator('#theme-select')).to_be_visible()
    assert page_overflow(page) <= 0
    links.nth(1).focus()
    page.keyboard.press('Escape')
    expect(toggle).to_have_attribute('aria-expanded', 'false')
    expect(toggle).to_be_focused()
    expect(links.first).to_be_hidden()
    page.keyboard.press('Space')
    expect(links.nth(1)).to_be_visible()
    links.nth(1).click()
    page.wait_for_url(layout.flower.base_url + '/tasks')

    page.set_viewport_size(DESKTOP)
    expect(page.locator('#nav-toggle')).to_be_hidden()
    for link in page.locator('.nav-links a').all():
        expect(link).to_be_visible()
    assert_no_browser_problems(page)


def contrasts(page):
    """{what: contrast ratio} for body text, links, the navigation, muted text and
    every state badge of the workflow page (its legend shows all of them)."""
    elements = {
        'body text': 'main h2',
        'link': 'main h1 a',
        'navigation': '.nav-links a',
        'brand': '.navbar .brand',
        'broker status': '.navbar .broker-status',
        'muted text': '#workflow-summary',
        'theme switch': '.theme-switch',
    }
    elements.update({f'{state} badge': f'.workflow-legend .state-{state}' for state in STATES})
    return {what: page.locator(selector).first.evaluate(CONTRAST_JS)
            for what, selector in elements.items()}


def assert_readable(page, theme):
    page.locator('#workflow-graph .wf-node').first.wait_for()
    expect(page.locator('#workflow-summary')).not_to_have_text('Loading…')
    ratios = contrasts(page)
    failing = {what: round(ratio, 2) for what, ratio in ratios.items() if ratio < MINIMUM_CONTRAST}
    assert not failing, f"{theme}: below {MINIMUM_CONTRAST}:1: {failing}"
    background = page.evaluate('getComputedStyle(document.body).backgroundColor')
    dark = page.evaluate("""() => {
        const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\\d+/g).map(Number);
        return (r + g + b) / 3 < 128; }""")
    assert dark == (theme == 'dark'), (theme, background)


@pytest.mark.parametrize('scheme', ['light', 'dark'])
def test_the_system_theme_is_followed_and_readable(page, layout, scheme):
    page.set_viewport_size(DESKTOP)
    page.emulate_media(color_scheme=scheme)
    page.goto(layout.flower.base_url + f'/workflow/{layout.chain.id}')
    expect(page.locator('#theme-select')).to_have_value('system')
    assert_readable(page, scheme)
    save_screenshot(page, ARTIFACTS, f'workflow-system-{scheme}')
    assert_no_browser_problems(page)


def test_the_theme_switch_wins_over_the_system_and_survives_a_reload(page, layout):
    page.set_viewport_size(DESKTOP)
    page.emulate_media(color_scheme='light')
    page.goto(layout.flower.base_url + f'/workflow/{layout.chain.id}')
    page.locator('#theme-select').select_option('dark')
    expect(page.locator('html')).to_have_attribute('data-theme', 'dark')
    assert_readable(page, 'dark')
    page.reload()
    expect(page.locator('#theme-select')).to_have_value('dark')
    assert_readable(page, 'dark')

    page.emulate_media(color_scheme='dark')
    page.locator('#theme-select').select_option('light')
    assert_readable(page, 'light')
    page.goto(layout.flower.base_url + '/tasks')  # another page: the same choice
    expect(page.locator('#theme-select')).to_have_value('light')
    assert page.evaluate("localStorage.getItem('flower.theme')") == 'light'

    page.locator('#theme-select').select_option('system')
    page.goto(layout.flower.base_url + f'/workflow/{layout.chain.id}')
    assert page.evaluate("document.documentElement.hasAttribute('data-theme')") is False
    assert_readable(page, 'dark')  # the system's choice again
    assert_no_browser_problems(page)
