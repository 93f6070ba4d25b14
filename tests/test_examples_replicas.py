"""The replica examples and their docs page name only what exists.

``examples/replicas`` (compose file and nginx), ``examples/kubernetes/flower.yaml``
and ``docs/replicas.rst`` are copied by users as they are: an option flower does
not define makes a replica refuse to start (on the command line) or is silently
ignored (as a ``FLOWER_*`` variable), and nginx refuses a configuration naming
a service the compose file does not run. Nothing here needs the containers to
run: the files are read and checked against flower's own option parser.
"""
import re
import shlex
from pathlib import Path

import pytest
import yaml

from flower.command import ENV_PREFIX, split_command_line
from flower.options import default_options

ROOT = Path(__file__).resolve().parent.parent
REPLICAS = ROOT / 'examples' / 'replicas'
COMPOSE_FILE = REPLICAS / 'docker-compose.yml'
NGINX_CONF = REPLICAS / 'nginx.conf'
REPLICAS_README = REPLICAS / 'README.md'
K8S_MANIFEST = ROOT / 'examples' / 'kubernetes' / 'flower.yaml'
DOCS_PAGE = ROOT / 'docs' / 'replicas.rst'

#: The live pages' event streams, which a proxy must not buffer nor time out.
EVENT_STREAM_PATHS = ('/api/events', '/tasks/live')
DEFAULT_PROXY_READ_TIMEOUT = 60  # seconds, nginx's own


def defined_options():
    return set(default_options.as_dict()) - {'help'}


def unknown_options(argv):
    """The flags of ``argv`` that name no option flower defines (``celery flower`` refuses them)."""
    options = defined_options()
    return [arg for arg in argv
            if arg.startswith('-') and arg.lstrip('-').partition('=')[0].replace('-', '_') not in options]


def unknown_variables(names):
    """The ``FLOWER_*`` names among ``names`` that name no option (flower ignores them)."""
    options = defined_options()
    return sorted(name for name in names
                  if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX):].lower() not in options)


def flower_argv(command):
    """The flower options of a container command of the flower image, None if it runs
    something else: the image runs ``celery flower`` with arguments that are options
    only, ``celery`` + the arguments when the first is ``flower``, any other as given."""
    words = shlex.split(command) if isinstance(command, str) else list(command or [])
    if not words or words[0].startswith('-'):
        return words
    if words[0] == 'flower':
        return words[1:]
    if words[0] == 'celery' and 'flower' in words:
        return words[words.index('flower') + 1:]
    return None


def option_value(argv, name):
    values = [raw for option, raw, _ in split_command_line(argv) if option.name == name]
    return values[-1] if values else None


# -- the compose file

@pytest.fixture(scope='module')
def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding='utf-8'))


@pytest.fixture(scope='module')
def flower_services(compose):
    return {name: service for name, service in compose['services'].items()
            if 'flower' in str(service.get('image', '')) and flower_argv(service.get('command')) is not None}


def environment(service):
    env = service.get('environment') or {}
    if isinstance(env, list):
        return dict(entry.partition('=')[::2] for entry in env)
    return env


def test_compose_file_runs_postgres_redis_two_workers_two_replicas_and_nginx(compose, flower_services):
    services = compose['services']
    postgres = services['postgres']
    assert postgres['image'].rsplit(':', 1)[-1].startswith('16')
    assert 'pg_isready' in ' '.join(postgres['healthcheck']['test'])
    assert 'redis' in services

    workers = {name: service for name, service in services.items()
               if {'celery', 'worker'} <= set(shlex.split(service.get('command', '')))}
    assert len(workers) == 2, sorted(workers)
    for name, worker in workers.items():
        assert '-E' in shlex.split(worker['command']), f'{name} does not send task events'
        for volume in worker['volumes']:
            assert (REPLICAS / volume.split(':')[0]).resolve().is_file(), volume

    assert len(flower_services) == 2, sorted(flower_services)
    databases = {option_value(flower_argv(s.get('command')), 'db') for s in flower_services.values()}
    assert databases == {'postgresql://flower:flower@postgres/flower'}
    secrets = {environment(s).get('FLOWER_COOKIE_SECRET') for s in flower_services.values()}
    assert len(secrets) == 1 and None not in secrets, 'the replicas must share one cookie secret'
    for name, service in flower_services.items():
        assert (REPLICAS / service['build']).resolve() == ROOT, name
        assert service['depends_on']['postgres']['condition'] == 'service_healthy', name

    assert any(volume.split(':')[0] == './nginx.conf' for volume in services['nginx']['volumes'])


