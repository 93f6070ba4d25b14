"""Queue lengths sampled over time, for the broker page's graph and the queue gauge.

Flower asks the broker for queue lengths every few seconds (see
``Flower.sample_queues``); this module only remembers the answers. The
history is bounded, so a Flower running for months keeps the last
``maxlen`` samples and nothing more.
"""
import collections
from collections.abc import Iterable, Mapping
from typing import Any


class QueueHistory:
    """Bounded history of queue-length samples for the broker page's graph and the queue gauge.

    A failed sample is kept as a gap (no value for any queue at its time), so
    a graph shows the outage instead of joining the points around it.
    """

    def __init__(self, maxlen: int = 720) -> None:
        self._samples = collections.deque(maxlen=maxlen)
        self._latest = None
        self._error = None

    def record(self, timestamp: float, lengths: Iterable[Mapping[str, Any]]) -> None:
        """Keep ``lengths`` (what ``queue_lengths`` returned) as the sample taken at ``timestamp``."""
        lengths = [dict(queue) for queue in lengths]
        self._samples.append((timestamp, {queue['name']: queue.get('messages') for queue in lengths}))
        self._latest = (timestamp, lengths)
        self._error = None

    def record_error(self, timestamp: float, error: str) -> None:
        """Remember why the sample of ``timestamp`` could not be taken."""
        self._samples.append((timestamp, None))
        self._error = error

    @property
    def latest(self) -> tuple[float, list[dict[str, Any]]] | None:
        """``(timestamp, lengths)`` of the last successful sample, or ``None``."""
        return self._latest

    @property
    def error(self) -> str | None:
        """Why the last sample failed; ``None`` once a sample succeeds again."""
        return self._error

    def series(self) -> dict[str, Any]:
        """``{'timestamps': [...], 'queues': {name: [messages or None, ...]}}``, aligned.

        Every kept sample has a timestamp; a queue gets ``None`` where it was
        not sampled (it appeared later, vanished, or the sample failed).
        Queues with no value left in the history are not listed.
        """
        timestamps = [timestamp for timestamp, _ in self._samples]
        names = sorted({name for _, lengths in self._samples if lengths for name in lengths})
        queues = {name: [lengths.get(name) if lengths else None for _, lengths in self._samples]
                  for name in names}
        return {'timestamps': timestamps, 'queues': queues}

    def __len__(self) -> int:
        return len(self._samples)
