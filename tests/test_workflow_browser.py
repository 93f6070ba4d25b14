"""The workflow page in headless Chromium: the graph of a chain, a group and a chord as
real workers run them, nodes changing colour as their tasks finish, without reloading.

One private Redis (broker and result backend), one worker with four threads and
a Flower are shared by the module; each test sends its own canvas.
"""
import os
import re
import urllib.parse
import uuid

import pytest
from celery import chain, chord, group
from playwright.sync_api import expect

from tests.support.api_cluster import Cluster
from tests.support.browser import assert_no_browser_problems
from tests.support.processes import REPO_DIR
from tests.support.waiting import wait_for

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'workflow-browser')

#: The state colours of the stylesheet (flower.css), as Chromium computes them.
STARTED_FILL = 'rgb(31, 111, 235)'
SUCCESS_FILL = 'rgb(26, 127, 55)'


@pytest.fixture(scope='module')
def cluster():
    with Cluster(ARTIFACTS) as started:
        [started.worker] = started.start_workers({
            'name': f'workflow-ui-{uuid.uuid4().hex[:6]}@localhost', 'pool': 'threads',
            'concurrency': 4})
        started.flower = started.start_flower()
        started.wait_known(started.flower, started.worker)
        yield started


def signature(cluster, name, *args):
    return cluster.client.signature(name, args)


def ids_of(result):
    found = []
    while result is not None:
        found.insert(0, result.id)
        result = result.parent
    return found


def wait_known(cluster, task_id):
    flower = cluster.flower
    wait_for(lambda: flower.call(lambda: task_id in flower.app.events.state.tasks.data),
             what=f'Flower to know task {task_id}')


def open_workflow(page, cluster, task_id):
    """The workflow page, loaded once: ``window.loadedOnce`` would be gone after a reload."""
    wait_known(cluster, task_id)  # the result backend may answer before the events arrive
    page.goto(cluster.flower.base_url + '/workflow/' + urllib.parse.quote(task_id, safe=''))
    expect(page.locator('#workflow')).to_have_attribute('data-loaded', re.compile('[1-9]'))
    page.evaluate('window.loadedOnce = true')


def graph_node(page, task_id):
    return page.locator(f'#workflow-graph .wf-node[data-id="{task_id}"]')


def fill_of(node):
    return node.locator('rect').evaluate('element => getComputedStyle(element).fill')


def positions(page):
    """``{task id: (x, y)}`` of the nodes drawn."""
    return page.evaluate("""() => Object.fromEntries(
        Array.from(document.querySelectorAll('#workflow-graph .wf-node')).map(node => {
            const box = node.getBBox(), matrix = node.transform.baseVal.consolidate().matrix;
            return [node.dataset.id, [matrix.e + box.x, matrix.f + box.y]];
        }))""")


def test_a_chain_goes_from_started_to_success_without_reloading(page, cluster):
    steps = [signature(cluster, 'tasks.sleep', 3) for _ in range(3)]
    result = chain(*[step.set(immutable=True) for step in steps]).apply_async()
    first, second, third = ids_of(result)
    wait_known(cluster, first)

    open_workflow(page, cluster, first)
    expect(page.locator('#workflow')).to_have_attribute('data-stream', 'open')
    # The second task shows up once the first has sent it, running, then done.
    expect(graph_node(page, second)).to_have_attribute('data-state', 'STARTED', timeout=20_000)
    assert fill_of(graph_node(page, second)) == STARTED_FILL
    expect(graph_node(page, second)).to_have_attribute('data-state', 'SUCCESS', timeout=20_000)
    expect(graph_node(page, third)).to_have_attribute('data-state', 'SUCCESS', timeout=20_000)
    result.get(timeout=30)

    expect(page.locator('#workflow-graph .wf-node')).to_have_count(3)
    for task_id in (first, second, third):
        expect(graph_node(page, task_id)).to_have_attribute('data-state', 'SUCCESS')
        assert fill_of(graph_node(page, task_id)) == SUCCESS_FILL
    links = page.locator('#workflow-graph path.wf-edge')
    expect(links).to_have_count(2)
    assert sorted((link.get_attribute('data-from'), link.get_attribute('data-to'))
                  for link in links.all()) == sorted([(first, second), (second, third)])
    at = positions(page)
    assert at[first][0] < at[second][0] < at[third][0]  # left to right
    assert at[first][1] == at[second][1] == at[third][1]
    expect(page.locator('#workflow-timeline .wf-row')).to_have_count(3)
    expect(page.locator('#workflow-timeline .wf-row rect.bar')).to_have_count(3)
    expect(graph_node(page, first).locator('xpath=..')).to_have_attribute(
        'href', f'/task/{first}')
    assert page.evaluate('window.loadedOnce') is True
    assert_no_browser_problems(page)


