"""Worker inspection over the broker, run off the IO loop with a bounded timeout.

A refresh of every worker asks for what the dashboard and ``/api/workers``
show; the task lists (active, reserved, scheduled, revoked) are asked of one
worker at a time, as Flower 2.2 does, so refreshing a large fleet stays cheap.

An inspection stops waiting as soon as every worker it expects has replied:
the worker asked, or for a refresh of every worker the names the application
expects (:func:`flower.workers.expected_repliers`); otherwise it waits for
replies until ``timeout`` passes without one, as Celery does.
"""
import asyncio
import collections
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from celery import Celery
from tornado.ioloop import IOLoop

from flower.utils import describe_error
from flower.utils.broker import broadcast_connection, run_detached

logger = logging.getLogger(__name__)

#: Inspections (of all workers or one) running at once by default; the others wait.
MAX_CONCURRENT_INSPECTIONS = 2


class Inspection(list):
    """``[(method, replies), ...]`` of the methods that answered; ``error`` names what
    the broker raised for the others (``None`` when every method answered)."""

    error: str | None = None


class _AllReplied(Exception):
    """Raised from Celery's reply callback to stop waiting: every expected worker replied."""


def _retrieve_outcome(future: asyncio.Future) -> None:
    """Mark an inspection's failure as seen: every caller waiting for it may have gone."""
    if not future.cancelled():
        future.exception()


class Inspector:
    """Keeps the latest reply of every inspect method, per worker name."""

    #: The inspect commands a refresh of one worker runs.
    inspect_methods = ('stats', 'active_queues', 'registered', 'scheduled',
                       'active', 'reserved', 'revoked', 'conf')
    #: What a refresh of every worker runs: no task lists (see the module's docstring).
    fleet_methods = ('stats', 'active_queues', 'registered', 'conf')
    #: The name code written for earlier versions reads.
    methods = inspect_methods

    def __init__(self, io_loop: IOLoop, capp: Celery, timeout: float,
                 max_concurrency: int = MAX_CONCURRENT_INSPECTIONS,
                 expected: Callable[[], Collection[str] | None] | None = None) -> None:
        self.io_loop = io_loop
        self.capp = capp
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        #: The workers a refresh of every worker may stop waiting for once they
        #: replied, asked as it starts; ``None`` (or no function) waits the whole timeout.
        self.expected = expected or (lambda: None)
        #: True once an inspection of every worker has waited its whole timeout and
        #: answered: the one that finds the workers that send no events.
        self.surveyed = False
        self.workers = collections.defaultdict(dict)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._waiting = {}
        self._of_everyone = set()  # inspections of every worker, waiting or running

    async def inspect(self, workername: str | None = None) -> Inspection:
        """Run the inspect methods of one worker (:attr:`inspect_methods`) or of every
        worker (:attr:`fleet_methods`) concurrently; return their :class:`Inspection`.

        Replies are merged into :attr:`workers`. A broker failure is logged in
        one warning line and named by the inspection's ``error``, once every
        method has finished, so one slow method never leaves others running.
        Inspections wait for one of ``max_concurrency`` slots, so requests
        cannot fan out broadcasts, threads and broker connections without
        bound; callers asking for the same worker (or all) while an inspection
        of it waits for its slot share that one.
        """
        waiting = self._waiting.get(workername)
        if waiting is None:
            waiting = asyncio.ensure_future(self._inspect(workername))
            self._waiting[workername] = waiting
            waiting.add_done_callback(_retrieve_outcome)
            if workername is None:
                self._of_everyone.add(waiting)
                waiting.add_done_callback(self._of_everyone.discard)
        return await asyncio.shield(waiting)

    async def inspections_under_way(self) -> None:
        """Wait for the inspections of every worker already under way; start none.

        A worker that sends no events is known once one of them has answered
        (the one made at start, for instance).
        """
        if self._of_everyone:
            await asyncio.wait(set(self._of_everyone))

    async def _inspect(self, workername: str | None) -> Inspection:
        try:
            await self._slots.acquire()
        finally:
            del self._waiting[workername]  # later callers start a fresh inspection
        try:
            return await self._inspect_now(workername)
        finally:
            self._slots.release()

    async def _inspect_now(self, workername: str | None) -> Inspection:
        methods = self.inspect_methods if workername else self.fleet_methods
        expected = {workername} if workername else self.expected()
        calls = [run_detached(self._run_method, method, workername, expected)
                 for method in methods]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        inspection = Inspection()
        for method, outcome in zip(methods, outcomes):
            if isinstance(outcome, Exception):
                inspection.error = inspection.error or describe_error(outcome)
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            self._remember(method, outcome)
            inspection.append((method, outcome))
        if inspection.error is not None:
            logger.warning("Inspecting %s failed: %s",
                           f"worker {workername}" if workername else "every worker",
                           inspection.error)
        elif workername is None and not expected:
            self.surveyed = True
        return inspection

    def _run_method(self, method: str, workername: str | None,
                    expected: Collection[str] | None = None) -> dict[str, Any]:
        """Send ``method`` to ``workername`` (or every worker); return the replies, by
        worker name, once all of ``expected`` replied or else after the timeout."""
        destination = [workername] if workername else None
        expected = set(expected or ())
        replies = {}

        def on_reply(reply: Any) -> None:
            if isinstance(reply, dict):
                replies.update(reply)
            if expected and expected <= replies.keys():
                raise _AllReplied

        # A connection of its own per call: concurrent calls sharing the app's
        # default connection pool can block each other until the pool times out.
        with broadcast_connection(self.capp) as connection:
            inspect = self.capp.control.inspect(timeout=self.timeout, destination=destination,
                                                connection=connection, callback=on_reply)
            try:
                if method == 'conf':
                    inspect.conf(with_defaults=False)
                elif method == 'active':
                    # Arguments as the worker's repr, as Flower 2.2 shows them.
                    inspect.active(safe=True)
                else:
                    getattr(inspect, method)()
            except _AllReplied:
                pass
        return replies

    def _remember(self, method: str, replies: dict[str, Any]) -> None:
        now = time.time()
        for worker_name, reply in replies.items():
            info = self.workers[worker_name]
            info[method] = reply
            info['timestamp'] = now
