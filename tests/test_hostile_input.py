"""Hostile input from real workers: every page and endpoint stays up and shows it as text.

One private Redis, one worker and one Flower are shared by the module. The
worker's own name, a queue it consumes from and one of its task names carry
markup; its tasks take, return and raise markup, a 1 MB string, bytes that
are not UTF-8, text that no UTF-8 encoder accepts (file names decoded the way
Python decodes them) and structures 500 levels deep.

Task events carry arguments and results as Celery's shortened repr (bytes in
hex), but exceptions and tracebacks whole: a 1 MB exception message reaches
Flower as such. Two tasks wait for an ETA an hour away, so that the worker's
own replies (the worker page, ``/api/workers``) carry the whole 1 MB argument,
the bytes and the deep structure.

Two layers check it: plain HTTP (status, no payload unescaped in HTML, no
``</`` in JSON, answers within the client's 5 s timeout, the health check
answering while the huge pages are served) and headless Chromium (no script
ran, nothing was injected, the payload is visible as text).
"""
import concurrent.futures
import html
import http.client
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect
from prometheus_client.parser import text_string_to_metric_families

from flower.utils import encodable
from tests.support.api_cluster import Cluster
from tests.support.browser import assert_no_browser_problems, save_screenshot
from tests.support.processes import EXAMPLES_DIR, REPO_DIR
from tests.support.waiting import wait_for

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'hostile-input')
CATCH_UP_MS = 30_000
#: The client's timeout: "does not hang". No test measures speed beyond it.
HTTP_TIMEOUT = 5

SCRIPT = '<script>window.__xss = 1</script>'
IMG = '<img src=x onerror="window.__xss = 2">'
SVG = '"><svg onload="window.__xss = 3">'
JS_URL = 'javascript:window.__xss = 4'
BREAKOUT = '</script><script>window.__xss = 5</script>'
TEMPLATE_TEXT = '{{ 7 * 191 }} {% raw 7 * 191 %} ${7 * 191}'
PAYLOAD = ' '.join([SCRIPT, IMG, SVG, JS_URL, BREAKOUT, TEMPLATE_TEXT])

WORKER_NAME = f'hostile-"><svg onload=window.__xss=6>-w\u00f6rker-\u2603-{uuid.uuid4().hex[:6]}@localhost'
QUEUE = 'q-<script>window.__xss = 8</script>'
#: examples/hostile_tasks.py's HOSTILE_NAME (a task of another name would never succeed).
HOSTILE_TASK = 'hostile.<img src=x onerror="window.__xss = 7">\'"'

HUGE = SCRIPT + 'x' * (1 << 20) + SCRIPT
NOT_UTF8 = b'\xff\xfe<script>window.__xss = 9</script>'
#: How task events show bytes that are not UTF-8 (Celery's saferepr writes them in hex).
NOT_UTF8_IN_EVENTS = f"b'{NOT_UTF8.hex()}'"
#: A Latin-1 file name: decoded like Python decodes file names, it holds lone surrogates.
LATIN1_NAME = b'caf\xe9-<b>\xff\xfe</b>.txt'
LATIN1_SHOWN = r'caf\udce9-<b>\udcff\udcfe</b>.txt'
DEPTH = 500

#: Fragments that, found in an HTML body, would be markup from a worker or a task
#: (``javascript:`` is harmless as text: only an attribute holding it is checked).
UNESCAPED = ('<script>window.__xss', '<img src=x', '<svg onload', '</script><script>', '<b>')


def deeply_nested(depth):
    value = 'bottom'
    for level in range(depth):
        value = [value] if level % 2 else {'level': level, 'inner': value}
    return value


NESTED = deeply_nested(DEPTH)


