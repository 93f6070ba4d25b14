"""``/api/workflow/<id>`` with real workers and a Redis result backend: chains, groups and
chords are found from any of their tasks; tasks evicted from memory come from the history.

One private Redis (broker and result backend) and one worker are shared by the
module; each test sends its own canvas and waits for its result.
"""
import os
import uuid

import pytest
import requests
from celery import chain, chord, group

from tests.support.api_cluster import Api, Cluster
from tests.support.processes import REPO_DIR, free_port
from tests.support.waiting import wait_for

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'workflow')


@pytest.fixture(scope='module')
def cluster():
    with Cluster(ARTIFACTS, env={'FLOWER_UNAUTHENTICATED_API': 'true'}) as started:
        [started.worker] = started.start_workers({
            'name': f'workflow-{uuid.uuid4().hex[:6]}@localhost', 'pool': 'threads',
            'concurrency': 4})
        started.flower = started.start_flower()
        started.api = Api(started.flower)
        started.wait_known(started.flower, started.worker)
        yield started


def add(cluster, *args):
    return cluster.client.signature('tasks.add', args)


def ids_of(result):
    """The ids of a result and of every parent it has, first first."""
    found = []
    while result is not None:
        found.insert(0, result.id)
        result = result.parent
    return found


def workflow_when(cluster, task_id, done):
    """The workflow of ``task_id`` once ``done(workflow)`` holds (events arrive after
    results do)."""
    answers = []

    def check():
        response = cluster.api.get(f'/api/workflow/{task_id}')
        answers.append(response.json())
        return response.status_code == 200 and done(answers[-1])

    wait_for(check, what=f'the workflow of {task_id}')
    return answers[-1]


def all_succeeded(count):
    return lambda workflow: (len(workflow['nodes']) == count
                             and all(node['state'] == 'SUCCESS' for node in workflow['nodes']))


def edges(workflow):
    return sorted((edge['from'], edge['to'], edge['kind']) for edge in workflow['edges'])


def test_a_chain_of_three_is_three_nodes_left_to_right(cluster):
    result = chain(add(cluster, 1, 1), add(cluster, 2), add(cluster, 3)).apply_async()
    assert result.get(timeout=30) == 7
    first, second, third = ids_of(result)

    workflow = workflow_when(cluster, second, all_succeeded(3))

    assert workflow['id'] == second
    assert workflow['root'] == first
    assert workflow['roots'] == [first]
    assert [node['id'] for node in workflow['nodes']] == [first, second, third]
    assert [(node['column'], node['row']) for node in workflow['nodes']] == [(0, 0), (1, 0), (2, 0)]
    assert edges(workflow) == sorted([(first, second, 'parent'), (second, third, 'parent')])
    assert workflow['groups'] == []
    assert workflow['groups_known'] is True and workflow['truncated'] is False
    for node in workflow['nodes']:
        assert node['name'] == 'tasks.add'
        assert node['worker'] == cluster.worker.hostname
        assert node['received'] <= node['started'] <= node['succeeded'] == node['finished']
        assert node['runtime'] >= 0
    assert [node['parent'] for node in workflow['nodes']] == [None, first, second]
    # Any task of the chain names the same workflow.
    for task_id in (first, third):
        other = cluster.api.get(f'/api/workflow/{task_id}').json()
        assert [node['id'] for node in other['nodes']] == [first, second, third]


def test_a_group_of_five_sent_by_a_client_is_one_stacked_group(cluster):
    result = group(add(cluster, number, number) for number in range(5)).apply_async()
    assert result.get(timeout=30) == [0, 2, 4, 6, 8]
    members = [child.id for child in result.results]

    workflow = workflow_when(cluster, members[2], all_succeeded(5))

    assert sorted(node['id'] for node in workflow['nodes']) == sorted(members)
    assert workflow['edges'] == []
    assert workflow['groups'] == [{'id': result.id, 'members': workflow['groups'][0]['members'],
                                   'chord': None}]
    assert sorted(workflow['groups'][0]['members']) == sorted(members)
    assert {node['group'] for node in workflow['nodes']} == {result.id}
    assert sorted((node['column'], node['row']) for node in workflow['nodes']) == \
        [(0, row) for row in range(5)]
    assert sorted(workflow['roots']) == sorted(members)


