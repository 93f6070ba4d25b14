"""What every API endpoint shares: access rules, JSON errors, 400/404/503 answers.

No worker is needed: each request here is answered (or refused) before any
command would reach a worker. The effect checks look at the broker itself.
"""
import pytest
import redis
import tornado.web

from tests.support.api_cluster import Api

UNKNOWN_WORKER = 'nobody@nowhere'

#: Every control or task-submission endpoint, with valid parameters.
POST_ENDPOINTS = [
    f'/api/worker/shutdown/{UNKNOWN_WORKER}',
    f'/api/worker/pool/restart/{UNKNOWN_WORKER}',
    f'/api/worker/pool/grow/{UNKNOWN_WORKER}?n=1',
    f'/api/worker/pool/shrink/{UNKNOWN_WORKER}?n=1',
    f'/api/worker/pool/autoscale/{UNKNOWN_WORKER}?min=1&max=2',
    f'/api/worker/queue/add-consumer/{UNKNOWN_WORKER}?queue=q1',
    f'/api/worker/queue/cancel-consumer/{UNKNOWN_WORKER}?queue=q1',
    '/api/task/apply/tasks.add',
    '/api/task/async-apply/tasks.add',
    '/api/task/send-task/tasks.add',
    '/api/task/abort/0b7cbd38-4a8a-4ab4-a3c4-8a9f2d9d7f6e',
    '/api/task/revoke/0b7cbd38-4a8a-4ab4-a3c4-8a9f2d9d7f6e',
    f'/api/task/timeout/tasks.add?workername={UNKNOWN_WORKER}&soft=1',
    f'/api/task/rate-limit/tasks.add?workername={UNKNOWN_WORKER}&ratelimit=1/s',
    '/api/queues/purge/celery',
    '/api/task/retry/0b7cbd38-4a8a-4ab4-a3c4-8a9f2d9d7f6e',
    '/api/tasks/revoke',
    '/api/tasks/terminate',
    '/api/tasks/retry',
]

#: Endpoints naming a worker, answered 404 when Flower has never seen it.
UNKNOWN_WORKER_REQUESTS = [
    ('get', f'/api/workers?workername={UNKNOWN_WORKER}'),
    ('get', f'/api/workers?workername={UNKNOWN_WORKER}&status=true'),
] + [('post', path) for path in POST_ENDPOINTS if UNKNOWN_WORKER in path]


@pytest.fixture(scope='module')
def flower(cluster):
    return cluster.start_flower()


@pytest.fixture
def api(flower):
    return Api(flower)


@pytest.fixture
def queue_length(cluster):
    client = redis.Redis.from_url(cluster.url)
    yield lambda name: client.llen(name)
    client.close()


def assert_json_error(response, status, *words):
    assert response.status_code == status, response.text
    assert response.headers['Content-Type'].startswith('application/json')
    message = response.json()['error']
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


# -- authentication ---------------------------------------------------------

def test_api_is_closed_without_authentication_or_opt_in(api, monkeypatch):
    monkeypatch.delenv('FLOWER_UNAUTHENTICATED_API')

    assert_json_error(api.get('/api/workers'), 401, 'FLOWER_UNAUTHENTICATED_API', '--basic_auth')
    assert_json_error(api.post('/api/task/send-task/tasks.add'), 401)
    assert_json_error(api.get('/api/workflow/some-task'), 401)
    assert_json_error(api.post('/api/queues/purge/celery'), 401)
    assert_json_error(api.get('/api/audit'), 401)
    monkeypatch.setenv('FLOWER_UNAUTHENTICATED_API', 'no')
    assert_json_error(api.get('/api/tasks'), 401)


def test_unauthenticated_api_opens_with_the_environment_variable(api):
    response = api.get('/api/workers')

    assert response.status_code == 200
    assert isinstance(response.json(), dict)


def test_basic_auth_credentials_are_accepted(api, flower, monkeypatch):
    monkeypatch.delenv('FLOWER_UNAUTHENTICATED_API')
    monkeypatch.setattr(flower.options, 'basic_auth', ['alice:secret', 'bob:hunter2'])

    refused = api.get('/api/workers')
    assert_json_error(refused, 401, 'Authentication required')
    assert refused.headers['WWW-Authenticate'].startswith('Basic')
    assert_json_error(api.get('/api/workers', auth=('alice', 'wrong')), 401)
    assert api.get('/api/workers', auth=('bob', 'hunter2')).status_code == 200
    assert api.get('/api/tasks', auth=('alice', 'secret')).status_code == 200


def test_bearer_token_of_an_oauth_login_is_accepted(api, flower, monkeypatch):
    monkeypatch.delenv('FLOWER_UNAUTHENTICATED_API')
    monkeypatch.setattr(flower.options, 'auth', r'.*@example\.com')
    secret = flower.app.settings['cookie_secret']

    def token(email):
        session = flower.app.sessions.token(email)
        return tornado.web.create_signed_value(secret, 'user', session).decode()

    good = {'Authorization': f"Bearer {token('me@example.com')}"}
    assert api.get('/api/workers', headers=good).status_code == 200
    assert api.get('/api/workers', cookies={'user': token('me@example.com')}).status_code == 200
    assert_json_error(api.get('/api/workers'), 401)
    assert_json_error(api.get('/api/workers', headers={
        'Authorization': f"Bearer {token('me@example.org')}"}), 401)
    assert_json_error(api.get('/api/workers', headers={'Authorization': 'Bearer forged'}), 401)
    forged = tornado.web.create_signed_value(
        'another secret', 'user', flower.app.sessions.token('me@example.com')).decode()
    assert_json_error(api.get('/api/workers', headers={'Authorization': f'Bearer {forged}'}), 401)


