"""The broker page (``/broker``): the broker URL, its queues now and over time."""
from flower.utils.broker import BrokerError, broker_url_of
from flower.utils.masking import mask_text
from flower.views import BaseHandler

#: Columns RabbitMQ reports besides the message count (Redis has none of them).
EXTRA_COLUMNS = (('messages_ready', 'Ready'), ('messages_unacknowledged', 'Unacknowledged'),
                 ('consumers', 'Consumers'))


class BrokerView(BaseHandler):
    async def get(self) -> None:
        as_json = self.get_argument('json', default=False, type=bool)
        try:
            queues, error = await self.application.queue_lengths(), None
        except BrokerError as exc:
            queues, error = [], str(exc)
        broker_url = mask_text(broker_url_of(self.capp))
        if as_json:
            self.write({'broker_url': broker_url, 'queues': queues, 'error': error,
                        'history': self.application.queue_history.series()})
            return
        columns = [column for column in EXTRA_COLUMNS
                   if any(column[0] in queue for queue in queues)]
        self.render('broker.html', broker_url=broker_url, queues=queues, error=error,
                    columns=columns, active_page='broker')
