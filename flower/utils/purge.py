"""Purging a queue: every message waiting in it removed on the broker.

kombu's own ``queue_purge`` does it the way each transport stores messages:
on Redis the queue's list and its priority sub-queues (``name``,
``name\\x06\\x163``, ...) are counted and deleted in one transaction; on
RabbitMQ it is AMQP's ``queue.purge``. The call blocks, so it runs on a
daemon thread (see :func:`flower.utils.broker.run_detached`).
"""
from celery import Celery

from flower.utils.blocking import CONNECTION_ERRORS
from flower.utils.broker import BrokerError, broadcast_connection, run_detached


class UnknownQueue(LookupError):
    """The broker has no queue of that name."""


def purge_now(capp: Celery, name: str) -> int:
    """Remove the messages of queue ``name``; return how many there were (blocks).

    The connection is made on first use, by ``default_channel``, inside the ``try``.
    """
    with broadcast_connection(capp) as connection:
        unreachable = CONNECTION_ERRORS + tuple(connection.connection_errors)
        try:
            return connection.default_channel.queue_purge(name) or 0
        except unreachable as exc:
            raise BrokerError(f"Cannot purge queue '{name}': the broker cannot be reached "
                              f"({exc})") from exc
        except tuple(connection.channel_errors) as exc:
            if getattr(exc, 'code', None) == 404:  # AMQP's NOT_FOUND
                raise UnknownQueue(f"Unknown queue '{name}': the broker has no such queue") \
                    from None
            raise BrokerError(f"The broker refused to purge queue '{name}': {exc}") from exc


async def purge_queue(capp: Celery, name: str) -> int:
    """Remove the messages of queue ``name`` off the IO loop; return how many there were."""
    return await run_detached(purge_now, capp, name)
