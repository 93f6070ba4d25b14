"""A private RabbitMQ vhost per test, on the machine's RabbitMQ (guest/guest)."""
import subprocess
import urllib.parse
import uuid

import pytest

AMQP = 'amqp://guest:guest@127.0.0.1:5672/'
MANAGEMENT_API = 'http://guest:guest@127.0.0.1:15672/api/'


def rabbitmqctl(*args: str) -> None:
    subprocess.run(['rabbitmqctl', '-q', *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def vhost():
    """A private vhost for guest: ``flower test/<random>``, deleted afterwards.

    The name has a space and a slash so that it must be URL-encoded wherever it goes.
    """
    name = f'flower test/{uuid.uuid4().hex[:8]}'
    rabbitmqctl('add_vhost', name)
    rabbitmqctl('set_permissions', '-p', name, 'guest', '.*', '.*', '.*')
    yield name
    rabbitmqctl('delete_vhost', name)


def amqp_url(vhost: str) -> str:
    return AMQP + urllib.parse.quote(vhost, safe='')
