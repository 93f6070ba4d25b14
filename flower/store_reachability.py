"""Whether the history's database answers, for :mod:`flower.store_postgres`.

Once a read fails to reach the database, reads answer at once from memory
(the store says it is unavailable) and a timer thread tries the database
again: after 1 s, then after twice as long each time, up to 30 s. Requests
thus never wait on a database known to be down, except the one that finds
it down.
"""
import logging
import threading
from collections.abc import Callable

from flower.utils import describe_error
from flower.utils.masking import mask_text

logger = logging.getLogger('flower.store_postgres')


class Reachability:
    """``available`` and why not (``reason``); ``probe()`` raises while the database
    cannot be reached, with one of ``unreachable`` (exception classes)."""

    first_delay = 1.0
    longest_delay = 30.0

    def __init__(self, where: str, probe: Callable[[], None],
                 unreachable: tuple[type[BaseException], ...]) -> None:
        self.where = where
        self.available = True
        self.reason: str | None = None
        self._probe = probe
        self._unreachable = unreachable
        self._delay = 0.0
        self._timer: threading.Timer | None = None
        self._closed = False
        self._lock = threading.Lock()

    def failed(self, error: BaseException) -> None:
        """A read or write could not reach the database: say so once, and try again later."""
        with self._lock:
            if self.available:
                logger.error("The task history at %s is unavailable (%s): showing only the "
                             "tasks in memory until it is back", self.where, describe_error(error))
            self.available = False
            self.reason = mask_text(describe_error(error))
            if self._timer is None and not self._closed:
                self._delay = min(self.longest_delay, self._delay * 2 or self.first_delay)
                self._timer = threading.Timer(self._delay, self._try_again)
                self._timer.daemon = True
                self._timer.start()

    def succeeded(self) -> None:
        with self._lock:
            if not self.available:
                logger.warning("The task history at %s is available again", self.where)
            self.available, self.reason, self._delay = True, None, 0.0

    def _try_again(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self._probe()
        except self._unreachable as exc:
            self.failed(exc)
            return
        self.succeeded()

    def close(self) -> None:
        """Stop trying again."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