def test_compose_replicas_pass_only_options_flower_defines(flower_services):
    for name, service in flower_services.items():
        argv = flower_argv(service.get('command'))
        assert unknown_options(argv) == [], f'{name} passes options flower does not define'
        split_command_line(argv)
        assert unknown_variables(environment(service)) == [], f'{name} sets unknown FLOWER_* variables'


# -- nginx

def parse_nginx(text):
    """nginx's configuration as nested ``(directive, [arguments], children or None)``."""
    text = re.sub(r'(?m)#.*$', '', text)
    tokens = re.findall(r'"[^"]*"|\'[^\']*\'|[{};]|[^\s{};]+', text)
    position = 0

    def block(nested):
        nonlocal position
        directives = []
        while position < len(tokens):
            if tokens[position] == '}':
                assert nested, 'unbalanced "}" in nginx.conf'
                position += 1
                return directives
            words = []
            while position < len(tokens) and tokens[position] not in ('{', ';', '}'):
                words.append(tokens[position])
                position += 1
            assert position < len(tokens) and tokens[position] != '}', \
                f'directive {words} is not ended by ";"'
            position += 1
            children = block(nested=True) if tokens[position - 1] == '{' else None
            directives.append((words[0], words[1:], children))
        assert not nested, 'a block of nginx.conf is not closed by "}"'
        return directives

    return block(nested=False)


def find(directives, name):
    return [entry for entry in directives if entry[0] == name]


def nginx_seconds(value):
    match = re.fullmatch(r'(\d+)(ms|s|m|h|d)?', value)
    assert match, value
    factor = {'ms': 0.001, 's': 1, None: 1, 'm': 60, 'h': 3600, 'd': 86400}[match.group(2)]
    return int(match.group(1)) * factor


@pytest.fixture(scope='module')
def nginx_server():
    config = parse_nginx(NGINX_CONF.read_text(encoding='utf-8'))
    (http,) = find(config, 'http')
    upstreams = {args[0]: children for _, args, children in find(http[2], 'upstream')}
    (server,) = find(http[2], 'server')
    return upstreams, server[2]


def test_nginx_proxies_round_robin_to_every_replica_of_the_compose_file(nginx_server, flower_services):
    upstreams, server = nginx_server
    proxied = set()
    for children in upstreams.values():
        assert not {'ip_hash', 'hash', 'sticky'} & {entry[0] for entry in children}, \
            'the replicas share their cookie secret: no sticky sessions'
        for _, args, _ in find(children, 'server'):
            host, _, port = args[0].partition(':')
            assert host in flower_services, f'nginx proxies to {host}, which the compose file does not run'
            flower_port = option_value(flower_argv(flower_services[host].get('command')), 'port')
            assert int(port) == int(flower_port or default_options.port), args[0]
            proxied.add(host)
    assert proxied == set(flower_services), 'nginx must spread requests over every replica'

    for _, _, location in find(server, 'location'):
        for _, args, _ in find(location, 'proxy_pass'):
            assert re.fullmatch(r'http://([^/:]+)/?', args[0]).group(1) in upstreams, args[0]


def location_for(server, path):
    """The location block nginx picks for ``path``: exact, then regular expressions, then prefixes."""
    exact, regexes, prefixes = [], [], []
    for _, args, children in find(server, 'location'):
        if args[0] == '=' and args[1] == path:
            exact.append(children)
        elif args[0] in ('~', '~*') and re.search(args[1], path, re.I if args[0] == '~*' else 0):
            regexes.append(children)
        elif args[0] not in ('=', '~', '~*') and path.startswith(args[-1]):
            prefixes.append((len(args[-1]), children))
    if exact:
        return exact[0]
    if regexes:
        return regexes[0]
    return max(prefixes, key=lambda prefix: prefix[0])[1]


