"""Which of several Flower replicas sharing one PostgreSQL history captures events.

Exactly one replica, the leader, reads events from the broker and writes the
history; the others follow what it writes (:mod:`flower.replica`). The leader
is whoever holds a PostgreSQL session-level advisory lock. The lock lives as
long as the session that took it: when the leader's process dies, PostgreSQL
ends the session and frees the lock, and the next follower to ask takes it.

A thread of its own keeps the session and asks once per ``interval``, so the
IO loop never waits on the database; role changes are handed to the IO loop.
"""
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from tornado.ioloop import IOLoop

from flower.capture import Backoff
from flower.utils import describe_error

logger = logging.getLogger(__name__)

#: The advisory lock every replica of one database competes for ("flower" in ASCII).
LEADER_LOCK_KEY = 0x666C6F776572

LEADER = 'leader'
FOLLOWER = 'follower'


class Leadership(threading.Thread):
    """Holds or waits for the leader's lock on ``url``; calls ``on_lead`` and
    ``on_follow`` on the IO loop when this replica's role changes.

    A replica that lost its session (the database restarted) asks for the lock
    again as soon as it is back; a follower that reconnected waits
    ``reconnect_grace`` seconds first, longer than the longest back-off, so the
    former leader, which captured all along and holds what it could not write,
    keeps its role.
    """

    def __init__(self, connect: Callable[[], Any], io_loop: IOLoop,
                 on_lead: Callable[[], None], on_follow: Callable[[], None],
                 interval: float = 1.0, reconnect_grace: float = 6.0) -> None:
        super().__init__(name='flower-leadership', daemon=True)
        self._connect = connect
        self.io_loop = io_loop
        self.on_lead = on_lead
        self.on_follow = on_follow
        self.interval = interval
        self.reconnect_grace = reconnect_grace
        self.role = FOLLOWER
        self.since = time.time()  # when this replica took its role
        self.connected = False
        self.error = None
        self._session = None
        self._holds_lock = False
        self._reconnected_at = None
        self._backoff = Backoff(maximum=5.0)  # a database back from a restart is found soon
        self._stopping = threading.Event()

    def status(self) -> dict[str, Any]:
        """What ``/healthcheck?verbose=1`` says of the role."""
        return {'role': self.role, 'since': self.since, 'database_connected': self.connected,
                'database_error': self.error}

    def stop(self) -> None:
        """Give up the lock (by closing the session) and end the thread."""
        self._stopping.set()
        if self.is_alive():  # not started when Flower stops before its history is loaded
            self.join(timeout=5)

    def run(self) -> None:
        while not self._stopping.is_set():
            delay = self.interval
            try:
                self._tick()
            except Exception as exc:  # any database failure: drop the session, retry
                delay = self._on_lost_session(exc)
            self._stopping.wait(delay)
        self._close_session()

    def _tick(self) -> None:
        if self._session is None:
            self._session = self._connect()
            self._on_connected()
        if self._holds_lock:
            self._session.execute('SELECT 1')  # raises once the session is gone
            return
        if self.role == FOLLOWER and self._in_grace():
            return
        row = self._session.execute('SELECT pg_try_advisory_lock(%s)',
                                    (LEADER_LOCK_KEY,)).fetchone()
        if row[0]:
            self._holds_lock = True
            self._become(LEADER)
        elif self.role == LEADER:
            logger.warning("Another replica became the leader while this one was cut off "
                           "from the database: this replica steps down to follower")
            self._become(FOLLOWER)

    def _in_grace(self) -> bool:
        return (self._reconnected_at is not None
                and time.monotonic() - self._reconnected_at < self.reconnect_grace)

    def _on_connected(self) -> None:
        if self.error is not None:
            logger.warning("Reached the database again (leadership); this replica is the %s "
                           "until it learns otherwise", self.role)
            self._reconnected_at = time.monotonic()
        self.connected = True
        self.error = None
        self._backoff.reset()

    def _on_lost_session(self, exc: Exception) -> float:
        self._close_session()
        if self.error is None:
            logger.warning("Lost the database session that decides the leader (%s); this "
                           "replica stays the %s and retries with back-off", describe_error(exc),
                           self.role)
        self.connected = False
        self.error = describe_error(exc)
        return self._backoff.next_delay()

    def _close_session(self) -> None:
        session, self._session = self._session, None
        self._holds_lock = False
        if session is not None:
            try:
                session.close()
            except Exception:  # already broken: nothing to give back
                pass

    def _become(self, role: str) -> None:
        self.role = role
        self.since = time.time()
        logger.info("This replica is now the %s", role)
        self.io_loop.add_callback(self.on_lead if role == LEADER else self.on_follow)
