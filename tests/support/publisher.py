"""Task events published through Celery's own event dispatcher, as a worker sends them."""
import time

import celery

from tests.support.waiting import wait_for


class Publisher:
    """Sends task events as a worker named ``hostname`` would."""

    def __init__(self, broker_url, hostname='publisher@localhost'):
        self.app = celery.Celery(broker=broker_url)
        self.connection = self.app.connection_for_write()
        self.dispatcher = self.app.events.Dispatcher(self.connection, hostname=hostname,
                                                      enabled=True)
        self.sent = 0

    def tasks(self, prefix, count):
        """``count`` received + succeeded pairs: ``2 * count`` events."""
        for number in range(count):
            uuid = f'{prefix}-{number:05d}'
            self.dispatcher.send('task-received', uuid=uuid, name='tasks.add', args='(1, 2)',
                                 kwargs='{}', retries=0)
            self.dispatcher.send('task-succeeded', uuid=uuid, result='3', runtime=0.01)
        self.sent += 2 * count

    def close(self):
        self.dispatcher.close()
        self.connection.close()
        self.app.close()


def subscribed(flower, publisher):
    """Publish probe events until the capture sees them (Redis pub/sub keeps nothing for
    a subscriber that is not there yet); return the counts once all are applied."""
    events = flower.app.events

    def probe():
        publisher.tasks('probe', 1)
        return events.received_count > 0

    wait_for(probe, what='the event subscription')
    wait_for(lambda: events.applied_count == events.received_count, what='probes applied')
    time.sleep(0.3)  # probes still in flight
    wait_for(lambda: events.applied_count == events.received_count, what='probes applied')
    return events.received_count
