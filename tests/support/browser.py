"""Headless Chromium for browser tests, driven by Playwright's sync API.

``tests/conftest.py`` loads it as a plugin, which gives every test:

* ``browser`` (module) -> a Playwright ``Browser`` on the system Chromium
  (``/usr/bin/chromium``, Debian package ``chromium``; ``$FLOWER_TEST_CHROMIUM``
  points elsewhere). Playwright's own browser downloads are never used.
* ``page`` (function) -> a Playwright ``Page`` in a fresh browser context,
  closed at teardown. What goes wrong in it is recorded on the page object:

  - ``page.console_errors``  console messages of type ``error`` (``ConsoleError``)
  - ``page.page_errors``     uncaught exceptions thrown by the page's scripts
  - ``page.failed_requests`` requests that failed (network error, aborted...)
    or got an HTTP status >= 400, as ``FailedRequest`` objects
  - ``page.responses``       every response seen, ``{url: status}``

Helpers: ``browser_problems(page)``, ``assert_no_browser_problems(page)``,
``save_screenshot(page, artifacts_dir, name)`` and ``reload_until(page, check)``.
"""
import dataclasses
import os
import time

import pytest

from tests.support.host_network import network_steady

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the ``browser`` fixture, with the fix
    PlaywrightError = sync_playwright = None

CHROMIUM = os.environ.get('FLOWER_TEST_CHROMIUM', '/usr/bin/chromium')

LAUNCH_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--disable-sync',
]

#: Default timeout (ms) of page actions and navigations in the ``page`` fixture.
DEFAULT_TIMEOUT_MS = 15_000
VIEWPORT = {'width': 1280, 'height': 800}


@dataclasses.dataclass
class FailedRequest:
    """A request that did not succeed: ``status`` set for HTTP errors, ``failure`` otherwise."""
    method: str
    url: str
    resource_type: str
    status: int | None = None
    failure: str | None = None

    def __str__(self):
        outcome = f"HTTP {self.status}" if self.status is not None else f"failed: {self.failure}"
        return f"{self.method} {self.url} ({self.resource_type}) {outcome}"


@dataclasses.dataclass
class ConsoleError:
    """A console message of type ``error``; ``url`` is where it came from (if known)."""
    text: str
    url: str = ''
    line: int = 0

    def __str__(self):
        return f"{self.text} ({self.url}:{self.line})" if self.url else self.text


def _record_problems(page):
    """Attach the problem lists to ``page`` and subscribe to the events filling them."""
    page.console_errors = []
    page.page_errors = []
    page.failed_requests = []
    page.responses = {}

    def on_console(message):
        if message.type == 'error':
            location = message.location or {}
            page.console_errors.append(ConsoleError(
                message.text, location.get('url', ''), location.get('lineNumber', 0)))

    def on_page_error(error):
        page.page_errors.append(error.stack or error.message or str(error))

    def on_request_failed(request):
        page.failed_requests.append(FailedRequest(
            request.method, request.url, request.resource_type, failure=request.failure))

    def on_response(response):
        page.responses[response.url] = response.status
        if response.status >= 400:
            request = response.request
            page.failed_requests.append(FailedRequest(
                request.method, response.url, request.resource_type, status=response.status))

    page.on('console', on_console)
    page.on('pageerror', on_page_error)
    page.on('requestfailed', on_request_failed)
    page.on('response', on_response)


def _is_allowed_load_error(error, allow_failed):
    """Chromium's own console line about an HTTP error of an allowed URL."""
    return error.url in allow_failed and error.text.startswith('Failed to load resource')


def browser_problems(page, allow_failed=()):
    """Everything recorded on ``page`` as strings.

    ``allow_failed``: URLs expected to fail (say, a 404 page under test); their
    failed requests and Chromium's "Failed to load resource" lines are not counted.
    """
    problems = [f"console error: {error}" for error in page.console_errors
                if not _is_allowed_load_error(error, allow_failed)]
    problems += [f"page error: {text}" for text in page.page_errors]
    problems += [f"request {failed}" for failed in page.failed_requests
                 if failed.url not in allow_failed and not _is_cancelled_by_the_page(failed)]
    return problems


def _is_cancelled_by_the_page(failed):
    """A stream or a refresh the page itself cut off (filters changed, page left):
    aborted by the browser, not failed by the server (those are answers of 400 and
    more, or other network errors)."""
    return failed.resource_type in ('eventsource', 'fetch', 'xhr') \
        and failed.failure == 'net::ERR_ABORTED'


def assert_no_browser_problems(page, allow_failed=()):
    problems = browser_problems(page, allow_failed)
    assert not problems, "the browser reported problems:\n  " + "\n  ".join(problems)


def save_screenshot(page, artifacts_dir, name):
    """Write a full-page PNG of ``page`` to ``artifacts_dir/<name>.png``; return its path."""
    if not name.endswith('.png'):
        name += '.png'
    path = os.path.join(artifacts_dir, name)
    os.makedirs(artifacts_dir, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    return path


def accept_dialogs(page):
    """Answer OK to every confirm() (Playwright dismisses them by default); the
    messages asked, in order."""
    messages = []

    def accept(dialog):
        messages.append(dialog.message)
        dialog.accept()

    page.on('dialog', accept)
    return messages


def reload_until(page, check, timeout=30.0):
    """Reload ``page`` until ``check()`` stops raising ``AssertionError``; re-raise after ``timeout`` s.

    For pages that do not refresh themselves. ``check`` should use Playwright's
    ``expect`` with a short timeout (say 500 ms): that wait paces the loop.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        page.reload()


@pytest.fixture(scope='module')
def browser():
    """One headless system Chromium per test module.

    Not per session: while Playwright's sync API runs, the main thread has a
    running asyncio loop, and ``asyncio.run()`` in later modules would fail.
    """
    if sync_playwright is None:
        pytest.fail("Playwright is not installed: `pip install -e '.[test]'` "
                    "(or `pip install playwright`; never `playwright install`)", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install the Debian package "
                    "(`apt-get install -y chromium`, scripts/test.sh does it) "
                    "or set FLOWER_TEST_CHROMIUM", pytrace=False)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
    except PlaywrightError as exc:
        playwright.stop()
        pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def page(browser):
    """A fresh context and page; errors, failed requests and responses recorded on it.

    The host's network stays as it is while the page lives (``network_steady``).
    """
    with network_steady():
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
        new_page = context.new_page()
        _record_problems(new_page)
        yield new_page
        context.close()