class HostileCluster(Cluster):
    """The module's Redis, worker and Flower, and the hostile tasks they ran."""

    def start_worker_and_flower(self):
        [self.worker] = self.start_workers({
            'name': WORKER_NAME, 'pool': 'threads', 'concurrency': 4, 'queues': ['celery', QUEUE],
            'extra_args': ['--include', 'hostile_tasks']})
        self.flower = self.start_flower(inspect_timeout=1000)  # refreshes wait for it
        # Events sent before Flower subscribes are never seen: wait for a heartbeat first.
        self.wait_known(self.flower, self.worker)

    def run_tasks(self):
        send = self.client.send_task
        self.tasks = {
            'markup_echo': send('tasks.echo', (PAYLOAD,)),
            'markup_kwargs': send('tasks.sleep_with_args', (0, PAYLOAD), {'note': PAYLOAD, IMG: JS_URL}),
            'markup_error': send('tasks.error', (PAYLOAD,)),
            'hostile_name': send(HOSTILE_TASK, (PAYLOAD,), queue=QUEUE),
            'bytes_echo': send('tasks.echo', (NOT_UTF8,)),
            'latin1_result': send('tasks.file_name', (LATIN1_NAME,)),
            'latin1_error': send('tasks.file_name', (LATIN1_NAME,), {'fail': True}),
            'nested': send('tasks.echo', (NESTED,)),
            'huge_echo': send('tasks.echo', (HUGE,)),
            'huge_error': send('tasks.error', (HUGE,)),
        }
        self.failing = {'markup_error', 'latin1_error', 'huge_error'}
        # Held by the worker until the module is over: its replies carry them whole.
        self.scheduled = {
            'scheduled_huge': send('tasks.sleep_with_args', (0, HUGE), {'note': PAYLOAD},
                                   countdown=3600),
            'scheduled_nested': send('tasks.sleep_with_args', (0, NESTED),
                                     {'deep': NESTED, 'raw': NOT_UTF8}, countdown=3600),
        }
        for key, result in self.tasks.items():
            if key in self.failing:
                with pytest.raises(ValueError):
                    result.get(timeout=60)
            else:
                result.get(timeout=60)
        wait_for(lambda: not self.flower.call(self.unfinished), what='every task final in Flower')
        wait_for(self.worker_holds_scheduled_tasks, what='the worker to hold the ETA tasks')

    def unfinished(self):
        tasks = self.flower.app.events.state.tasks
        return [key for key, result in self.tasks.items()
                if result.id not in tasks or tasks[result.id].state not in ('SUCCESS', 'FAILURE')]

    def worker_holds_scheduled_tasks(self):
        held = {entry['request']['id'] for entry in self.inspect(self.worker, 'scheduled') or []}
        return held >= {result.id for result in self.scheduled.values()}

    @property
    def ids(self):
        return {key: result.id for key, result in {**self.tasks, **self.scheduled}.items()}

    def flower_task(self, key):
        return self.flower.call(lambda: self.flower.app.events.state.tasks[self.ids[key]])

    @property
    def worker_path(self):
        return '/worker/' + urllib.parse.quote(self.worker.hostname, safe='')

    def sample_queues(self):
        """Record the queue lengths now rather than at the next 10 s sample."""
        self.flower.run_coroutine(self.flower.app.sample_queues)

    def fetch(self, path):
        status, headers, body = self.flower.fetch(path, timeout=HTTP_TIMEOUT)
        return status, headers.get('Content-Type', ''), body


@pytest.fixture(scope='module')
def cluster():
    with HostileCluster(ARTIFACTS, worker_app='tasks', worker_dir=EXAMPLES_DIR,
                        env={'FLOWER_UNAUTHENTICATED_API': 'true'}) as cluster:
        cluster.start_worker_and_flower()
        cluster.run_tasks()
        yield cluster


# -- layer 1: plain HTTP ---------------------------------------------------------

def search_path(needle, **params):
    return '/tasks/datatable?' + urllib.parse.urlencode({'search[value]': needle, **params})


#: path (task keys in braces) -> texts the answer must show, unescaped.
ENDPOINTS = {
    '/': [WORKER_NAME],
    '/workers?json=1': [WORKER_NAME],
    '{worker}': [WORKER_NAME, QUEUE, HOSTILE_TASK, PAYLOAD, repr([0, HUGE]),
                 repr({'deep': NESTED, 'raw': NOT_UTF8})],
    '/tasks': [WORKER_NAME, HOSTILE_TASK],
    '/tasks/datatable?length=100': [PAYLOAD, HOSTILE_TASK, WORKER_NAME, NOT_UTF8_IN_EVENTS],
    search_path('<script>window.__xss', length=100): [PAYLOAD],
    search_path('kwargs:note'): [PAYLOAD],
    '/task/{markup_echo}': [PAYLOAD],
    '/task/{markup_kwargs}': [PAYLOAD, JS_URL],
    '/task/{markup_error}': [PAYLOAD, 'Traceback (most recent call last)'],
    '/task/{hostile_name}': [HOSTILE_TASK, PAYLOAD, QUEUE],
    '/task/{bytes_echo}': [NOT_UTF8_IN_EVENTS],
    '/task/{latin1_result}': [LATIN1_SHOWN],
    '/task/{latin1_error}': [LATIN1_SHOWN],
    '/task/{nested}': ["([{'level': 498, 'inner': [", "[{'level': 498, 'inner': [{...}]}]"],
    '/task/{huge_echo}': ['<script>window.__xss'],
    '/task/{huge_error}': [HUGE],
    '/task/{scheduled_huge}': ['<script>window.__xss', PAYLOAD],
    '/broker': [QUEUE],
    '/broker?json=1': [QUEUE],
    '/api/tasks': [PAYLOAD, HUGE, HOSTILE_TASK, WORKER_NAME],
    '/api/task/info/{markup_kwargs}': [PAYLOAD, JS_URL],
    '/api/task/info/{huge_error}': [HUGE],
    '/api/task/info/{latin1_error}': [os.fsdecode(LATIN1_NAME)],
    '/api/task/types': [HOSTILE_TASK],
    '/api/queues/length': [QUEUE],
    '/api/workers?refresh=1': [WORKER_NAME, QUEUE, HOSTILE_TASK, HUGE, repr(NOT_UTF8)],
    '/metrics': [],
    '/healthcheck': ['OK'],
}