def directive(block, server, name, default=None):
    """A proxy directive's value in ``block``, inherited from the server block if not set there."""
    for scope in (block, server):
        values = find(scope, name)
        if values:
            return values[-1][1]
    return default


@pytest.mark.parametrize('path', EVENT_STREAM_PATHS)
def test_nginx_passes_the_event_streams_on_unbuffered_and_keeps_them_open(nginx_server, path):
    _, server = nginx_server
    location = location_for(server, path)
    assert directive(location, server, 'proxy_buffering') == ['off']
    timeout = directive(location, server, 'proxy_read_timeout', [f'{DEFAULT_PROXY_READ_TIMEOUT}s'])
    assert nginx_seconds(timeout[0]) >= 3600
    assert find(location, 'proxy_pass')


def test_nginx_answers_the_healthcheck(nginx_server):
    _, server = nginx_server
    assert find(location_for(server, '/healthcheck'), 'proxy_pass')


# -- Kubernetes

@pytest.fixture(scope='module')
def manifest():
    documents = [doc for doc in yaml.safe_load_all(K8S_MANIFEST.read_text(encoding='utf-8')) if doc]
    by_kind = {}
    for document in documents:
        by_kind.setdefault(document['kind'], []).append(document)
    return by_kind


def test_kubernetes_manifest_has_a_secret_two_replicas_probed_on_healthcheck_and_a_service(manifest):
    (secret,) = manifest['Secret']
    (deployment,) = manifest['Deployment']
    (service,) = manifest['Service']
    secret_values = {**secret.get('stringData', {}), **secret.get('data', {})}
    assert secret_values['FLOWER_DB'].startswith('postgresql://')
    assert secret_values['FLOWER_COOKIE_SECRET']

    spec = deployment['spec']
    assert spec['replicas'] == 2
    pod = spec['template']
    assert spec['selector']['matchLabels'].items() <= pod['metadata']['labels'].items()
    assert service['spec']['selector'].items() <= pod['metadata']['labels'].items()
    (container,) = pod['spec']['containers']
    assert [source['secretRef']['name'] for source in container['envFrom']] == [secret['metadata']['name']]

    ports = {port['name']: port['containerPort'] for port in container['ports']}
    flower_port = int(option_value(container.get('args', []), 'port') or default_options.port)
    assert set(ports.values()) == {flower_port}
    for probe in ('readinessProbe', 'livenessProbe'):
        get = container[probe]['httpGet']
        assert get['path'] == '/healthcheck', probe
        assert ports.get(get['port'], get['port']) == flower_port, probe
    for port in service['spec']['ports']:
        assert ports.get(port['targetPort'], port['targetPort']) == flower_port


def test_kubernetes_pods_pass_only_options_flower_defines(manifest):
    (secret,) = manifest['Secret']
    (deployment,) = manifest['Deployment']
    (container,) = deployment['spec']['template']['spec']['containers']
    assert flower_argv(container.get('command', []) + container.get('args', [])) is not None
    assert unknown_options(container.get('args', [])) == []
    split_command_line(container.get('args', []))
    variables = {**secret.get('stringData', {}), **secret.get('data', {})}
    variables.update({entry['name']: entry.get('value') for entry in container.get('env', [])})
    assert unknown_variables(variables) == []