def test_a_group_of_five_is_stacked_in_one_column(page, cluster):
    result = group(signature(cluster, 'tasks.add', number, number) for number in range(5))()
    assert result.get(timeout=30) == [0, 2, 4, 6, 8]
    members = [child.id for child in result.results]

    open_workflow(page, cluster, members[0])

    nodes = page.locator('#workflow-graph .wf-node')
    expect(nodes).to_have_count(5)
    for member in members:
        expect(graph_node(page, member)).to_have_attribute('data-state', 'SUCCESS')
        assert fill_of(graph_node(page, member)) == SUCCESS_FILL
    at = positions(page)
    assert sorted(at) == sorted(members)
    assert len({x for x, _ in at.values()}) == 1
    assert len({y for _, y in at.values()}) == 5
    expect(page.locator('#workflow-graph path.wf-edge')).to_have_count(0)
    expect(page.locator(f'#workflow-graph rect.wf-group[data-group="{result.id}"]')).to_have_count(1)
    expect(page.locator('#workflow-summary')).to_contain_text('5 tasks, 5 finished')
    assert_no_browser_problems(page)


def test_a_chord_of_four_draws_its_callback_after_the_header(page, cluster):
    header = [signature(cluster, 'tasks.add', number, number) for number in range(4)]
    result = chord(header, signature(cluster, 'tasks.echo')).apply_async()
    assert result.get(timeout=30) == [0, 2, 4, 6]
    callback, members = result.id, [child.id for child in result.parent.results]

    open_workflow(page, cluster, callback)

    expect(page.locator('#workflow-graph .wf-node')).to_have_count(5)
    chord_links = page.locator(f'#workflow-graph path.wf-edge.chord[data-to="{callback}"]')
    expect(chord_links).to_have_count(4)
    assert sorted(link.get_attribute('data-from') for link in chord_links.all()) == sorted(members)
    expect(page.locator('#workflow-graph path.wf-edge')).to_have_count(4)
    for task_id in members + [callback]:
        expect(graph_node(page, task_id)).to_have_attribute('data-state', 'SUCCESS')
    at = positions(page)
    assert len({at[member][0] for member in members}) == 1
    assert at[callback][0] > at[members[0]][0]
    assert graph_node(page, callback).get_attribute('class').split()[-1] == 'asked'
    assert_no_browser_problems(page)


def test_the_task_page_links_to_the_workflow_of_a_chain_only(page, cluster):
    result = chain(signature(cluster, 'tasks.add', 1, 1), signature(cluster, 'tasks.add', 1))()
    lone = signature(cluster, 'tasks.add', 5, 5).delay()
    assert (result.get(timeout=30), lone.get(timeout=30)) == (3, 10)
    first, second = ids_of(result)
    wait_known(cluster, second)
    wait_known(cluster, lone.id)

    page.goto(f'{cluster.flower.base_url}/task/{lone.id}')
    expect(page.locator('#task-title')).to_be_visible()
    expect(page.locator('#workflow-link')).to_have_count(0)
    page.goto(f'{cluster.flower.base_url}/task/{second}')
    page.locator('#workflow-link').click()
    expect(page).to_have_url(f'{cluster.flower.base_url}/workflow/{second}')
    expect(page.locator('#workflow-graph .wf-node')).to_have_count(2)
    assert_no_browser_problems(page)


def test_task_ids_are_shown_as_text(page, cluster):
    hostile = f'<img src=x onerror=window.__xss=1>{uuid.uuid4().hex}'
    first = signature(cluster, 'tasks.add', 1, 1).set(task_id=hostile)
    result = chain(first, signature(cluster, 'tasks.add', 1)).apply_async()
    assert result.get(timeout=30) == 3
    wait_known(cluster, result.id)

    open_workflow(page, cluster, result.id)

    expect(page.locator('#workflow-graph .wf-node')).to_have_count(2)
    expect(graph_node(page, result.id)).to_have_attribute('data-state', 'SUCCESS')
    assert page.locator('#workflow-graph title', has_text=hostile).count() == 1
    assert page.locator('#workflow img, #workflow-graph img').count() == 0
    assert page.evaluate('window.__xss') is None
    assert_no_browser_problems(page)


def test_without_event_source_the_page_polls(page, cluster):
    page.add_init_script('delete window.EventSource;')
    steps = [signature(cluster, 'tasks.sleep', 1) for _ in range(2)]
    result = chain(*[step.set(immutable=True) for step in steps]).apply_async()
    first, second = ids_of(result)
    wait_known(cluster, first)

    open_workflow(page, cluster, first)
    expect(page.locator('#workflow')).not_to_have_attribute('data-stream', re.compile('.'))
    expect(graph_node(page, second)).to_have_attribute('data-state', 'SUCCESS', timeout=20_000)
    assert page.evaluate('window.loadedOnce') is True
