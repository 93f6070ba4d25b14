"""Pure logic behind the worker pages: masking secrets, shaping inspect replies, purging."""
import time

from flower.events import EventsState
from flower.metrics import PrometheusMetrics
from flower.utils.masking import MASK, mask_secrets, mask_text
from flower.utils.template import format_fact, format_uptime, humanize_key, rusage_fact
from flower.workers import (
    WorkerAnswers, api_worker_info, expected_repliers, long_offline_workers, worker_detail,
    worker_rows,
)


def test_mask_text_hides_passwords_in_every_url():
    text = 'primary amqp://guest:s3cret@rabbit:5672//;redis://:pw@cache:6379/0 end'
    masked = mask_text(text)
    assert 's3cret' not in masked and ':pw@' not in masked
    assert 'amqp://guest:****@rabbit:5672//' in masked
    assert 'redis://:****@cache:6379/0' in masked
    assert mask_text('redis://cache:6379/0') == 'redis://cache:6379/0'


def test_mask_secrets_masks_secret_names_and_urls_deep_inside():
    config = {
        'broker_url': 'redis://user:hunter2@host:6379/0',
        'aws_secret_access_key': 'abc',
        'broker_transport_options': {'sentinel_password': 'x', 'visibility_timeout': 10},
        'result_backend': ['db+postgresql://u:pg@db/x'],
        'worker_concurrency': 4,
        'database_url': None,
    }
    masked = mask_secrets(config)
    assert masked == {
        'broker_url': 'redis://user:****@host:6379/0',
        'aws_secret_access_key': MASK,
        'broker_transport_options': {'sentinel_password': MASK, 'visibility_timeout': 10},
        'result_backend': ['db+postgresql://u:****@db/x'],
        'worker_concurrency': 4,
        'database_url': None,
    }
    assert config['aws_secret_access_key'] == 'abc', "the original is left alone"


def new_state():
    return EventsState(metrics=PrometheusMetrics())


def inspected_worker(name, **replies):
    return {name: dict(replies, timestamp=time.time())}


def test_worker_detail_shapes_the_inspect_replies():
    name = 'w1@host'
    inspected = inspected_worker(
        name,
        stats={'pool': {'max-concurrency': 2, 'processes': [11, 12]},
               'broker': {'hostname': 'rabbit', 'password': 'pw', 'userid': 'guest'},
               'total': {'tasks.b': 2, 'tasks.a': 5}, 'pid': 42, 'clock': '7',
               'uptime': 3, 'prefetch_count': 8, 'rusage': {'utime': 0.5}},
        registered=['tasks.a', 'tasks.b [rate_limit=10/m]'],
        scheduled=[{'eta': '2030-01-01T00:00:00+00:00', 'priority': 6,
                    'request': {'id': 'x', 'name': 'tasks.a', 'args': [1]}}],
        conf={'broker_url': 'amqp://guest:pw@rabbit//', 'secret_key': 'k'},
        revoked=['r2', 'r1'],
        active=[{'id': 'y', 'args': [2, '<b>'], 'kwargs': {'k': None}},
                {'id': 'z', 'args': '(3,)', 'kwargs': '{}'}],
    )
    detail = worker_detail(new_state(), inspected, name)
    assert detail['row']['status'] is True
    assert detail['pool']['processes'] == [11, 12]
    assert detail['broker'] == {'hostname': 'rabbit', 'password': MASK, 'userid': 'guest'}
    assert detail['task_counts'] == [('tasks.a', 5), ('tasks.b', 2)]
    assert detail['registered'] == [{'name': 'tasks.a', 'rate_limit': None},
                                    {'name': 'tasks.b', 'rate_limit': '10/m'}]
    assert detail['scheduled'] == [{'id': 'x', 'name': 'tasks.a', 'args': '[1]', 'kwargs': '{}',
                                    'eta': '2030-01-01T00:00:00+00:00', 'priority': 6}]
    assert detail['active'] == [{'id': 'y', 'args': "[2, '<b>']", 'kwargs': "{'k': None}"},
                                {'id': 'z', 'args': '(3,)', 'kwargs': '{}'}]
    assert detail['config'] == [('broker_url', 'amqp://guest:****@rabbit//'),
                                ('secret_key', MASK)]
    assert detail['revoked'] == ['r1', 'r2']
    assert detail['system'] == {'pid': 42, 'clock': '7', 'uptime': 3, 'prefetch_count': 8}
    assert detail['rusage'] == [('utime', 0.5)]


def worker_event(state, name, kind, when):
    state.event({'type': f'worker-{kind}', 'hostname': name, 'timestamp': when,
                 'local_received': when, 'freq': 2.0})


def test_long_offline_workers_are_those_offline_for_longer_than_the_limit():
    state = new_state()
    now = time.time()
    worker_event(state, 'gone@host', 'online', now - 100)
    worker_event(state, 'gone@host', 'offline', now - 90)
    worker_event(state, 'recent@host', 'online', now - 20)
    worker_event(state, 'recent@host', 'offline', now - 5)
    worker_event(state, 'alive@host', 'heartbeat', now - 1)
    inspected = {'silent@host': {'timestamp': now - 500}, 'gone@host': {'timestamp': now - 95}}

    assert long_offline_workers(state, inspected, max_age=30, now=now) == [
        'gone@host', 'silent@host']
    # Saying which changes nothing: the application forgets them (tests/test_app.py).
    assert sorted(state.workers.keys()) == ['alive@host', 'gone@host', 'recent@host']
    assert sorted(inspected) == ['gone@host', 'silent@host']