# -- browsers ---------------------------------------------------------------

def test_requests_without_xsrf_cookie_pass_the_checks(api, flower):
    same_origin = {'Origin': flower.base_url, 'Sec-Fetch-Site': 'same-origin'}

    assert api.get('/api/workers', headers=same_origin).status_code == 200
    # Refused for the unknown worker, not for a missing XSRF token.
    assert_json_error(api.post(f'/api/worker/shutdown/{UNKNOWN_WORKER}', headers=same_origin),
                      404, UNKNOWN_WORKER)


@pytest.mark.parametrize('headers', [
    {'Origin': 'http://evil.example'},
    {'Origin': 'null'},
    {'Sec-Fetch-Site': 'cross-site'},
], ids=['other-origin', 'null-origin', 'sec-fetch-site'])
def test_cross_site_browser_requests_are_refused(api, queue_length, headers):
    assert_json_error(api.get('/api/workers', headers=headers), 403, 'Cross-')
    assert_json_error(api.post('/api/task/send-task/tasks.add', headers=headers,
                               json={'args': [1, 2]}), 403)
    assert queue_length('celery') == 0


def test_origin_on_another_port_is_refused(api, flower):
    other_port = flower.base_url.rsplit(':', 1)[0] + ':1'

    assert_json_error(api.get('/api/tasks', headers={'Origin': other_port}), 403)


# -- read-only mode ---------------------------------------------------------

@pytest.mark.parametrize('path', POST_ENDPOINTS)
def test_read_only_mode_refuses_every_control_and_apply_endpoint(
        api, flower, queue_length, monkeypatch, path):
    monkeypatch.setattr(flower.options, 'read_only', True)

    assert_json_error(api.post(path, json={'args': [1, 2]}), 403, 'read-only')
    assert queue_length('celery') == 0
    assert api.get('/api/tasks').status_code == 200
    assert_json_error(api.get('/api/workflow/no-such-task'), 404)  # read, not refused


# -- 404 --------------------------------------------------------------------

@pytest.mark.parametrize('method, path', UNKNOWN_WORKER_REQUESTS)
def test_unknown_worker_is_404(api, method, path):
    assert_json_error(getattr(api, method)(path), 404, UNKNOWN_WORKER)


def test_unknown_task_id_is_404(api):
    assert_json_error(api.get('/api/task/info/no-such-task'), 404, 'no-such-task')
    assert_json_error(api.get('/api/task/info/'), 404)
    assert_json_error(api.get('/api/workflow/no-such-task'), 404, 'no-such-task')
    assert_json_error(api.get('/api/workflow/'), 404)


@pytest.mark.parametrize('endpoint', ['apply', 'async-apply'])
def test_unknown_task_name_is_404(api, queue_length, endpoint):
    assert_json_error(api.post(f'/api/task/{endpoint}/tasks.nope', json={}), 404, 'tasks.nope')
    assert queue_length('celery') == 0


def test_api_is_served_below_the_url_prefix(cluster):
    api = Api(cluster.start_flower(url_prefix='flower'))

    assert api.get('/flower/api/task/types').json() == {'task-types': []}
    assert_json_error(api.get('/flower/api/task/info/x'), 404)


def test_unknown_api_url_and_wrong_method_answer_json(api):
    assert_json_error(api.get('/api/nothing/here'), 404, '/api/nothing/here')
    assert_json_error(api.get('/api/worker/pool/grow/w@x'), 405)


# -- 400 --------------------------------------------------------------------