def json_texts(value):
    """Every string of a decoded JSON document, keys included."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def shown_texts(content_type, body):
    """The texts a response shows: HTML unescaped, JSON decoded."""
    if content_type.startswith('text/html'):
        return [html.unescape(body)]
    if content_type.startswith('application/json'):
        return list(json_texts(json.loads(body)))
    return [body]


@pytest.mark.parametrize('path, expected', list(ENDPOINTS.items()), ids=list(ENDPOINTS))
def test_every_page_and_endpoint_answers_and_escapes_hostile_values(cluster, path, expected):
    path = cluster.worker_path if path == '{worker}' else path.format(**cluster.ids)
    status, content_type, body = cluster.fetch(path)
    assert status == 200, body[:2000]
    if content_type.startswith('text/html'):
        found = [fragment for fragment in UNESCAPED if fragment in body]
        assert not found, f"{path} has unescaped markup: {found}"
        assert not re.search(r'''(?:href|src|action)\s*=\s*["']?\s*javascript:''', body, re.I)
    elif content_type.startswith('application/json'):
        # Inside a <script> element, "</" would end it: JSON answers never carry one.
        assert '</' not in body
    else:
        assert path in ('/metrics', '/healthcheck'), content_type
        assert content_type.startswith('text/plain')
    texts = shown_texts(content_type, body)
    for text in expected:
        assert any(text in shown for shown in texts), f"{path} does not show {text[:200]!r}"


def test_the_payloads_search_finds_exactly_the_tasks_carrying_them(cluster):
    status, _, body = cluster.fetch(search_path('<script>window.__xss', length=100))
    assert status == 200
    found = {row['uuid'] for row in json.loads(body)['data']}

    def carrying():
        return {task_id for task_id, task in cluster.flower.app.events.state.tasks.items()
                if any('<script>window.__xss' in str(value or '')
                       for value in (task.args, task.kwargs, task.result))}
    expected = cluster.flower.call(carrying)
    assert found == expected
    ids = cluster.ids
    assert {ids['markup_echo'], ids['markup_kwargs'], ids['markup_error'], ids['hostile_name'],
            ids['huge_error'], ids['scheduled_huge']} <= found


def test_pages_show_text_no_encoder_accepts_with_backslash_escapes(cluster):
    """A traceback holding a file name decoded from Latin-1 bytes is shown, not a 500."""
    assert os.fsdecode(LATIN1_NAME) in cluster.flower_task('latin1_error').traceback
    for key in ('latin1_error', 'latin1_result'):
        status, _, body = cluster.fetch(f"/task/{cluster.ids[key]}")
        assert status == 200, body[:2000]
        assert html.escape(LATIN1_SHOWN, quote=False) in body


def test_encodable_escapes_only_what_utf_8_cannot_carry():
    plain = 'caf\u00e9 \u2603 <b>'
    assert encodable(plain) is plain
    latin1 = os.fsdecode(b'caf\xe9')
    assert encodable({latin1: [latin1, (latin1, 1)], 'n': None}) == {
        r'caf\udce9': [r'caf\udce9', (r'caf\udce9', 1)], 'n': None}


def test_metrics_keep_hostile_label_values_intact(cluster):
    cluster.sample_queues()
    status, content_type, body = cluster.fetch('/metrics')
    assert status == 200 and content_type.startswith('text/plain')
    labels = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            for name, value in sample.labels.items():
                labels.setdefault(name, set()).add(value)
    assert HOSTILE_TASK in labels['task']
    assert WORKER_NAME in labels['worker']
    assert QUEUE in labels['queue']


def test_the_healthcheck_answers_while_huge_pages_are_served(cluster):
    huge_paths = [f"/task/{cluster.ids['huge_error']}", cluster.worker_path, '/api/tasks',
                  '/tasks/datatable?length=100', f"/api/task/info/{cluster.ids['huge_error']}"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(huge_paths)) as pool:
        pending = [pool.submit(cluster.fetch, path) for path in huge_paths * 3]
        checks = []
        while not all(future.done() for future in pending) or not checks:
            checks.append(cluster.fetch('/healthcheck'))
        served = [future.result() for future in pending]
    assert all(check[0] == 200 and check[2] == 'OK' for check in checks), checks
    assert [status for status, _, _ in served] == [200] * len(served)
    assert min(len(body) for _, _, body in served) > len(HUGE)


#: Hostile requests (issue 15): method, path, JSON body -> status, part of the error.
DEEP_JSON = '{"args": ' + '[' * 100_000 + ']' * 100_000 + '}'
HOSTILE_REQUESTS = {
    'search-too-long': ('GET', '/api/tasks?search=' + 'x' * 1001, None, 400, 'at most 1000'),
    'search-too-many-terms': ('GET', search_path(' '.join(['t'] * 21)), None, 400, 'at most 20'),
    'limit-beyond-maxsize': ('GET', f'/api/tasks?limit={sys.maxsize + 1}', None, 400,
                             'at most 1000000000'),
    'offset-huge': ('GET', f'/api/tasks?offset={10**30}&limit=1', None, 400, 'at most 1000000000'),
    'start-beyond-maxsize': ('GET', f'/tasks/datatable?start={sys.maxsize + 1}', None, 400,
                             "'start' must be >= 0 and at most 1000000000"),
    'result-timeout-huge': ('GET', f'/api/task/result/{uuid.uuid4()}?timeout=1e9', None, 400,
                            "Invalid value for argument 'timeout'"),
    'json-100000-deep': ('POST', '/api/task/send-task/tasks.echo', DEEP_JSON, 400,
                         'nested too deeply'),
    'unknown-worker-refresh': ('GET', '/api/workers?refresh=1&workername=' +
                               urllib.parse.quote(SVG), None, 404, 'Unknown worker'),
}


@pytest.mark.parametrize('key', list(HOSTILE_REQUESTS))
def test_hostile_requests_are_refused_with_a_clear_error(cluster, key):
    method, path, body, status, message = HOSTILE_REQUESTS[key]
    request = urllib.request.Request(cluster.flower.base_url + path, method=method,
                                     data=body.encode() if body else None,
                                     headers={'Content-Type': 'application/json'})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=HTTP_TIMEOUT)
    assert refused.value.code == status
    assert message in json.loads(refused.value.read())['error']
    assert cluster.fetch('/healthcheck')[0] == 200


def test_an_unknown_worker_page_is_a_404_showing_the_name_as_text(cluster):
    status, content_type, body = cluster.fetch('/worker/' + urllib.parse.quote(SVG + '@nowhere'))
    assert status == 404 and content_type.startswith('text/html')
    assert '<svg onload' not in body and html.escape(SVG + '@nowhere') in body


def raw_request(cluster, method, path, headers, body=None):
    """``(status, content type, body)`` of one request with headers exactly as given."""
    connection = http.client.HTTPConnection('127.0.0.1', cluster.flower.options.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return (response.status, response.headers.get('Content-Type', ''),
                response.read().decode('utf-8', 'replace'))
    finally:
        connection.close()


#: ``Host`` headers no deployment answers to: a rebinding name, markup, a huge name.
HOSTILE_HOSTS = ['rebound.example', '<script>window.__xss=1</script>', 'a"><img src=x>',
                 'xn--80ak6aa92e.example', 'h' * 5000 + '.example']


@pytest.mark.parametrize('host', HOSTILE_HOSTS, ids=['rebinding', 'script', 'attribute',
                                                     'punycode', 'huge'])
@pytest.mark.parametrize('path', ['/', '/api/workers', f'/task/{uuid.uuid4()}'],
                         ids=['root', 'api-workers', 'unknown-task'])  # the same in every xdist worker
def test_hostile_host_headers_get_a_400_showing_them_as_text(cluster, host, path):
    status, content_type, body = raw_request(cluster, 'GET', path, {'Host': host})
    assert status == 400
    if not body:
        assert not re.fullmatch(r'[a-z0-9.-]+', host)  # Tornado refused the header itself
    elif path.startswith('/api/'):
        assert json.loads(body)['error'].startswith('Flower does not answer to the host name')
    else:
        assert content_type.startswith('text/html')
        assert not [fragment for fragment in UNESCAPED + ('<img src=x>',) if fragment in body]
        assert '--allowed_hosts' in body
    assert WORKER_NAME not in body


def test_an_oversized_hostile_submission_is_refused_before_the_broker(cluster):
    body = json.dumps({'args': [PAYLOAD * (11 * (1 << 20) // len(PAYLOAD))]})
    status, _, answer = raw_request(
        cluster, 'POST', '/api/task/async-apply/' + urllib.parse.quote(HOSTILE_TASK, safe=''),
        {'Content-Type': 'application/json'}, body)
    assert status == 413
    assert '--max_body_size' in json.loads(answer)['error']
    assert cluster.fetch('/healthcheck')[0] == 200


# -- layer 2: headless Chromium ---------------------------------------------------

#: Everything an injection would leave in the document; the broker graph is our own SVG.
INJECTED = '''() => {
  const found = [];
  for (const element of document.querySelectorAll('*')) {
    for (const attribute of element.attributes) {
      if (attribute.name.startsWith('on')) { found.push(element.tagName + ' ' + attribute.name); }
      if (['href', 'src', 'action', 'formaction', 'xlink:href'].includes(attribute.name)
          && /^\\s*javascript:/i.test(attribute.value)) { found.push(element.tagName + ' javascript: URL'); }
    }
  }
  document.querySelectorAll('script:not([src]), img, iframe, object, embed, b').forEach(
    (element) => found.push(element.outerHTML.slice(0, 120)));
  document.querySelectorAll('svg').forEach((svg) => {
    if (!svg.closest('#queue-graph')) { found.push(svg.outerHTML.slice(0, 120)); }
  });
  return found;
}'''


def assert_nothing_ran_or_was_injected(page):
    assert page.evaluate('typeof window.__xss') == 'undefined'
    assert page.evaluate(INJECTED) == []


def refresh_in_place(page):
    """Swap in the page's refreshed regions now, as auto refresh does every few seconds."""
    page.evaluate('window.flower.refresh()')


