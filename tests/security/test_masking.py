"""Secrets in what workers report never reach an answer (items 2 and 12 of issue 15).

Item 2 runs a real worker whose configuration holds sentinel secrets that
Celery itself leaves in clear (transport options in ``stats``, connection
strings under names that do not look secret in ``conf``), and reads every
page and endpoint that shows worker data: as an API user of an open API and
as a read-only Basic-auth user. Item 12 checks the masking rules one by one.
"""
import json
import os
import subprocess
import sys
import urllib.parse

import pytest
import requests

from flower.utils.masking import MASK, mask_secrets, mask_text, mask_worker_info
from tests.security.secret_worker_app import SENTINELS
from tests.support.api_cluster import Cluster
from tests.support.processes import REPO_DIR

ARTIFACTS = os.path.join(REPO_DIR, 'test-artifacts', 'security-masking')
WORKER_NAME = 'secret-holder@localhost'
VIEWER = ('viewer', 'viewer-pw')


@pytest.fixture(scope='module')
def flowers():
    """Flowers by who reads them, watching one worker of the secret-holding app."""
    with Cluster(ARTIFACTS, worker_app='tests.security.secret_worker_app',
                 env={'FLOWER_UNAUTHENTICATED_API': 'true'}) as cluster:
        [worker] = cluster.start_workers({'name': WORKER_NAME, 'pool': 'solo', 'concurrency': 1})
        started = {
            'open-api': cluster.start_flower(),
            'read-only-user': cluster.start_flower(read_only=True, basic_auth=[':'.join(VIEWER)]),
        }
        for flower in started.values():
            cluster.wait_known(flower, worker)
        yield started


def get(flower, path, **kwargs):
    auth = VIEWER if flower.options.basic_auth else None
    return requests.get(flower.base_url + path, auth=auth, timeout=30, **kwargs)


WORKER_PATH = '/worker/' + urllib.parse.quote(WORKER_NAME, safe='')
#: Every answer that carries (or could carry) worker ``stats`` or ``conf``.
PATHS = ['/api/workers?refresh=1', f'/api/workers?workername={WORKER_NAME}&refresh=1',
         '/api/workers', WORKER_PATH, '/', '/workers?json=1', '/broker?json=1']


def assert_no_sentinel(path, body):
    leaked = [name for name, secret in SENTINELS.items() if secret in body]
    # Part of a secret is a leak too (a mask that stopped at '/' or '#').
    leaked += [name for name, secret in SENTINELS.items()
               if secret.split('/')[0] in body or secret.split('#')[0] in body]
    assert not leaked, f"{path} shows {sorted(set(leaked))}"


@pytest.mark.parametrize('who', ['open-api', 'read-only-user'])
def test_item02_worker_stats_and_conf_are_masked_in_every_answer(flowers, who):
    flower = flowers[who]
    for path in PATHS:
        response = get(flower, path)
        assert response.status_code == 200, (path, response.text[:500])
        assert_no_sentinel(path, response.text)

    # The data is there, masked: the test would notice an empty answer.
    info = get(flower, '/api/workers')
    worker = info.json()[WORKER_NAME]
    transport = worker['stats']['broker']['transport_options']
    assert transport == {'sentinel_kwargs': {'password': MASK}, 'auth': MASK,
                         'visibility_timeout': 3600}
    conf = worker['conf']
    assert conf['reporting_store'] == 'postgres://svc:****@db.internal:5432/reports'
    assert conf['warehouse_connection'] == f'host=wh.internal user=svc password={MASK} dbname=wh'
    page = get(flower, WORKER_PATH).text
    assert 'postgres://svc:****@db.internal:5432/reports' in page
    assert 'visibility_timeout' in page


def test_item02_every_answer_masks_through_one_function():
    info = {'stats': {'broker': {'transport_options': {'password': 'p'}},
                      'total': {'tasks.fetch_api_key': 3}},
            'conf': {'cache_location': 'redis://:p/w@h'}, 'active': [], 'timestamp': 1.0}
    masked = mask_worker_info(info)
    assert masked['stats']['broker']['transport_options'] == {'password': MASK}
    assert masked['stats']['total'] == {'tasks.fetch_api_key': 3}, "task names are not settings"
    assert masked['conf'] == {'cache_location': 'redis://:****@h'}
    assert info['conf'] == {'cache_location': 'redis://:p/w@h'}, "the original is left alone"