def test_a_chord_of_four_leads_every_header_task_to_the_callback(cluster):
    header = [add(cluster, number, number) for number in range(4)]
    result = chord(header, cluster.client.signature('tasks.echo')).apply_async()
    assert result.get(timeout=30) == [0, 2, 4, 6]
    callback = result.id
    group_id = result.parent.id
    members = [child.id for child in result.parent.results]

    workflow = workflow_when(cluster, members[0], all_succeeded(5))

    assert sorted(node['id'] for node in workflow['nodes']) == sorted(members + [callback])
    assert edges(workflow) == sorted((member, callback, 'chord') for member in members)
    nodes = {node['id']: node for node in workflow['nodes']}
    assert nodes[callback]['name'] == 'tasks.echo'
    assert nodes[callback]['chord'] == group_id and nodes[callback]['group'] is None
    assert (nodes[callback]['column'], nodes[callback]['row']) == (1, 0)
    assert sorted(nodes[member]['column'] for member in members) == [0, 0, 0, 0]
    assert workflow['groups'] == [{'id': group_id, 'members': workflow['groups'][0]['members'],
                                   'chord': callback}]
    assert sorted(workflow['groups'][0]['members']) == sorted(members)
    # The callback names the same workflow.
    again = cluster.api.get(f'/api/workflow/{callback}').json()
    assert sorted(node['id'] for node in again['nodes']) == sorted(nodes)


def test_a_group_inside_a_chain_hangs_from_the_task_before_it(cluster):
    result = chain(add(cluster, 1, 1), group(add(cluster, number) for number in range(3)),
                   cluster.client.signature('tasks.echo')).apply_async()
    assert result.get(timeout=30) == [2, 3, 4]

    workflow = workflow_when(cluster, result.id, all_succeeded(5))

    nodes = {node['id']: node for node in workflow['nodes']}
    [first] = workflow['roots']
    [members_group] = workflow['groups']
    members = members_group['members']
    assert members_group['chord'] == result.id
    assert edges(workflow) == sorted([(first, member, 'parent') for member in members]
                                     + [(member, result.id, 'chord') for member in members])
    assert [nodes[first]['column']] + sorted(nodes[member]['column'] for member in members) \
        + [nodes[result.id]['column']] == [0, 1, 1, 1, 2]


def test_unknown_task_is_404(cluster):
    response = cluster.api.get('/api/workflow/no-such-task')

    assert response.status_code == 404
    assert 'no-such-task' in response.json()['error']


def assert_a_chain_is_linked_without_groups(cluster, result_backend, what):
    """A chain of two, seen by a Flower whose result backend is ``result_backend``:
    linked through its events alone, with groups unknown. Returns that Flower."""
    flower = cluster.start_flower(capp=cluster.make_app(result_backend=result_backend))
    cluster.wait_known(flower, cluster.worker)
    result = chain(add(cluster, 1, 1), add(cluster, 2)).apply_async()
    assert result.get(timeout=30) == 4
    first, second = ids_of(result)
    api = Api(flower)

    def linked():
        response = api.get(f'/api/workflow/{second}')
        return response.status_code == 200 and len(response.json()['nodes']) == 2

    wait_for(linked, what=f'the chain seen by the Flower {what}')
    workflow = api.get(f'/api/workflow/{second}').json()
    assert workflow['groups_known'] is False
    assert edges(workflow) == [(first, second, 'parent')]
    return flower


def test_without_a_result_backend_the_links_of_events_remain(cluster):
    assert_a_chain_is_linked_without_groups(cluster, None, 'without a backend')


