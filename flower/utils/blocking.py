"""Blocking calls (a broker, a result backend, a database) made from the IO loop.

:class:`BlockingOperationRunner` runs one in an executor so the loop keeps
serving, logs how long it took, and turns "cannot reach it" into
:class:`ServiceUnavailable`, which the HTTP handlers answer with ``503`` and
its message (see :data:`flower.base_handler.ERROR_STATUS`).
"""
import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import kombu.exceptions

from flower.utils import describe_error

logger = logging.getLogger(__name__)

Result = TypeVar('Result')

#: What the clients of brokers and backends raise when the other end cannot be reached.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, kombu.exceptions.OperationalError)


class ServiceUnavailable(Exception):
    """What a blocking operation needs cannot be reached; ``str(exc)`` says what and why."""


class BlockingOperationRunner:
    """Runs blocking calls in ``executor`` (``None``: the loop's default one).

    ``connection_errors`` are the exceptions that mean "unreachable" (a
    transport's own, e.g. ``connection.connection_errors``, may be added).
    """

    def __init__(self, executor: Executor | None,
                 connection_errors: tuple[type[BaseException], ...] = CONNECTION_ERRORS) -> None:
        self.executor = executor
        self.connection_errors = connection_errors

    async def run(self, name: str, target: str, fn: Callable[..., Result], *args: Any) -> Result:
        """``fn(*args)`` off the IO loop. ``name`` says what is done and ``target`` to what
        (for the log line and the error); a connection error is a :class:`ServiceUnavailable`,
        any other exception is raised as it is."""
        started = time.monotonic()
        outcome = 'failed'
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self.executor, functools.partial(fn, *args))
            outcome = 'done'
            return result
        except self.connection_errors as exc:
            outcome = 'unreachable'
            raise ServiceUnavailable(f"{name} failed: cannot reach {target} "
                                     f"({describe_error(exc)})") from exc
        finally:
            logger.debug("%s on %s: %s in %.3f s", name, target, outcome,
                         time.monotonic() - started)