def test_kubernetes_service_variables_do_not_reach_flower_as_options(manifest):
    """Kubernetes gives pods ``<SERVICE>_PORT=tcp://...`` and more for every Service of
    the namespace unless ``enableServiceLinks`` is false: with a Service named
    ``flower`` that is ``FLOWER_PORT``, which flower reads as ``--port`` and refuses."""
    (deployment,) = manifest['Deployment']
    if deployment['spec']['template']['spec'].get('enableServiceLinks', True) is False:
        return
    for service in manifest['Service']:
        prefix = service['metadata']['name'].upper().replace('-', '_')
        injected = [f'{prefix}_PORT', f'{prefix}_SERVICE_HOST', f'{prefix}_SERVICE_PORT']
        for port in service['spec']['ports']:
            injected.append(f"{prefix}_PORT_{port['port']}_{port.get('protocol', 'TCP')}")
        assert unknown_variables(injected) == injected, 'set enableServiceLinks: false'


# -- the docs page

def options_named_in(text):
    """Every option a reStructuredText page names: ``:ref:`opt-x```, ``--x`` literals,
    ``FLOWER_X`` variables and the options of ``$ celery ... flower ...`` commands."""
    named = set(re.findall(r':ref:`(?:[^`<]*<)?opt-([A-Za-z0-9_]+)>?`', text))
    named |= {'--' + name for name in re.findall(r'``--([A-Za-z0-9_-]+)', text)}
    named |= set(re.findall(r'\b(FLOWER_[A-Z0-9_]+)', text))
    for line in re.findall(r'(?m)^\s*\$ (celery .*)$', text):
        argv = flower_argv(shlex.split(line))
        named |= {arg.partition('=')[0] for arg in argv or []}
    return named


def misnamed(names):
    options = defined_options()
    wrong = set()
    for name in names:
        if name.startswith('--'):
            wrong |= set(unknown_options([name]))
        elif name.startswith(ENV_PREFIX):
            wrong |= set(unknown_variables([name]))
        elif name not in options:
            wrong.add(name)
    return sorted(wrong)


def test_docs_page_names_only_options_flower_defines():
    named = options_named_in(DOCS_PAGE.read_text(encoding='utf-8'))
    assert {'db', 'cookie_secret', 'FLOWER_COOKIE_SECRET', 'replica_poll_interval'} <= named
    assert misnamed(named) == []


@pytest.mark.parametrize('page', [DOCS_PAGE, REPLICAS_README, COMPOSE_FILE, K8S_MANIFEST])
def test_example_paths_named_in_the_docs_exist(page):
    paths = set(re.findall(r'\b(examples/[A-Za-z0-9_./-]*[A-Za-z0-9_])', page.read_text(encoding='utf-8')))
    assert paths
    assert [path for path in sorted(paths) if not (ROOT / path).exists()] == []


def test_docs_page_is_in_the_toctree():
    index = (ROOT / 'docs' / 'index.rst').read_text(encoding='utf-8')
    assert re.search(r'(?m)^\s+replicas\s*$', index.partition('.. toctree::')[2])


# -- the checks themselves catch a misnamed option

def test_checks_catch_options_flower_does_not_define():
    assert unknown_options(['--db=postgresql://h/db', '--replica_pol_interval=5', '--cookie_secre']) \
        == ['--replica_pol_interval=5', '--cookie_secre']
    assert unknown_variables(['FLOWER_DB', 'FLOWER_COOKIE_SECRETS', 'CELERY_BROKER_URL']) \
        == ['FLOWER_COOKIE_SECRETS']
    page = ('Set :ref:`opt-db` and :ref:`the secret <opt-cookie_secrets>`, ``--xheader``,\n'
            '``FLOWER_BASIC_AUTHS``:\n\n   $ celery -A proj flower --port=1 --max_task=5\n')
    assert misnamed(options_named_in(page)) == ['--max_task', '--xheader', 'FLOWER_BASIC_AUTHS',
                                                'cookie_secrets']


def test_nginx_parser_reads_blocks_and_refuses_unbalanced_braces():
    assert parse_nginx('http { upstream a { server b:1; } } # x { \n') == [
        ('http', [], [('upstream', ['a'], [('server', ['b:1'], None)])])]
    for broken in ('http { server { listen 80; }', 'http { listen 80; } }', 'http { listen 80 }'):
        with pytest.raises(AssertionError):
            parse_nginx(broken)
