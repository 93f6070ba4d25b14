"""Worker inspection over the broker, run off the IO loop with a bounded timeout."""
import asyncio
import collections
import logging
import time
from typing import Any

from celery import Celery
from tornado.ioloop import IOLoop

from flower.utils.broker import broadcast_connection, run_detached

logger = logging.getLogger(__name__)

#: Inspections (of every method, for all workers or one) running at once; the others wait.
MAX_CONCURRENT_INSPECTIONS = 2


def _retrieve_outcome(future: asyncio.Future) -> None:
    """Mark an inspection's failure as seen: every caller waiting for it may have gone."""
    if not future.cancelled():
        future.exception()


class Inspector:
    """Keeps the latest reply of every inspect method, per worker name."""

    methods = ('stats', 'active_queues', 'registered', 'scheduled',
               'active', 'reserved', 'revoked', 'conf')

    def __init__(self, io_loop: IOLoop, capp: Celery, timeout: float) -> None:
        self.io_loop = io_loop
        self.capp = capp
        self.timeout = timeout
        self.workers = collections.defaultdict(dict)
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_INSPECTIONS)
        self._waiting = {}
        self._of_everyone = set()  # inspections of every worker, waiting or running

    async def inspect(self, workername: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Run every inspect method concurrently; return ``[(method, replies), ...]``.

        Replies are merged into :attr:`workers`. A broker failure is raised after
        all methods have finished, so one slow method never leaves others running.
        Inspections wait for one of :data:`MAX_CONCURRENT_INSPECTIONS` slots, so
        requests cannot fan out broadcasts, threads and broker connections
        without bound; callers asking for the same worker (or all) while an
        inspection of it waits for its slot join that one.
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

    async def _inspect(self, workername: str | None) -> list[tuple[str, dict[str, Any]]]:
        try:
            await self._slots.acquire()
        finally:
            del self._waiting[workername]  # later callers start a fresh inspection
        try:
            return await self._inspect_now(workername)
        finally:
            self._slots.release()

    async def _inspect_now(self, workername: str | None) -> list[tuple[str, dict[str, Any]]]:
        calls = [run_detached(self._run_method, method, workername) for method in self.methods]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        failure = None
        results = []
        for method, outcome in zip(self.methods, outcomes):
            if isinstance(outcome, BaseException):
                failure = failure or outcome
                continue
            self._remember(method, outcome)
            results.append((method, outcome))
        if failure is not None:
            raise failure
        return results

    def _run_method(self, method: str, workername: str | None) -> dict[str, Any]:
        destination = [workername] if workername else None
        # A connection of its own per call: concurrent calls sharing the app's
        # default connection pool can block each other until the pool times out.
        with broadcast_connection(self.capp) as connection:
            inspect = self.capp.control.inspect(timeout=self.timeout, destination=destination,
                                                connection=connection)
            if method == 'conf':
                return inspect.conf(with_defaults=False) or {}
            return getattr(inspect, method)() or {}

    def _remember(self, method: str, replies: dict[str, Any]) -> None:
        now = time.time()
        for worker_name, reply in replies.items():
            info = self.workers[worker_name]
            info[method] = reply
            info['timestamp'] = now
