"""Acting on many tasks at once: revoke, terminate or retry a list of ids, or every
task a filter (the filters and search of ``/api/tasks``) matches.

At most ``--bulk_action_limit`` tasks per call; a selection larger than that
is refused before anything is done. A dry run says which tasks would be
acted on, and does nothing. See docs/acting.rst.
"""
import collections
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

from celery import Celery

from flower import control, retry
from flower.task_listing import AtLeast
from flower.tasks import TaskFilter, Tasks

ACTIONS = ('revoke', 'terminate', 'retry')


class SelectionTooLarge(Exception):
    """More tasks are selected than one call may act on."""


async def select(tasks: Tasks, executor: Executor, limit: int, ids: list[str] | None = None,
                 task_filter: TaskFilter | None = None) -> list[str]:
    """The ids to act on: ``ids`` without repeats, or the tasks ``task_filter`` matches,
    newest first; ``SelectionTooLarge`` when there are more than ``limit``."""
    if ids is not None:
        selected = list(dict.fromkeys(ids))
        if len(selected) > limit:
            raise SelectionTooLarge(f"{len(selected)} task ids given, more than the "
                                    f"{limit} one call may act on (--bulk_action_limit)")
        return selected
    matching, pairs = await tasks.page(task_filter or TaskFilter(), executor, limit=limit + 1,
                                       count=True)
    if matching > limit:
        more = '+' if isinstance(matching, AtLeast) else ''
        raise SelectionTooLarge(f"{matching}{more} tasks match, more than the {limit} one call may "
                                "act on (--bulk_action_limit): narrow the filters or search")
    return [uuid for uuid, _ in pairs]


def _described(tasks: Tasks, task_id: str, outcome: str, **more: Any) -> dict[str, Any]:
    task = tasks.get(task_id)
    return dict({'task-id': task_id, 'name': getattr(task, 'name', None),
                 'state': getattr(task, 'state', None), 'outcome': outcome}, **more)


async def revoke(capp: Celery, tasks: Tasks, ids: list[str], terminate: bool = False,
                 signal: str = 'SIGTERM', dry_run: bool = False, timeout: float = 1.0,
                 expected_replies: int | None = None) -> list[dict[str, Any]]:
    """Revoke (or terminate) ``ids`` in one broadcast; one outcome per task.

    Revocations live in the workers' memory: when no worker answers, none
    took effect and :class:`flower.control.NoReply` says so.
    """
    done = 'terminated' if terminate else 'revoked'
    if dry_run or not ids:
        return [_described(tasks, task_id, 'would be ' + done if dry_run else done)
                for task_id in ids]
    try:
        await control.revoke(capp, ids, terminate=terminate, signal=signal, timeout=timeout,
                             expected_replies=expected_replies)
    except control.NoReply:
        raise control.NoReply(f"No worker replied to the revoke of {len(ids)} tasks within "
                              f"{timeout:g} s; none was revoked") from None
    return [_described(tasks, task_id, done) for task_id in ids]


async def retry_all(capp: Celery, tasks: Tasks, links: retry.RetryLinks, ids: list[str],
                    dry_run: bool = False) -> list[dict[str, Any]]:
    """Retry each of ``ids`` in turn; a task that cannot be retried is refused on its own,
    with the reason, and the others go on."""
    outcomes = []
    try:
        for task_id in ids:
            try:
                if dry_run:
                    await retry.plan(capp, retry.find(tasks, task_id))
                    outcomes.append(_described(tasks, task_id, 'would be retried'))
                else:
                    new_id = await retry.retry(capp, tasks, links, task_id, save=False)
                    outcomes.append(_described(tasks, task_id, 'retried', retry=new_id))
            except (retry.RetryRefused, retry.UnknownTaskId) as exc:
                outcomes.append(_described(tasks, task_id, 'refused', error=str(exc)))
    finally:
        if not dry_run and outcomes:
            links.save()
    return outcomes


def summary(outcomes: list[dict[str, Any]]) -> Mapping[str, int]:
    """How many tasks had each outcome."""
    return dict(collections.Counter(outcome['outcome'] for outcome in outcomes))