def test_the_dashboard_shows_the_worker_name_as_text(page, cluster):
    page.goto(cluster.flower.base_url + '/')
    link = page.locator('#workers-table td.worker-name a')
    expect(link).to_have_text(WORKER_NAME)
    refresh_in_place(page)
    page.locator('#worker-filter').fill('"><svg')
    expect(page.locator('#workers-table tr[data-worker]').first).to_be_visible()
    assert_nothing_ran_or_was_injected(page)
    save_screenshot(page, ARTIFACTS, 'dashboard')
    link.click()
    expect(page.locator('#worker-name')).to_have_text(WORKER_NAME)
    assert_nothing_ran_or_was_injected(page)
    assert_no_browser_problems(page)


def test_every_tab_of_the_worker_page_shows_hostile_values_as_text(page, cluster):
    page.goto(cluster.flower.base_url + cluster.worker_path)
    expect(page.locator('#worker-name')).to_have_text(WORKER_NAME)
    page.locator('#tab-queues').click()
    expect(page.locator('#queues-table tr[data-queue] td.queue-name').filter(has_text=QUEUE)) \
        .to_have_count(1)
    page.locator('#tab-tasks').click()
    args = page.locator('#scheduled-table td.task-args')
    expect(args.filter(has_text=SCRIPT + 'x' * 100)).to_have_count(1)
    expect(page.locator('#scheduled-table td.task-kwargs').filter(has_text=PAYLOAD)).to_have_count(1)
    expect(page.locator('#processed-table')).to_contain_text(HOSTILE_TASK)
    shown = args.all_inner_texts()
    assert repr([0, HUGE]) in shown and repr([0, NESTED]) in shown
    expect(page.locator('#scheduled-table td.task-kwargs').filter(has_text=repr(NOT_UTF8))) \
        .to_have_count(1)
    page.locator('#tab-limits').click()
    expect(page.locator('#limits-table tr[data-task-name] td:first-child')
           .filter(has_text=HOSTILE_TASK)).to_have_count(1)
    refresh_in_place(page)
    for tab in ('pool', 'broker', 'queues', 'tasks', 'limits', 'config', 'system'):
        page.locator(f'#tab-{tab}').click()
        expect(page.locator(f'#panel-{tab}')).to_be_visible()
        assert_nothing_ran_or_was_injected(page)
        page.screenshot(path=os.path.join(ARTIFACTS, f'worker-{tab}.png'))
    assert_no_browser_problems(page)


