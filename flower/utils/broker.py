"""Queue lengths read from the broker itself.

RabbitMQ is asked through its management HTTP API (the ``broker_api``
option); Redis queues are lists, counted with ``LLEN``, priority sub-queues
included. Nothing here blocks the IO loop: HTTP goes through Tornado's
``AsyncHTTPClient`` and Redis calls run in the default executor, each bounded
by a timeout.
"""
import asyncio
import concurrent.futures
import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

import kombu
import redis
import redis.sentinel
from celery import Celery
from kombu.utils.url import parse_ssl_cert_reqs
from redis.backoff import NoBackoff
from redis.retry import Retry
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from flower.utils.masking import mask_text

#: kombu's Redis transport defaults (see ``kombu.transport.redis.Channel``).
DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)
DEFAULT_PRIORITY_SEPARATOR = '\x06\x16'

#: ``broker_use_ssl`` keys that redis-py understands as they are.
REDIS_SSL_KEYS = ('ssl_cert_reqs', 'ssl_ca_certs', 'ssl_certfile', 'ssl_keyfile', 'ssl_check_hostname')


class BrokerError(Exception):
    """Queue lengths cannot be read; ``str(exc)`` says why."""


class BrokerBase:
    """Host, port, vhost (or db), user and password parsed from a broker URL."""

    def __init__(self, broker_url: str, *_: Any, **__: Any) -> None:
        url = urlsplit(broker_url)
        self.broker_url = broker_url
        self.host = url.hostname or 'localhost'
        try:
            self.port = url.port
        except ValueError:
            raise BrokerError(f"Invalid port in broker URL {mask_text(broker_url)}") from None
        self.vhost = unquote(url.path[1:]) if url.path else ''
        self.username = unquote(url.username) if url.username else None
        self.password = unquote(url.password) if url.password else None

    async def queues(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """``[{'name': ..., 'messages': ...}, ...]`` for the queues ``names``."""
        raise NotImplementedError


class RabbitMQ(BrokerBase):
    """Counts from the management plugin's ``/api/queues/<vhost>`` at ``http_api``.

    Each queue is the management API's own object (``messages``,
    ``messages_ready``, ``messages_unacknowledged``, ``consumers``,
    ``durable``, ``arguments``, ``node``, ``state``...), as Flower passes it
    on; the four counts are 0 where RabbitMQ has not computed them yet.
    Queues RabbitMQ does not know are left out. ``ca_certs`` verifies an
    https management API.
    """

    def __init__(self, broker_url: str, http_api: str | None = None, timeout: float = 1.0,
                 ca_certs: str | None = None, **kwargs: Any) -> None:
        super().__init__(broker_url)
        self.vhost = self.vhost or '/'
        self.timeout = timeout
        self.http_api = http_api
        self.ca_certs = ca_certs

    def _request(self) -> HTTPRequest:
        if not self.http_api:
            raise BrokerError("Queue statistics of a RabbitMQ broker need the broker_api option "
                              "(the management API URL, e.g. http://user:pass@host:15672/api/)")
        api = urlsplit(self.http_api)
        if api.scheme not in ('http', 'https') or not api.hostname:
            raise BrokerError(f"broker_api must be an http(s) URL, not {mask_text(self.http_api)}")
        host = api.netloc.rpartition('@')[2]
        base = urlunsplit(api._replace(netloc=host)).rstrip('/')
        url = f"{base}/queues/{quote(self.vhost, safe='')}"
        return HTTPRequest(
            url, auth_username=unquote(api.username) if api.username else None,
            auth_password=unquote(api.password) if api.password else None,
            connect_timeout=self.timeout, request_timeout=self.timeout, ca_certs=self.ca_certs)

    async def queues(self, names: Iterable[str]) -> list[dict[str, Any]]:
        request = self._request()
        try:
            response = await AsyncHTTPClient().fetch(request)
            listed = json.loads(response.body)
        except HTTPClientError as exc:
            raise BrokerError(f"RabbitMQ management API {request.url} answered: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise BrokerError(f"Cannot query RabbitMQ management API {request.url}: {exc}") from exc
        if not isinstance(listed, list):
            raise BrokerError(f"RabbitMQ management API {request.url} did not answer a list")
        by_name = {queue.get('name'): queue for queue in listed if isinstance(queue, dict)}
        counts = dict.fromkeys(('messages', 'messages_ready', 'messages_unacknowledged',
                                'consumers'), 0)
        return [dict(counts, **by_name[name]) for name in names if name in by_name]


class RedisBase(BrokerBase):
    """What every Redis broker shares: ``LLEN`` of each queue and of its priority
    sub-queues, summed; the subclasses say how to reach the server."""

    default_port = 6379

    def __init__(self, broker_url: str, broker_options: Mapping[str, Any] | None = None,
                 timeout: float = 1.0, **kwargs: Any) -> None:
        super().__init__(broker_url)
        options = broker_options or {}
        self.timeout = timeout
        self.db = self._database()
        self.priority_steps = list(options.get('priority_steps', DEFAULT_PRIORITY_STEPS))
        self.separator = options.get('sep', DEFAULT_PRIORITY_SEPARATOR)
        self.key_prefix = options.get('global_keyprefix', '')

    def _database(self) -> int:
        return self._db_number(self.vhost or '0')

    def _db_number(self, text: str) -> int:
        try:
            return int(text.strip('/') or 0)
        except ValueError:
            raise BrokerError(f"Invalid Redis database {text!r} in broker URL "
                              f"{mask_text(self.broker_url)}") from None

    def _connection_kwargs(self) -> dict[str, Any]:
        # No retries: within the timeout, an unreachable Redis is reported as such.
        return dict(db=self.db, username=self.username, password=self.password,
                    socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                    retry=Retry(NoBackoff(), 0))

    def _client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port or self.default_port,
                           **self._connection_kwargs())

    def _keys(self, name: str) -> list[str]:
        """The list holding priority ``0`` is the queue's name; others get a suffix."""
        return [self.key_prefix + (name if step == 0 else f"{name}{self.separator}{step}")
                for step in self.priority_steps]

    def _lengths(self, names: list[str]) -> list[dict[str, Any]]:
        client = self._client()
        try:
            with client.pipeline(transaction=False) as pipe:
                for name in names:
                    for key in self._keys(name):
                        pipe.llen(key)
                lengths = iter(pipe.execute())
        finally:
            client.close()
        return [{'name': name, 'messages': sum(next(lengths) for _ in self.priority_steps)}
                for name in names]

    async def queues(self, names: Iterable[str]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, self._lengths, list(names))
        except redis.RedisError as exc:
            raise BrokerError(
                f"Cannot query Redis at {mask_text(self.broker_url)}: {exc}") from exc


class Redis(RedisBase):
    """``redis://host:port/db``."""


class RedisSsl(Redis):
    """``rediss://``: TLS, with the settings redis-py knows from the URL's query
    (``?ssl_cert_reqs=required&ssl_ca_certs=...``, as kombu reads them) and from
    ``broker_use_ssl``, which wins where both give one."""

    def __init__(self, broker_url: str, broker_options: Mapping[str, Any] | None = None,
                 broker_use_ssl: dict[str, Any] | bool | None = None, **kwargs: Any) -> None:
        super().__init__(broker_url, broker_options, **kwargs)
        settings = _ssl_settings_of_url(broker_url)
        if isinstance(broker_use_ssl, dict):
            settings.update(broker_use_ssl)
        self.ssl_options = {key: settings[key] for key in REDIS_SSL_KEYS if key in settings}

    def _connection_kwargs(self) -> dict[str, Any]:
        return dict(super()._connection_kwargs(), ssl=True, **self.ssl_options)


def _ssl_settings_of_url(broker_url: str) -> dict[str, Any]:
    settings = {key: values[-1] for key, values in parse_qs(urlsplit(broker_url).query).items()
                if key in REDIS_SSL_KEYS}
    if 'ssl_cert_reqs' in settings:
        settings['ssl_cert_reqs'] = parse_ssl_cert_reqs(settings['ssl_cert_reqs'])
    if 'ssl_check_hostname' in settings:
        settings['ssl_check_hostname'] = settings['ssl_check_hostname'].lower() in ('true', '1', 'yes')
    return settings


class RedisSocket(RedisBase):
    """``redis+socket:///path/to/redis.sock?virtual_host=<db>``."""

    def _database(self) -> int:
        query = parse_qs(urlsplit(self.broker_url).query)
        return self._db_number((query.get('virtual_host') or query.get('db') or ['0'])[0])

    def _client(self) -> redis.Redis:
        socket_path = unquote(urlsplit(self.broker_url).path)
        return redis.Redis(unix_socket_path=socket_path, **self._connection_kwargs())


class RedisSentinel(RedisBase):
    """``sentinel://host:port;sentinel://host2:port/db`` with ``master_name`` in the
    transport options."""

    default_port = 26379

    def __init__(self, broker_url: str, broker_options: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        first, *others = broker_url.split(';')
        super().__init__(first, broker_options, **kwargs)
        self.broker_url = broker_url
        options = broker_options or {}
        self.master_name = options.get('master_name')
        self.sentinel_kwargs = options.get('sentinel_kwargs') or {}
        self.sentinels = [(self.host, self.port or self.default_port)]
        for url in others:
            part = BrokerBase(url)
            self.sentinels.append((part.host, part.port or self.default_port))
            if part.vhost:
                self.db = self._db_number(part.vhost)

    def _client(self) -> redis.Redis:
        if not self.master_name:
            raise redis.RedisError("the 'master_name' broker transport option is not set")
        # A dead sentinel must not use up the timeout with retries: the next one is asked.
        sentinel_kwargs = {'socket_timeout': self.timeout, 'socket_connect_timeout': self.timeout,
                           'retry': Retry(NoBackoff(), 0), **self.sentinel_kwargs}
        sentinel = redis.sentinel.Sentinel(self.sentinels, sentinel_kwargs=sentinel_kwargs)
        return sentinel.master_for(self.master_name, **self._connection_kwargs())


class Broker:
    """``Broker(broker_url, ...)`` builds the adapter matching the URL's scheme."""

    adapters = {
        'amqp': RabbitMQ, 'amqps': RabbitMQ, 'pyamqp': RabbitMQ,
        'redis': Redis, 'rediss': RedisSsl, 'redis+socket': RedisSocket,
        'sentinel': RedisSentinel,
    }

    def __new__(cls, broker_url: str, *args: Any, **kwargs: Any) -> BrokerBase:
        scheme = broker_url.partition('://')[0]
        adapter = cls.adapters.get(scheme)
        if adapter is None:
            raise BrokerError(f"Queue lengths are not available for '{scheme}' brokers")
        return adapter(broker_url, *args, **kwargs)


def validate_broker_api(url: str) -> str:
    """``url`` if it can be RabbitMQ's management HTTP API (an http(s) URL with a host),
    else a ``ValueError`` saying what it should look like."""
    parts = urlsplit(url or '')
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise ValueError("must be an http(s) URL of the RabbitMQ management API, "
                         "e.g. http://user:pass@host:15672/api/")
    return url


def active_queue_names(capp: Celery, workers: Mapping[str, dict[str, Any]]) -> list[str]:
    """Queues any worker consumes from plus the app's configured queues, sorted.

    ``workers`` are the inspect replies by worker name (``Flower.workers``).
    Configured queues are listed even with no consumer left, so a backlog
    nobody works on still shows; with neither, Celery's default queue.
    """
    names = {queue['name'] for info in workers.values()
             for queue in info.get('active_queues') or () if queue.get('name')}
    names.update(queue.name for queue in capp.conf.task_queues or ())
    if not names:
        names.add(capp.conf.task_default_queue)
    return sorted(names)


def broker_url_of(capp: Celery) -> str:
    """The first broker URL of the Celery app, password included."""
    url = capp.conf.broker_read_url or capp.conf.broker_url
    if isinstance(url, (list, tuple)):
        url = ';'.join(url)
    return url or capp.connection_for_read().as_uri(include_password=True)


async def queue_lengths(capp: Celery, names: Iterable[str], broker_api: str | None = None,
                        timeout: float = 1.0, ca_certs: str | None = None) -> list[dict[str, Any]]:
    """Message counts of the queues ``names`` on ``capp``'s broker, within ``timeout``."""
    broker = Broker(broker_url_of(capp), http_api=broker_api, ca_certs=ca_certs,
                    broker_options=capp.conf.broker_transport_options,
                    broker_use_ssl=capp.conf.broker_use_ssl, timeout=timeout)
    try:
        return await asyncio.wait_for(broker.queues(names), timeout)
    except asyncio.TimeoutError:
        raise BrokerError(f"The broker did not answer within {timeout:g} s") from None


@contextlib.contextmanager
def broadcast_connection(capp: Celery) -> Iterator[kombu.Connection]:
    """A broker connection of its own for one remote-control broadcast.

    Connecting is tried twice at most, so a broker that is down is reported
    at once rather than after Celery's long connection retries.
    """
    with capp.connection_for_write(transport_options={'max_retries': 1}) as connection:
        yield connection


class DetachedPool:
    """At most ``size`` daemon threads running blocking broker calls; more calls queue.

    Daemon threads for the reason :func:`run_detached` gives; a bounded number of
    them, so that many waiting requests cannot start a thread per call.
    """

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._calls = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Await ``function(*args)``, run by one of the pool's threads."""
        future = concurrent.futures.Future()
        self._calls.put((future, function, args))
        with self._lock:
            if self._idle == 0 and self._threads < self.size:
                self._threads += 1
                threading.Thread(target=self._work, name=self.name, daemon=True).start()
        return await asyncio.wrap_future(future)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            future, function, args = self._calls.get()
            with self._lock:
                self._idle -= 1
            if not future.set_running_or_notify_cancel():
                continue  # its caller stopped waiting
            try:
                future.set_result(function(*args))
            except BaseException as exc:  # handed to the awaiting coroutine
                future.set_exception(exc)


async def run_detached(function: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking broker call on a daemon thread and await its result.

    kombu retries a broker lost in the middle of Celery's broadcasts for ever;
    on a daemon thread such a call can never keep the process from exiting.
    """
    future = concurrent.futures.Future()

    def call() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # handed to the awaiting coroutine
            future.set_exception(exc)

    threading.Thread(target=call, name='flower-broker-call', daemon=True).start()
    return await asyncio.wrap_future(future)