def test_a_goodbye_beats_an_inspect_reply_recorded_just_after_it():
    state = new_state()
    now = time.time()
    worker_event(state, 'w@host', 'online', now - 20)
    worker_event(state, 'w@host', 'offline', now - 12)
    # Recorded after the goodbye, but sent before it: the worker is offline.
    assert worker_rows(state, {'w@host': {'timestamp': now - 11}})[0]['status'] is False
    # Answered well after it: the worker is back (without events).
    assert worker_rows(state, {'w@host': {'timestamp': now}})[0]['status'] is True


def test_a_refresh_expects_the_workers_online_by_heartbeats_once_every_worker_was_surveyed():
    state = new_state()
    now = time.time()
    worker_event(state, 'alive@host', 'heartbeat', now - 1)
    worker_event(state, 'expired@host', 'heartbeat', now - 60)
    worker_event(state, 'left@host', 'online', now - 20)
    worker_event(state, 'left@host', 'offline', now - 10)
    inspected = {'alive@host': {'timestamp': now - 30}, 'left@host': {'timestamp': now - 30}}

    assert expected_repliers(state, inspected, surveyed=True) == {'alive@host'}
    # Until an inspection has waited its whole timeout, silent workers may be unknown.
    assert expected_repliers(state, inspected, surveyed=False) is None
    # A worker known only from inspection: others like it may be there too.
    assert expected_repliers(state, dict(inspected, silent={'timestamp': now}), True) is None
    assert expected_repliers(new_state(), {}, surveyed=True) is None


def test_worker_page_values_are_humanized():
    assert [format_uptime(s) for s in (None, 42, 125, 3725, 90061)] == [
        'None', '42 s', '2 m 05 s', '1 h 02 m', '1 d 1 h 01 m']
    assert [format_fact(v) for v in (None, '', [], 1234567, 1234.56789, 2.0, [0.5, 1])] == [
        'None', 'None', 'None', '1,234,567', '1,234.568', '2', '0.5, 1']
    assert humanize_key('connect_timeout') == 'Connect timeout'
    assert rusage_fact('maxrss', 123456) == ('Maximum resident set size', '123,456 KiB')
    assert rusage_fact('utime', 0.1234567) == ('User CPU time', '0.123 s')
    assert rusage_fact('new_field', None) == ('New field', 'None')


def test_worker_answers_are_masked_again_only_when_a_reply_changes():
    inspected = {
        'w1@host': {'stats': {'broker': {'password': 'pw', 'alternates': []}, 'pid': 1},
                    'conf': {'broker_url': 'redis://:pw@cache//'}, 'timestamp': 1.0},
        'w2@host': {'conf': {'secret_key': 'k'}, 'timestamp': 2.0},
    }
    answers = WorkerAnswers()

    first = answers.answers(inspected)
    assert first == {name: api_worker_info(info) for name, info in inspected.items()}
    assert first['w1@host']['stats']['broker'] == {'password': MASK}
    # Unchanged replies: the answers already masked.
    again = answers.answers(inspected)
    assert again['w1@host'] is first['w1@host'] and again['w2@host'] is first['w2@host']
    # A new reply (as the inspector records it: replaced) is masked anew.
    inspected['w1@host'] = dict(inspected['w1@host'], conf={'broker_url': 'redis://:new@cache//'},
                                timestamp=3.0)
    del inspected['w2@host']
    third = answers.answers(inspected)
    assert third == {'w1@host': api_worker_info(inspected['w1@host'])}
    assert third['w1@host']['conf'] == {'broker_url': 'redis://:****@cache//'}


def test_worker_answers_as_json_are_the_answers_encoded():
    from flower.api import json_text

    inspected = {
        'w1@host': {'stats': {'pid': 1, 'note': '</script>', 'when': time}, 'timestamp': 1.0},
        'wé@host': {'conf': {'secret_key': 'k', 'list': [1, 'a']}, 'timestamp': 2.0},
    }
    answers = WorkerAnswers()

    assert answers.json_text(inspected, json_text) == json_text(answers.answers(inspected))
    assert answers.json_text(inspected, json_text) == json_text(answers.answers(inspected))
    assert answers.json_text({}, json_text) == json_text({}) == '{}'


def test_showing_the_workers_leaves_the_worker_evicted_first_the_one_heard_from_last():
    state = EventsState(metrics=PrometheusMetrics(), max_workers_in_memory=2)
    now = time.time()
    worker_event(state, 'b@host', 'heartbeat', now)
    worker_event(state, 'a@host', 'heartbeat', now)
    assert [row['hostname'] for row in worker_rows(state, {})] == ['a@host', 'b@host']
    worker_event(state, 'c@host', 'heartbeat', now)
    assert sorted(state.workers.keys()) == ['a@host', 'c@host']
