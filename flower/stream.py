"""The changes applied to the state, numbered, for ``/api/events`` clients.

Every task or worker event the IO loop applies becomes one record
``(id, event type, task uuid or worker host name)`` in a ring of fixed size.
Clients do not get a queue each: each remembers the last id it sent and reads
the ring from there at its own pace, so publishing costs the same whatever
the number of clients, and a client that stops reading slows nobody. One
that falls a whole ring behind is told how many changes it missed.

A worker that dies says no goodbye: Celery sends no event when its heartbeats
stop. :class:`HeartbeatWatch` finds such workers, so that the feed tells its
clients with a ``worker-offline`` change of its own.
"""
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from tornado.locks import Condition

#: Event types that become records: every task event and the worker's own.
STREAMED_PREFIXES = ('task-', 'worker-')


class ChangeFeed:
    """The last ``size`` changes, numbered in the order they were applied from a
    number after ``start``.

    Without ``start`` it is random, different in every process: a client that a
    load balancer sends to another replica when it reconnects presents an id
    that is not this feed's, and gets a reset rather than the wrong changes.
    """

    def __init__(self, size: int = 10000, start: int | None = None) -> None:
        self.size = max(1, size)
        self._slots = [None] * self.size
        # At most 2**52 + the changes of a lifetime: still exact as a JavaScript number.
        self._start = secrets.randbelow(2 ** 40) << 12 if start is None else start
        self.last_id = self._start
        self._changed = Condition()
        #: ``((after id, up to id), bytes)``: the last chunk built for clients without
        #: filters, which the others at the same place send as it is.
        self.shared_chunk = (None, b'')

    @property
    def first_id(self) -> int:
        """The id of the oldest change still kept (``last_id + 1`` when none is)."""
        return max(self._start + 1, self.last_id - self.size + 1)

    def publish(self, changes: list[tuple[str, str]]) -> None:
        """Number and keep ``(event type, key)`` changes, then wake the clients."""
        if not changes:
            return
        slots, size, last = self._slots, self.size, self.last_id
        for kind, key in changes:
            last += 1
            slots[last % size] = [last, kind, key, None]
        self.last_id = last
        self._changed.notify_all()

    def since(self, seen: int) -> tuple[int, list[list]]:
        """``(skipped, records)``: the records after id ``seen``, and how many of those
        were already overwritten. A record is ``[id, kind, key, rendered]``; the last
        slot is free for the first reader to keep what it rendered."""
        last = self.last_id
        if seen >= last:
            return 0, []
        first = self.first_id
        start = max(seen + 1, first)
        slots, size = self._slots, self.size
        return start - (seen + 1), [slots[number % size] for number in range(start, last + 1)]

    async def wait(self, timeout: float) -> bool:
        """Wait for new changes; ``False`` if ``timeout`` seconds passed without any."""
        return await self._changed.wait(timeout=timedelta(seconds=timeout))


class HeartbeatWatch:
    """Which workers went silent since the last look: alive then, their heartbeats now
    expired, and no ``worker-offline`` event of their own (that one is in the feed already)."""

    def __init__(self) -> None:
        self._alive = set()

    def went_silent(self, workers: Mapping[str, Any]) -> list[str]:
        """The names of the workers that went silent since the last call, sorted."""
        known = dict(workers.items())
        alive = {name for name, worker in known.items() if worker.alive}
        silent = sorted(name for name in self._alive - alive if name in known
                        and getattr(known[name], 'type', None) != 'worker-offline')
        self._alive = alive
        return silent
