"""Bringing the history of the original Flower along: its ``--persistent --db`` shelve.

Flower 2.x saves its state with Python's ``shelve``: a ``dbm`` database whose
key ``events`` holds a pickled Celery ``State`` (workers and tasks) and whose
key ``counter`` (when there) the per-worker event counters. Which ``dbm``
backend wrote it decides its files: ``dbm.dumb`` writes ``<db>.dat``,
``<db>.dir`` and ``<db>.bak``, ``dbm.ndbm`` ``<db>.db`` or ``<db>.pag`` and
``<db>.dir``, ``dbm.gnu`` one file at ``<db>`` itself.

At the first start with ``--persistent`` on such a ``--db``, its tasks,
workers and counters are copied into a new SQLite history, and the shelve is
left exactly as it was. The history is ``<db>`` itself when that path is free
(the shelve is in suffixed files), else ``<db>.sqlite``; later starts find
it there and import nothing. A shelve that cannot be read is renamed
``<db>.unreadable-<time>`` (suffixes kept) with one warning.

Unpickling runs code the pickle names, so only the file the user pointed
``--db`` at is read, and only through :class:`ShelveUnpickler`, which builds
nothing but the few plain types a Flower state is made of.
"""
import collections
import dbm
import dbm.dumb
import importlib.util
import io
import logging
import os
import pickle
import struct
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from celery.events.state import Worker

from flower.history_file import SQLITE_HEADER, NotAHistory
from flower.store import WORKER_FIELDS, TaskStore, task_row
from flower.utils import describe_error

logger = logging.getLogger(__name__)

#: The files ``dbm.dumb`` and ``dbm.ndbm`` write beside (not at) the path they are given.
SUFFIXED_FORMS = {'dbm.dumb': ('.dat', '.dir', '.bak'), 'dbm.ndbm': ('.db', '.pag', '.dir')}
#: What ``dbm.gnu`` files start with, in either byte order (the same below).
_GNU_MAGICS = {0x13579ace, 0x13579acd, 0x13579acf}
#: What Berkeley DB hash and B-tree files (``dbm.ndbm``'s ``.db``) hold at byte 12.
_BERKELEY_MAGICS = {0x00061561, 0x00053162}
#: Where the history goes when ``<db>`` itself is the shelve.
HISTORY_SUFFIX = '.sqlite'
_BACKEND_MODULES = {'dbm.dumb': None, 'dbm.ndbm': '_dbm', 'dbm.gnu': '_gdbm'}


class UnreadableShelve(Exception):
    """The shelve at ``--db`` is damaged or not the state of a Flower."""


def _dbm_magic(path: str) -> str | None:
    """``'gnu'`` or ``'berkeley'`` when the file at ``path`` starts as such databases do."""
    try:
        with open(path, 'rb') as existing:
            head = existing.read(16)
    except OSError:
        return None
    if len(head) < 16:
        return None
    if {struct.unpack('<I', head[:4])[0], struct.unpack('>I', head[:4])[0]} & _GNU_MAGICS:
        return 'gnu'
    if {struct.unpack('<I', head[12:])[0], struct.unpack('>I', head[12:])[0]} & _BERKELEY_MAGICS:
        return 'berkeley'
    return None


def shelve_kind(db: str) -> str | None:
    """The ``dbm`` module whose files hold a shelve at ``db`` (``'dbm.dumb'``...), or None."""
    if os.path.exists(db + '.dat') and os.path.exists(db + '.dir'):
        return 'dbm.dumb'
    if (os.path.exists(db + '.pag') and os.path.exists(db + '.dir')) or _dbm_magic(db + '.db'):
        return 'dbm.ndbm'
    return 'dbm.gnu' if _dbm_magic(db) == 'gnu' else None


def shelve_files(db: str, kind: str) -> list[str]:
    """The files of the ``kind`` shelve at ``db`` that exist."""
    names = [db + suffix for suffix in SUFFIXED_FORMS.get(kind, ('',))]
    return [name for name in names if os.path.exists(name)]


def backend_available(kind: str) -> bool:
    """Whether this Python has the ``dbm`` module that reads a ``kind`` shelve."""
    module = _BACKEND_MODULES[kind]
    return module is None or importlib.util.find_spec(module) is not None


def history_file(db: str) -> str:
    """The SQLite history of ``--db``: ``db`` unless a shelve file is at that very path
    (or an import into ``db.sqlite`` happened before)."""
    try:
        with open(db, 'rb') as existing:
            if existing.read(len(SQLITE_HEADER)) == SQLITE_HEADER:
                return db
    except OSError:
        pass
    if os.path.exists(db + HISTORY_SUFFIX) or shelve_kind(db) == 'dbm.gnu':
        return db + HISTORY_SUFFIX
    return db


def pending_import(db: str) -> str | None:
    """The kind of the shelve at ``db`` if it is still to be imported (its history does
    not exist yet), else None."""
    kind = shelve_kind(db)
    target = history_file(db)
    if kind is None or os.path.exists(target) and os.path.getsize(target) > 0:
        return None
    return kind


