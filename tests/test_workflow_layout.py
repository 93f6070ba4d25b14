"""The pure graph logic of :mod:`flower.workflow` on made-up tasks: edges, chord callbacks,
the layout of shapes the real-worker tests do not reach (nested chords, a diamond,
links that loop), and a long chain."""
from celery.events.state import Task

from flower.workflow import build_workflow


def task(uuid, parent=None, root=None, sent=0.0, state='SUCCESS', name='tasks.add'):
    made = Task(uuid)
    made.__dict__.update(name=name, parent_id=parent, root_id=root or uuid, sent=sent, state=state)
    return made


def tasks_of(*made):
    return {item.uuid: item for item in made}


def places(workflow):
    return {node['id']: (node['column'], node['row']) for node in workflow['nodes']}


def test_a_chord_inside_a_chain_comes_after_its_whole_header_then_the_chain_goes_on():
    # a → (b, c, d) → e (chord callback, sent by d, the last to finish) → f
    made = tasks_of(task('a'), task('b', 'a', 'a', 1), task('c', 'a', 'a', 2),
                    task('d', 'a', 'a', 3), task('e', 'd', 'a', 4), task('f', 'e', 'a', 5))
    groups = {'b': 'g', 'c': 'g', 'd': 'g', 'e': 'g'}

    workflow = build_workflow('c', made, groups)

    assert places(workflow) == {'a': (0, 0), 'b': (1, 0), 'c': (1, 1), 'd': (1, 2),
                                'e': (2, 0), 'f': (3, 0)}
    kinds = sorted((edge['from'], edge['to'], edge['kind']) for edge in workflow['edges'])
    assert kinds == [('a', 'b', 'parent'), ('a', 'c', 'parent'), ('a', 'd', 'parent'),
                     ('b', 'e', 'chord'), ('c', 'e', 'chord'), ('d', 'e', 'chord'),
                     ('e', 'f', 'parent')]
    assert workflow['groups'] == [{'id': 'g', 'members': ['b', 'c', 'd'], 'chord': 'e'}]
    nodes = {node['id']: node for node in workflow['nodes']}
    assert (nodes['e']['group'], nodes['e']['chord']) == (None, 'g')
    assert workflow['root'] == 'a' and workflow['roots'] == ['a']


def test_members_are_stacked_by_group_then_in_the_order_they_were_sent():
    made = tasks_of(task('p'), task('x2', 'p', 'p', 9), task('x1', 'p', 'p', 8),
                    task('y1', 'p', 'p', 1), task('lone', 'p', 'p', 5))
    groups = {'x1': 'gx', 'x2': 'gx', 'y1': 'gy'}

    column = [node['id'] for node in build_workflow('p', made, groups)['nodes']
              if node['column'] == 1]

    assert column == ['lone', 'x1', 'x2', 'y1']


def test_links_that_loop_do_not_hang_the_layout():
    made = tasks_of(task('a', parent='b'), task('b', parent='a'), task('c', parent='c'))

    workflow = build_workflow('a', made, {})

    assert sorted(places(workflow)) == ['a', 'b', 'c']
    assert ('c', 'c') not in {(edge['from'], edge['to']) for edge in workflow['edges']}


def test_a_long_chain_is_laid_out_without_recursion():
    made = tasks_of(task('t0'), *[task(f't{n}', f't{n - 1}', 't0', n) for n in range(1, 5000)])

    workflow = build_workflow('t4999', made, {})

    assert workflow['nodes'][-1] == {**workflow['nodes'][-1], 'id': 't4999', 'column': 4999}


def test_a_node_says_when_and_how_its_task_ended():
    failed = task('a', state='FAILURE')
    failed.__dict__.update(received=1.0, started=2.0, failed=3.5, runtime=1.5)
    running = task('b', parent='a', root='a', state='STARTED')
    running.__dict__.update(received=4.0, started=4.5)

    nodes = build_workflow('a', tasks_of(failed, running), {}, truncated=True,
                           groups_known=False)

    first, second = nodes['nodes']
    assert (first['state'], first['finished'], first['runtime']) == ('FAILURE', 3.5, 1.5)
    assert (second['state'], second['finished'], second['started']) == ('STARTED', None, 4.5)
    assert (nodes['truncated'], nodes['groups_known']) == (True, False)
