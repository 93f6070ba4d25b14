"""Requests cannot make Flower spend broker connections, threads or time without bound
(items 6, 9 and 10 of issue 15)."""
import concurrent.futures
import html
import time
import urllib.parse

import redis
import requests

from tests.support.waiting import wait_for

PARALLEL = 30


def publishes(server):
    """How many PUBLISH commands the Redis server ran: each is one broadcast."""
    client = redis.Redis.from_url(server.url)
    try:
        return client.info('commandstats').get('cmdstat_publish', {}).get('calls', 0)
    finally:
        client.close()


def settled_publishes(server):
    """The PUBLISH count once nothing publishes any more (start-up inspection done)."""
    counts = [publishes(server)]

    def steady():
        time.sleep(0.5)
        counts.append(publishes(server))
        return counts[-1] == counts[-2]
    wait_for(steady, what='broadcasts to stop')
    return counts[-1]


def fetch_in_parallel(flower, paths):
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(paths)) as pool:
        return list(pool.map(lambda path: requests.get(flower.base_url + path, timeout=60), paths))


def test_item09_unknown_worker_is_404_without_broadcasting(redis_server, flower_factory,
                                                           monkeypatch):
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'true')
    flower = flower_factory(redis_server.url, inspect_timeout=300, enable_events=False)
    before = settled_publishes(redis_server)

    names = [f'nobody-{number}@nowhere' for number in range(PARALLEL)]
    paths = ['/worker/' + urllib.parse.quote(name) for name in names]
    paths += [f'/api/workers?refresh=1&workername={urllib.parse.quote(name)}' for name in names[:5]]
    answers = fetch_in_parallel(flower, paths)

    assert [answer.status_code for answer in answers] == [404] * len(paths)
    assert "Unknown worker 'nobody-0@nowhere'" in html.unescape(answers[0].text)
    assert answers[-1].json() == {'error': "Unknown worker 'nobody-4@nowhere'"}
    assert settled_publishes(redis_server) == before


def test_item09_concurrent_inspections_are_bounded(redis_server, flower_factory, worker_factory):
    worker = worker_factory(redis_server.url, pool='solo', concurrency=1)
    flower = flower_factory(redis_server.url, inspect_timeout=1000, enable_events=False)
    wait_for(lambda: flower.call(lambda: worker.hostname in flower.app.events.state.workers),
             what='Flower to hear from the worker')
    before = settled_publishes(redis_server)

    path = '/worker/' + urllib.parse.quote(worker.hostname)
    answers = fetch_in_parallel(flower, [path] * PARALLEL)

    assert [answer.status_code for answer in answers] == [200] * PARALLEL
    assert all(worker.hostname in answer.text for answer in answers)
    # One inspection is 8 broadcasts. Requests arriving while one runs share it
    # (unbounded, each request made its own: 240 broadcasts).
    sent = settled_publishes(redis_server) - before
    assert 8 <= sent <= 8 * 4, sent