def test_tasks_evicted_from_memory_come_from_the_history(cluster, tmp_path):
    flower = cluster.start_flower(persistent=True, db=str(tmp_path / 'history.db'), max_tasks=3,
                                  state_save_interval=200)
    api = Api(flower)
    cluster.wait_known(flower, cluster.worker)
    steps = [add(cluster, 1, 1)] + [add(cluster, 1) for _ in range(5)]
    result = chain(*steps).apply_async()
    assert result.get(timeout=30) == 7
    chain_ids = ids_of(result)

    def evicted():  # and the last one's events applied: the result can come before them
        in_memory = flower.call(lambda: set(flower.app.events.state.tasks.data))
        return (len(in_memory) == 3 and chain_ids[0] not in in_memory
                and chain_ids[-1] in in_memory)

    wait_for(evicted, what='the first tasks of the chain leaving memory')

    def whole():
        answer = api.get(f'/api/workflow/{chain_ids[-1]}').json()
        return all_succeeded(6)(answer) and answer

    # The history is written a batch at a time: the tasks that left memory come in.
    workflow = wait_for(whole, what='the whole chain from memory and the history')
    assert chain_ids[0] not in flower.call(lambda: set(flower.app.events.state.tasks.data))

    assert [node['id'] for node in workflow['nodes']] == chain_ids
    assert [node['column'] for node in workflow['nodes']] == list(range(6))
    assert edges(workflow) == sorted((parent, child, 'parent')
                                     for parent, child in zip(chain_ids, chain_ids[1:]))
    assert all(node['state'] == 'SUCCESS' for node in workflow['nodes'])
    # Asked from a task that left memory, too.
    assert api.get(f'/api/workflow/{chain_ids[0]}').json()['nodes'] == workflow['nodes']


def test_the_page_and_its_data_follow_the_pages_access_rules(cluster, monkeypatch):
    result = chain(add(cluster, 1, 1), add(cluster, 2)).apply_async()
    assert result.get(timeout=30) == 4
    workflow_when(cluster, result.id, all_succeeded(2))
    flower = cluster.flower
    monkeypatch.setattr(flower.options, 'basic_auth', ['alice:secret'])
    monkeypatch.delenv('FLOWER_UNAUTHENTICATED_API')
    session = requests.Session()
    for path in (f'/workflow/{result.id}', f'/workflow-data/{result.id}',
                 f'/api/workflow/{result.id}'):
        assert session.get(flower.base_url + path).status_code == 401, path
        assert session.get(flower.base_url + path, auth=('alice', 'secret')).status_code == 200
    monkeypatch.setattr(flower.options, 'read_only', True)
    data = session.get(f'{flower.base_url}/workflow-data/{result.id}', auth=('alice', 'secret'))
    assert len(data.json()['nodes']) == 2
    missing = session.get(f'{flower.base_url}/workflow-data/no-such-task', auth=('alice', 'secret'))
    assert (missing.status_code, missing.json()) == (404, {'error': "Unknown task 'no-such-task'"})
    page = session.get(f'{flower.base_url}/workflow/no-such-task', auth=('alice', 'secret'))
    assert page.status_code == 404 and 'no-such-task' in page.text


def test_an_unreachable_result_backend_leaves_the_links_of_events(cluster):
    unreachable = f'redis://127.0.0.1:{free_port()}/0'
    flower = assert_a_chain_is_linked_without_groups(cluster, unreachable,
                                                     'with an unreachable backend')
    api = Api(flower)
    lone = cluster.client.send_task('tasks.add', (2, 2))
    assert lone.get(timeout=30) == 4
    wait_for(lambda: api.get(f'/api/task/info/{lone.id}').status_code == 200,
             what='the lone task seen')
    page = requests.get(f'{flower.base_url}/task/{lone.id}', timeout=30)
    assert page.status_code == 200 and 'workflow-link' not in page.text