def test_item12_a_dict_under_a_secret_name_is_masked_whole():
    config = {
        'broker_transport_options': {'sentinel_kwargs': {'password': 'x'}, 'master_name': 'm'},
        'secret_settings': {'region': 'eu', 'nested': {'whatever': 'value'}},
        'api_clients': ['client-1', 'client-2'],
        'empty_secret': {},
    }
    assert mask_secrets(config) == {
        'broker_transport_options': {'sentinel_kwargs': {'password': MASK}, 'master_name': 'm'},
        'secret_settings': MASK,
        'api_clients': MASK,
        'empty_secret': {},
    }


@pytest.mark.parametrize('name', ['pwd', 'db_pwd', 'auth', 'sasl_auth', 'redis_auth',
                                  'credentials', 'sentry_dsn'])
def test_item12_pwd_auth_and_credential_names_are_secret(name):
    assert mask_secrets({name: 'hunter2', 'visibility_timeout': 10}) == {
        name: MASK, 'visibility_timeout': 10}


@pytest.mark.parametrize('text, expected', [
    ('host=db user=svc password=hunter2 dbname=app', f'host=db user=svc password={MASK} dbname=app'),
    ("host=db password='hunter 2' dbname=app", f'host=db password={MASK} dbname=app'),
    ('host=db password = "a\'b c" port=5432', f'host=db password = {MASK} port=5432'),
    ('Server=db;Uid=svc;Pwd=hun;ter2;', f'Server=db;Uid=svc;Pwd={MASK}'),
    ('postgresql:///app?user=svc&password=hunter2&sslmode=require',
     f'postgresql:///app?user=svc&password={MASK}'),
    ('db_password=hunter2', f'db_password={MASK}'),
    ("password='unclosed quote hunter2", f'password={MASK}'),
])
def test_item12_libpq_dsn_passwords_are_masked(text, expected):
    assert mask_text(text) == expected


@pytest.mark.parametrize('text, expected', [
    ('redis://:pa/ss@cache:6379/0', 'redis://:****@cache:6379/0'),
    ('redis://:pa#ss@cache:6379/0', 'redis://:****@cache:6379/0'),
    ('postgres://svc:a/b#c@d@db:5432/x', 'postgres://svc:****@db:5432/x'),
    ('amqp://u:p/1@h1//;amqp://u:p#2@h2//', 'amqp://u:****@h1//;amqp://u:****@h2//'),
    ('see postgres://svc:x/y@db/app and redis://h:6379/0',
     'see postgres://svc:****@db/app and redis://h:6379/0'),
])
def test_item12_url_passwords_with_slash_or_hash_are_masked(text, expected):
    assert mask_text(text) == expected


@pytest.mark.parametrize('text', ['redis://cache:6379/0', 'password= ', 'http://h:15672/api/',
                                  'compression=gzip user=svc'])
def test_masking_leaves_text_without_a_password_alone(text):
    assert mask_text(text) == text


HOSTILE_VALUES = "['a' * 400_000, 'a://' + ':' * 400_000, 'a://' * 100_000, 'password=' * 40_000]"


def test_item12_masking_takes_linear_time_on_hostile_values():
    """A worker's 400 KB value is masked at once (a backtracking pattern took hours)."""
    script = (f"from flower.utils.masking import mask_secrets\n"
              f"print(len(mask_secrets({{'value': {HOSTILE_VALUES}}})['value']))")
    # The timeout only detects a hang: linear masking needs well under a second.
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=60, cwd=REPO_DIR, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == 4


def test_item12_values_nested_too_deep_are_masked_whole():
    """As deep as a JSON reply can be (about 1000 levels): masked, not a RecursionError."""
    value = 'postgres://svc:hunter2@db/x'
    for _ in range(990):
        value = {'level': value}
    masked = mask_secrets({'setting': value})
    depth = 0
    while isinstance(masked, dict):
        masked, depth = masked.get('setting', masked.get('level')), depth + 1
    assert masked == MASK and depth < 990
