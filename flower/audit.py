"""The audit trail: who changed what, from where, when, and how it went.

Every mutating API or control request is recorded once, when it finishes
(see :meth:`flower.api.BaseApiHandler.on_finish`), refusals included. A
record is written as one JSON line to the ``flower.audit`` logger, kept in a
bounded ring in memory (newest first) and, with ``--persistent``, in the
history file (:mod:`flower.audit_store`), where it outlives restarts.
Records never hold request bodies, cookies, tokens or passwords: only the
fields :meth:`AuditTrail.record` takes.
"""
import asyncio
import collections
import datetime
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any
from urllib.parse import unquote

from flower import audit_store
from flower.history import History
from flower.utils import describe_error

#: One JSON line per recorded action, and nothing else: readers parse every line.
audit_logger = logging.getLogger('flower.audit')
#: Failures to store records; not ``__name__``, which is the audit log itself.
logger = logging.getLogger(audit_store.__name__)

#: Path segments the same handlers are served under: ``/api`` for scripts, ``/control`` for pages.
_ROUTE_ROOTS = ('api', 'control')
#: Longest text kept of a target or of an outcome's value.
MAX_TEXT = 200
#: Most targets kept in a record; a bulk action on more says how many more there were.
MAX_TARGETS = 100


def action_of(path: str, path_args: Sequence[str], url_prefix: str = '') -> str:
    """The action a request's route names: ``/api/worker/pool/grow/w@h`` with the path
    argument ``w@h`` → ``'worker.pool.grow'``; ``/control/...`` names the same actions."""
    path = unquote(path, errors='replace').removeprefix(url_prefix)
    for argument in reversed(path_args):
        if argument and path.removesuffix('/').endswith('/' + argument):
            path = path.removesuffix('/')[:-len(argument) - 1]
    segments = [segment for segment in path.split('/') if segment]
    if segments and segments[0] in _ROUTE_ROOTS:
        segments = segments[1:]
    return '.'.join(segments)[:MAX_TEXT] or 'unknown'


def short(value: Any) -> Any:
    """``value`` if JSON keeps it as it is and it is short, else its text cut to
    :data:`MAX_TEXT` characters."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + '…'


def _kept_targets(targets: Sequence[Any]) -> list[str]:
    kept = [short(str(target)) for target in targets[:MAX_TARGETS]]
    if len(targets) > MAX_TARGETS:
        kept.append(f"… and {len(targets) - MAX_TARGETS} more")
    return kept


def utc_now() -> str:
    """The time now, as ISO 8601 in UTC."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='milliseconds')


class AuditTrail:
    """The records of one Flower: the newest ``size`` in memory; all of them in the
    history file when ``history()`` gives an open :class:`~flower.history.History`."""

    def __init__(self, history: Callable[[], History | None] = lambda: None,
                 size: int = 1000) -> None:
        self.records = collections.deque(maxlen=max(size, 1))
        self._history = history
        self._table_in = None  # the store whose audit table is known to exist

    def _open_history(self) -> History | None:
        """The open history, its audit table created (on the writer thread) on first use."""
        history = self._history()
        if history is None or history.store is None:
            return None
        if self._table_in is not history.store:
            history.submit(audit_store.create_table, history.store)
            self._table_in = history.store
        return history

    def record(self, user: str, address: str | None, action: str, targets: Sequence[str],
               status: int, outcome: dict[str, Any]) -> dict[str, Any]:
        """Record one action (on the IO loop) and return its record."""
        entry = {
            'time': utc_now(), 'user': user, 'address': address, 'action': action,
            'targets': _kept_targets(targets), 'status': status,
            'outcome': {str(key): short(value) for key, value in outcome.items()},
        }
        audit_logger.info(json.dumps(entry, ensure_ascii=False))
        self.records.appendleft(entry)
        history = self._open_history()
        if history is not None:
            history.submit(audit_store.insert, history.store, [entry]).add_done_callback(
                self._written)
        return entry

    @staticmethod
    def _written(future: Future) -> None:
        error = future.exception()
        if error is not None:
            logger.error("Writing an audit record to the history failed: %s (it is in the "
                         "flower.audit log and in memory)", describe_error(error))

    async def page(self, limit: int, offset: int = 0, action: str | None = None,
                   user: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        """``(how many records match, the page of them)``, newest first."""
        history = self._open_history()
        if history is not None:
            try:
                return await asyncio.wrap_future(history.submit(
                    audit_store.select, history.store, limit, offset, action, user))
            except Exception:
                # A database out of reach: the records kept in memory, as without one.
                if history.available():
                    raise
        matching = [entry for entry in self.records
                    if (action is None or entry['action'] == action)
                    and (user is None or entry['user'] == user)]
        return len(matching), matching[offset:offset + limit]