def test_the_tasks_table_search_shows_the_payloads_as_text(page, cluster):
    page.goto(cluster.flower.base_url + '/tasks')
    page.locator('#tasks-length').select_option('100')
    page.locator('#task-search').fill('<script>window.__xss')
    row = page.locator(f'#tasks-table tr[data-uuid="{cluster.ids["markup_echo"]}"]')
    expect(row.locator('td.column-args')).to_contain_text(PAYLOAD, timeout=CATCH_UP_MS)
    expect(row.locator('td.column-result')).to_contain_text(PAYLOAD)
    hostile = page.locator(f'#tasks-table tr[data-uuid="{cluster.ids["hostile_name"]}"]')
    expect(hostile.locator('td.column-name')).to_have_text(HOSTILE_TASK)
    expect(hostile.locator('td.column-worker')).to_have_text(WORKER_NAME)
    expect(page.locator('select[name="taskname"] option').filter(has_text=HOSTILE_TASK)) \
        .to_have_count(1)
    page.locator('#task-search').fill('kwargs:note')
    expect(page.locator('#tasks-info')).to_contain_text('of 2 tasks')
    kwargs = page.locator(f'#tasks-table tr[data-uuid="{cluster.ids["markup_kwargs"]}"] td.column-kwargs')
    expect(kwargs).to_contain_text(PAYLOAD)
    expect(kwargs).to_contain_text(JS_URL)
    assert_nothing_ran_or_was_injected(page)
    save_screenshot(page, ARTIFACTS, 'tasks-search')
    assert_no_browser_problems(page)