@pytest.mark.parametrize('method, path, body, words', [
    ('post', f'/api/worker/pool/grow/{UNKNOWN_WORKER}?n=abc', None, ["'n'", 'not an integer']),
    ('post', f'/api/worker/pool/grow/{UNKNOWN_WORKER}?n=0', None, ["'n'", 'at least 1']),
    ('post', f'/api/worker/pool/shrink/{UNKNOWN_WORKER}?n=-2', None, ["'n'"]),
    ('post', f'/api/worker/pool/autoscale/{UNKNOWN_WORKER}?min=x&max=3', None, ["'min'"]),
    ('post', f'/api/worker/pool/autoscale/{UNKNOWN_WORKER}?min=1', None, ['max']),
    ('post', f'/api/worker/pool/autoscale/{UNKNOWN_WORKER}?min=5&max=3', None, ['min', 'max']),
    ('post', f'/api/worker/queue/add-consumer/{UNKNOWN_WORKER}', None, ['queue']),
    ('get', '/api/tasks?limit=ten', None, ["'limit'", 'not an integer']),
    ('get', '/api/audit?limit=0', None, ["'limit'", 'at least 1']),
    ('get', '/api/audit?limit=5000', None, ["'limit'", 'at most 1000']),
    ('get', '/api/audit?offset=x', None, ["'offset'", 'not an integer']),
    ('get', '/api/tasks?offset=-1', None, ["'offset'", 'negative']),
    ('get', '/api/tasks?sort_by=colour', None, ["'sort_by'", 'colour']),
    ('get', '/api/tasks?received_start=yesterday', None, ["'received_start'"]),
    ('get', '/api/tasks?received_end=2024-01-01', None, ["'received_end'"]),
    ('get', '/api/tasks?started_start=2024-13-01%2000:00', None, ["'started_start'"]),
    ('get', '/api/tasks?started_end=x', None, ["'started_end'"]),
    ('get', '/api/task/result/some-id?timeout=soon', None, ["'timeout'", 'not a number']),
    ('get', '/api/task/result/some-id?timeout=-1', None, ["'timeout'"]),
    ('post', '/api/task/revoke/some-id?signal=SIGBOGUS', None, ["'signal'"]),
    ('post', '/api/task/revoke/some-id?terminate=maybe', None, ["'terminate'"]),
    ('post', f'/api/task/timeout/tasks.add?workername={UNKNOWN_WORKER}&soft=abc', None,
     ["'soft'"]),
    ('post', f'/api/task/rate-limit/tasks.add?workername={UNKNOWN_WORKER}&ratelimit=fast', None,
     ["'ratelimit'"]),
    ('post', '/api/task/rate-limit/tasks.add?ratelimit=1/s', None, ['workername']),
    ('post', '/api/task/apply/tasks.add', b'{"args": [1,', ['Malformed JSON']),
    ('post', '/api/task/apply/tasks.add', b'{"args": "1, 2"}', ["'args'", 'list']),
    ('post', '/api/task/async-apply/tasks.add', b'{"kwargs": [1]}', ["'kwargs'", 'object']),
    ('post', '/api/task/async-apply/tasks.add', b'{"options": 5}', ["'options'", 'object']),
    ('post', '/api/task/async-apply/tasks.add', b'{"options": {"colour": 1}}', ['colour']),
    ('post', '/api/task/async-apply/tasks.add', b'{"eta": "tomorrow"}', ["'eta'"]),
    ('post', '/api/task/async-apply/tasks.add', b'{"countdown": "10"}', ["'countdown'"]),
    ('post', '/api/task/send-task/tasks.add', b'[1, 2]', ['object']),
    ('post', '/api/task/send-task/tasks.add', b'\xff\xfe', ['Malformed JSON']),
    ('post', '/api/task/retry/some-id', b'{"args": 1}', ["'args'", 'list']),
    ('post', '/api/tasks/revoke', b'{}', ["'ids'", 'filters']),
    ('post', '/api/tasks/revoke', b'{"ids": "some-id"}', ["'ids'", 'list']),
    ('post', '/api/tasks/revoke', b'{"ids": ["a"], "state": "FAILURE"}', ['not both']),
    ('post', '/api/tasks/revoke', b'{"state": 5}', ["'state'", 'string']),
    ('post', '/api/tasks/revoke', b'{"received_start": "yesterday"}', ["'received_start'"]),
    ('post', '/api/tasks/revoke', b'{"search": "name:\\"open"}', ["'search'", 'never closed']),
    ('post', '/api/tasks/revoke', b'{"ids": ["a"], "colour": 1}', ['colour']),
    ('post', '/api/tasks/retry', b'{"ids": ["a"], "dry_run": "yes"}', ["'dry_run'"]),
    ('post', '/api/tasks/terminate', b'{"ids": ["a"], "signal": "SIGBOGUS"}', ["'signal'"]),
])
def test_bad_input_is_400_naming_the_parameter(api, queue_length, method, path, body, words):
    response = getattr(api, method)(path, data=body)

    assert_json_error(response, 400, *words)
    assert queue_length('celery') == 0


# -- 503 --------------------------------------------------------------------

def test_revoke_that_no_worker_received_is_503(api):
    response = api.post('/api/task/revoke/0b7cbd38-4a8a-4ab4-a3c4-8a9f2d9d7f6e')

    assert_json_error(response, 503, 'No worker replied', 'not revoked')


@pytest.fixture(scope='module')
def flower_without_backend(cluster):
    capp = cluster.make_app(result_backend=None)
    return cluster.start_flower(capp=capp)


@pytest.mark.parametrize('method, path', [
    ('post', '/api/task/apply/tasks.add'),
    ('get', '/api/task/result/0b7cbd38-4a8a-4ab4-a3c4-8a9f2d9d7f6e'),
    ('post', '/api/task/abort/0b7cbd38-4a8a-4ab4-a3c4-8a9f2d9d7f6e'),
])
def test_result_backend_endpoints_are_503_without_a_backend(
        flower_without_backend, queue_length, method, path):
    api = Api(flower_without_backend)

    assert_json_error(getattr(api, method)(path, json={'args': [1, 2]}), 503, 'result backend')
    assert queue_length('celery') == 0