def check_shelve(db: str) -> None:
    """Raise :class:`~flower.history_file.NotAHistory` if ``db`` is a shelve to import that
    this Python cannot open (its ``dbm`` module is missing): nothing is touched then."""
    kind = pending_import(db)
    if kind is not None and not backend_available(kind):
        raise NotAHistory(f"{db} is a Flower shelve written by {kind}, which this Python "
                          f"lacks (no {_BACKEND_MODULES[kind]} module); start once with a "
                          "Python that has it to import the shelve")


class _PickledState:
    """What a pickled Celery ``State`` was built from: its constructor's arguments."""

    def __init__(self, *args: Any) -> None:
        self.args = args


class _PickledCache:
    """A pickled ``kombu`` LRU cache: its ``data`` mapping is all that is read."""


class _PickledTaskClass:
    """Stands for Celery's ``Task`` class, which the pickle names but is never built."""


def _pickled_task(cls: type, fields: dict) -> SimpleNamespace:
    if cls is not _PickledTaskClass or not isinstance(fields, dict):
        raise UnreadableShelve("a task in it is not a Celery task")
    return SimpleNamespace(**fields)


class ShelveUnpickler(pickle.Unpickler):
    """Builds only the types of a Flower state; any other name in the pickle refuses
    the file instead of importing and calling what it names."""

    allowed = {
        ('flower.events', 'EventsState'): _PickledState,
        ('celery.events.state', 'State'): _PickledState,
        ('kombu.utils.functional', 'LRUCache'): _PickledCache,
        ('celery.events.state', 'Task'): _PickledTaskClass,
        ('celery.events.state', '_depickle_task'): _pickled_task,
        ('celery.events.state', 'Worker'): Worker,
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('collections', 'Counter'): collections.Counter,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[module, name]
        except KeyError:
            raise UnreadableShelve(f"it names {module}.{name}, which a Flower state "
                                   "does not hold") from None


def _unpickle(data: bytes) -> Any:
    return ShelveUnpickler(io.BytesIO(data)).load()


def read_shelve(db: str, kind: str) -> tuple[list[SimpleNamespace], list[Worker], dict]:
    """The tasks (in the order Flower kept them), workers and counters of a shelve,
    reading its files only."""
    try:
        opened = dbm.dumb.open(db, 'r') if kind == 'dbm.dumb' else dbm.open(db, 'r')
        try:
            events, counter = opened.get(b'events'), opened.get(b'counter')
        finally:
            opened.close()
        state = _unpickle(events) if events is not None else None
        counters = _unpickle(counter) if counter is not None else {}
    except UnreadableShelve:
        raise
    except Exception as exc:  # a damaged file fails in any of dbm's or pickle's ways
        raise UnreadableShelve(f"it cannot be read ({describe_error(exc)})") from None
    if state is None:
        return [], [], counters
    if not isinstance(state, _PickledState) or not isinstance(counters, dict):
        raise UnreadableShelve("it does not hold a Flower state")
    caches = [arg.data for arg in state.args if isinstance(arg, _PickledCache)
              and isinstance(getattr(arg, 'data', None), dict)]
    tasks = [value for cache in caches for value in cache.values()
             if isinstance(value, SimpleNamespace)]
    workers = [value for cache in caches for value in cache.values() if isinstance(value, Worker)]
    if any(not isinstance(getattr(task, 'uuid', None), str) for task in tasks):
        raise UnreadableShelve("a task in it has no id")
    return tasks, workers, counters


def _counter_rows(counters: dict) -> Iterator[tuple[str, str, int]]:
    for hostname, counts in counters.items():
        if isinstance(counts, dict):
            yield from ((str(hostname), str(kind), int(count)) for kind, count in counts.items())


def import_shelve(db: str, kind: str, target: str) -> None:
    """Copy the shelve's state into a new history at ``target``, all or nothing: it is
    written beside and renamed into place once complete."""
    tasks, workers, counters = read_shelve(db, kind)
    partial = target + '.importing'
    for suffix in ('', '-wal', '-shm'):
        if os.path.exists(partial + suffix):
            os.remove(partial + suffix)
    store = TaskStore(partial)
    try:
        for task in tasks:
            vars(task).setdefault('state', None)
        store.write(tasks=[task_row(task, seq) for seq, task in enumerate(tasks)],
                    workers=[(worker.hostname, {name: getattr(worker, name, None)
                                                for name in WORKER_FIELDS}) for worker in workers],
                    counters=list(_counter_rows(counters)))
        store.save_setting('imported_from', db)
    finally:
        store.close()
    os.replace(partial, target)
    logger.info("Imported %d tasks and %d workers from the Flower shelve %s into the task "
                "history %s; the shelve is left as it was", len(tasks), len(workers), db, target)


def _move_aside(db: str, kind: str, reason: str) -> None:
    aside = f"{db}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}"
    for name in shelve_files(db, kind):
        os.replace(name, aside + name[len(db):])
    logger.warning("The Flower shelve %s could not be imported and was moved to %s; a new "
                   "task history is started: %s", db, aside, reason)


def prepare_history(db: str) -> str:
    """The path of ``--db``'s SQLite history, after importing a Flower shelve found at
    ``db`` into it if that history does not exist yet."""
    target = history_file(db)
    kind = pending_import(db)
    if kind is None:
        return target
    try:
        import_shelve(db, kind, target)
    except UnreadableShelve as exc:
        _move_aside(db, kind, str(exc))
    return target