#: task key -> (field id, text it shows)
TASK_FIELDS = {
    'markup_echo': [('field-args', PAYLOAD), ('field-result', PAYLOAD)],
    'markup_kwargs': [('field-kwargs', PAYLOAD), ('field-kwargs', JS_URL)],
    'markup_error': [('field-exception', PAYLOAD), ('field-traceback', PAYLOAD)],
    'hostile_name': [('task-title', HOSTILE_TASK), ('field-routing_key', QUEUE),
                     ('field-worker', WORKER_NAME)],
    'bytes_echo': [('field-args', NOT_UTF8_IN_EVENTS), ('field-result', NOT_UTF8_IN_EVENTS)],
    'latin1_result': [('field-result', LATIN1_SHOWN)],
    'latin1_error': [('field-traceback', LATIN1_SHOWN)],
    'nested': [('field-args', "([{'level': 498"), ('field-result', "[{'level': 498")],
    'huge_error': [('field-exception', SCRIPT + 'x' * 1000), ('field-traceback', 'x' * 1000 + SCRIPT)],
}


@pytest.mark.parametrize('key', list(TASK_FIELDS))
def test_the_task_page_shows_hostile_values_as_text(page, cluster, key):
    page.goto(f"{cluster.flower.base_url}/task/{cluster.ids[key]}")
    for field, text in TASK_FIELDS[key]:
        expect(page.locator(f'#{field}')).to_contain_text(text)
    refresh_in_place(page)
    expect(page.locator('#field-uuid')).to_have_text(cluster.ids[key])
    assert_nothing_ran_or_was_injected(page)
    # Not full-page: the 1 MB values make pages taller than a screenshot can be.
    page.screenshot(path=os.path.join(ARTIFACTS, f'task-{key}.png'))
    assert_no_browser_problems(page)


def test_the_broker_page_shows_the_queue_name_as_text(page, cluster):
    cluster.sample_queues()
    page.goto(cluster.flower.base_url + '/broker')
    expect(page.locator('#broker-queues-table td.queue-name').filter(has_text=QUEUE)) \
        .to_have_count(1)
    expect(page.locator('#queue-graph .legend li').filter(has_text=QUEUE)).to_have_count(1)
    refresh_in_place(page)
    assert_nothing_ran_or_was_injected(page)
    save_screenshot(page, ARTIFACTS, 'broker')
    assert_no_browser_problems(page)
