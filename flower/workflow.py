"""A workflow (a Celery canvas: chains, groups, chords) as a graph: nodes, edges, layout.

:func:`build_workflow` is a pure function of the tasks found
(:mod:`flower.workflow_lookup` finds them) and of the group each belongs to.

What links tasks, as Celery's events and result backend show them:

* A chain's next task is sent by the task before it: its ``parent_id`` is
  that task, its ``root_id`` the chain's first task. So is a task started
  from inside another one. These links come with the events.
* A group's members carry the group id only in their message headers and in
  their result backend records (``group_id``), never in events. Sent from a
  task, they share that parent; sent by a client, each is a root of its own.
* A chord's callback is sent by whichever header member finishes last: its
  ``parent_id`` is that member, and its backend record carries the header's
  group id. A task in the group of its own parent is therefore a chord
  callback, and every header member leads to it.
"""
from collections.abc import Mapping
from typing import Any

#: The times of a task, in the order they happen.
TIMES = ('sent', 'received', 'started', 'succeeded', 'failed', 'retried', 'revoked', 'rejected')
#: The events that end a task; the node's ``finished`` is the first of these it has.
ENDINGS = ('succeeded', 'failed', 'revoked', 'rejected')


def _value(task: Any, field: str) -> Any:
    return task.__dict__.get(field)


def _hostname(task: Any) -> str | None:
    worker = _value(task, 'worker')
    return getattr(worker, 'hostname', worker)


def chord_callbacks(tasks: Mapping[str, Any], group_ids: Mapping[str, str]) -> dict[str, str]:
    """``{callback id: header group id}``: the tasks in the group of their own parent."""
    callbacks = {}
    for uuid, task in tasks.items():
        group = group_ids.get(uuid)
        parent = _value(task, 'parent_id')
        if group is not None and parent is not None and group_ids.get(parent) == group:
            callbacks[uuid] = group
    return callbacks


def workflow_edges(tasks: Mapping[str, Any], group_ids: Mapping[str, str],
                   callbacks: Mapping[str, str]) -> list[dict[str, str]]:
    """``parent`` edges (a task → what it sent: a chain's next step, a group's members,
    a subtask) and ``chord`` edges (each header member → the callback)."""
    header = {}
    for uuid in tasks:
        group = group_ids.get(uuid)
        if group is not None and uuid not in callbacks:
            header.setdefault(group, []).append(uuid)
    edges = []
    for uuid, task in tasks.items():
        if uuid in callbacks:
            edges.extend({'from': member, 'to': uuid, 'kind': 'chord'}
                         for member in header.get(callbacks[uuid], ()))
            continue
        parent = _value(task, 'parent_id')
        if parent in tasks and parent != uuid:
            edges.append({'from': parent, 'to': uuid, 'kind': 'parent'})
    return edges


def _started_order(task: Any) -> tuple:
    return tuple(_value(task, field) or float('inf') for field in ('sent', 'received'))


def layout(tasks: Mapping[str, Any], edges: list[dict[str, str]],
           group_ids: Mapping[str, str]) -> dict[str, tuple[int, int]]:
    """``{uuid: (column, row)}``: a task's column is the longest path leading to it (a
    chain runs left to right, a chord's callback comes after its whole header); in a
    column, tasks are stacked by group, then in the order they were sent."""
    incoming: dict[str, list[str]] = {uuid: [] for uuid in tasks}
    for edge in edges:
        incoming[edge['to']].append(edge['from'])
    column: dict[str, int] = {}

    def depth(uuid: str) -> int:
        # Iterative: a chain of thousands of tasks must not exhaust the stack.
        stack, on_path = [uuid], set()
        while stack:
            current = stack[-1]
            if current in column:
                stack.pop()
                continue
            waiting = [source for source in incoming[current]
                       if source not in column and source not in on_path]
            if waiting:
                on_path.add(current)
                stack.extend(waiting)
                continue
            column[current] = 1 + max((column.get(source, -1) for source in incoming[current]),
                                      default=-1)
            on_path.discard(current)
            stack.pop()
        return column[uuid]

    for uuid in tasks:
        depth(uuid)
    by_column: dict[int, list[str]] = {}
    for uuid in tasks:
        by_column.setdefault(column[uuid], []).append(uuid)
    positions = {}
    for number, members in by_column.items():
        members.sort(key=lambda uuid: (group_ids.get(uuid) or '', _started_order(tasks[uuid]),
                                       uuid))
        for row, uuid in enumerate(members):
            positions[uuid] = (number, row)
    return positions


def node(uuid: str, task: Any, group: str | None, chord: str | None,
         position: tuple[int, int]) -> dict[str, Any]:
    """One task of the graph: what it is, where it ran, its times and its place."""
    fields = {
        'id': uuid, 'name': _value(task, 'name'), 'state': task.state,
        'worker': _hostname(task), 'parent': _value(task, 'parent_id'),
        'root': _value(task, 'root_id'), 'group': group, 'chord': chord,
    }
    fields.update((field, _value(task, field)) for field in TIMES)
    fields['finished'] = next((fields[field] for field in ENDINGS if fields[field]), None)
    fields['runtime'] = _value(task, 'runtime')
    fields['column'], fields['row'] = position
    return fields


def build_workflow(task_id: str, tasks: Mapping[str, Any], group_ids: Mapping[str, str],
                   truncated: bool = False, groups_known: bool = True) -> dict[str, Any]:
    """The workflow of ``task_id`` as ``/api/workflow/<id>`` answers it.

    ``tasks`` are the workflow's tasks by id (``task_id`` among them),
    ``group_ids`` the group of those that have one; ``truncated`` says some
    tasks were left out, ``groups_known`` that group ids could be read.
    """
    callbacks = chord_callbacks(tasks, group_ids)
    edges = workflow_edges(tasks, group_ids, callbacks)
    positions = layout(tasks, edges, {uuid: group for uuid, group in group_ids.items()
                                      if uuid not in callbacks})
    nodes = [node(uuid, task, None if uuid in callbacks else group_ids.get(uuid),
                  callbacks.get(uuid), positions[uuid]) for uuid, task in tasks.items()]
    nodes.sort(key=lambda item: (item['column'], item['row']))
    groups: dict[str, dict[str, Any]] = {}
    for item in nodes:
        if item['group'] is not None:
            groups.setdefault(item['group'], {'id': item['group'], 'members': [], 'chord': None})
            groups[item['group']]['members'].append(item['id'])
    for callback, group in callbacks.items():
        groups.setdefault(group, {'id': group, 'members': [], 'chord': None})['chord'] = callback
    asked = tasks[task_id]
    root = _value(asked, 'root_id') or task_id
    sources = [item['id'] for item in nodes if item['column'] == 0]
    return {
        'id': task_id, 'root': root, 'roots': sources, 'nodes': nodes, 'edges': edges,
        'groups': list(groups.values()), 'groups_known': groups_known, 'truncated': truncated,
    }
