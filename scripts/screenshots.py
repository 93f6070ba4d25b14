"""Take the screenshots the pages documentation shows, from a small real cluster.

Starts a private redis-server, one Celery worker running the examples' tasks
and a Flower (the test suite's helpers, so run it with the test venv), runs a
few tasks of every outcome, then saves each main page at 1400x900 and 360x740,
in the light and the dark theme, with the system Chromium:

    .venv/bin/python scripts/screenshots.py [--output docs/_static/screenshots]

Only the viewport is captured, to keep the files small.
"""
import argparse
import os
import sys
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import requests  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from tests.support.api_cluster import Cluster  # noqa: E402
from tests.support.browser import CHROMIUM, LAUNCH_ARGS  # noqa: E402
from tests.support.processes import EXAMPLES_DIR  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

SIZES = {'desktop': {'width': 1400, 'height': 900}, 'phone': {'width': 360, 'height': 740}}
THEMES = ('light', 'dark')
LOG_DIR = os.path.join(ROOT, 'test-artifacts', 'screenshots')
DEFAULT_OUTPUT = os.path.join(ROOT, 'docs', '_static', 'screenshots')


def run_tasks(cluster):
    """Successes, failures, retries, a chain and a task still running; returns the ids
    the pages are shown for."""
    send = cluster.client.send_task
    done = [send('tasks.add', (n, n)) for n in range(20)]
    done += [send('tasks.mul', (n, 3)) for n in range(8)]
    done += [send('tasks.retry_then_succeed') for _ in range(2)]
    done.append(send('tasks.echo', ('a rather long argument ' * 20,)))
    failures = [send('tasks.error', (f'could not reach the payment service (attempt {n})',))
                for n in range(3)]
    chain = (cluster.client.signature('tasks.add', args=(2, 3))
             | cluster.client.signature('tasks.mul', args=(4,))
             | cluster.client.signature('tasks.add', args=(1,)))
    last = chain.apply_async()
    for result in done + [last]:
        result.get(timeout=60)
    for result in failures:
        result.get(timeout=60, propagate=False)
    send('tasks.sleep', (15,))
    flower = cluster.flower
    wait_for(lambda: flower.call(lambda: all(
        result.id in flower.app.events.state.tasks for result in done + failures)),
        what='Flower to know every task')
    # One line in the audit trail: revoking a finished task changes nothing.
    requests.post(f'{flower.base_url}/api/task/revoke/{done[0].id}', timeout=30).raise_for_status()
    return {'failure': failures[0].id, 'chain': last.id}


def pages(cluster, ids):
    """(file name, path, selector to wait for) of each page shown."""
    worker = urllib.parse.quote(cluster.worker.hostname)
    return [
        ('workers', '/workers', '#workers-table tbody tr[data-worker]'),
        ('worker', f'/worker/{worker}', '#pool-info'),
        ('tasks', '/tasks', '#tasks-table tbody tr[data-uuid]'),
        ('task', f'/task/{ids["failure"]}', '#field-traceback'),
        ('workflow', f'/workflow/{ids["chain"]}', '#workflow-graph .wf-node'),
        ('broker', '/broker', '#queue-graph svg *'),
        ('monitor', '/monitor', '#graph-runtime svg *'),
        ('audit', '/audit', '#audit-table tr.audit-record'),
    ]


def capture(base_url, shown, output):
    os.makedirs(output, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        for theme in THEMES:
            for size, viewport in SIZES.items():
                context = browser.new_context(viewport=viewport, color_scheme=theme)
                page = context.new_page()
                for name, path, ready in shown:
                    page.goto(base_url + path)
                    page.locator(ready).first.wait_for(state='attached')
                    page.wait_for_timeout(300)  # let the graphs and times settle
                    file_name = os.path.join(output, f'{name}-{size}-{theme}.png')
                    page.screenshot(path=file_name)
                    print(file_name)
                context.close()
        browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--output', default=DEFAULT_OUTPUT,
                        help='directory of the PNG files (default: %(default)s)')
    arguments = parser.parse_args()
    with Cluster(LOG_DIR, worker_app='tasks', worker_dir=EXAMPLES_DIR) as cluster:
        [cluster.worker] = cluster.start_workers({
            'name': 'worker1@example', 'pool': 'threads', 'concurrency': 4})
        cluster.flower = cluster.start_flower(unauthenticated_api=True)
        cluster.wait_known(cluster.flower, cluster.worker)
        ids = run_tasks(cluster)
        capture(cluster.flower.base_url, pages(cluster, ids), arguments.output)


if __name__ == '__main__':
    main()
