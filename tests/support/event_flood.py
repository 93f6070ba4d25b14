"""Publish a flood of task events from a process of its own, as fast as possible.

    python -m tests.support.event_flood BROKER_URL COUNT PAYLOAD_BYTES

Sends ``COUNT`` task-received/task-succeeded pairs through Celery's own event
dispatcher, batched as a prefork worker batches them, each ``task-received``
carrying ``PAYLOAD_BYTES`` of arguments, then prints the number of events sent.
A process of its own, so that the publisher never competes with the Flower
under test for its interpreter lock.
"""
import sys

import celery


def flood(broker_url, count, payload_bytes):
    app = celery.Celery(broker=broker_url)
    args = repr(('x' * payload_bytes,))
    with app.connection_for_write() as connection:
        dispatcher = app.events.Dispatcher(connection, hostname='flood@localhost', enabled=True,
                                           buffer_group=['task'], buffer_limit=24)
        for number in range(count):
            uuid = f'flood-{number:07d}'
            dispatcher.send('task-received', uuid=uuid, name='tasks.flood', args=args,
                            kwargs='{}', retries=0)
            dispatcher.send('task-succeeded', uuid=uuid, result='None', runtime=0.001)
        dispatcher.flush()
    return 2 * count


if __name__ == '__main__':
    print(flood(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
