"""The package's shape, checked from its imports (see docs/architecture.rst).

Every module of ``flower/`` belongs to one layer; a module imports from its own
layer or below, never above, so data and calls flow one way: the broker edge
and the state at the bottom, capture, history and queries over them, HTTP
handlers over those, the application and the command on top. A new module
must be given its layer here, which is the moment to decide where it belongs.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'flower'

#: Lowest first. A module may import modules of its own layer and of the layers below.
LAYERS = {
    'foundation: helpers, options, the broker edge, the store': [
        'flower', 'flower.options', 'flower.utils', 'flower.utils.template',
        'flower.utils.search_kwargs', 'flower.utils.search', 'flower.utils.search_text',
        'flower.utils.search_hints',
        'flower.utils.masking',
        'flower.utils.broker', 'flower.utils.purge',
        'flower.utils.authentication', 'flower.utils.blocking',
        'flower.utils.task_index', 'flower.utils.task_event', 'flower.history_file', 'flower.store', 'flower.store_links',
        'flower.store_search', 'flower.store_postgres_search', 'flower.store_postgres_schema',
        'flower.store_reachability',
        'flower.store_postgres_write', 'flower.store_postgres',
        'flower.store_open',
        'flower.audit_store', 'flower.flower_db_import', 'flower.metrics_text', 'flower.metrics',
        'flower.capture_redis', 'flower.capture', 'flower.leadership',
        'flower.queue_history', 'flower.task_stats',
    ],
    'state: the model the IO loop changes': ['flower.state'],
    'capture, history, queries and worker control over the state': [
        'flower.events', 'flower.history', 'flower.stream', 'flower.tasks', 'flower.task_listing',
        'flower.utils.tasks',
        'flower.control', 'flower.inspector', 'flower.workers', 'flower.workflow',
        'flower.workflow_lookup', 'flower.audit', 'flower.retry', 'flower.bulk',
        'flower.replica',
    ],
    'HTTP: pages and API handlers': [
        'flower.security', 'flower.base_handler',
        'flower.views', 'flower.views.*', 'flower.api', 'flower.api.*',
    ],
    'application: routes and the Tornado app': ['flower.urls', 'flower.app'],
    'command line': ['flower.command', 'flower.command_help', 'flower.command_history', 'flower.__main__', 'flower.healthcheck'],
}

MAX_MODULE_LINES = 400


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def modules():
    return {module_name(path): path for path in sorted(PACKAGE.rglob('*.py'))}


def layer_of(name):
    for number, members in enumerate(LAYERS.values()):
        for member in members:
            if name == member or (member.endswith('.*') and name.startswith(member[:-1])):
                return number
    return None


def flower_imports(path):
    """The ``flower`` modules ``path`` imports, with ``from x import y`` resolved to the
    module ``x.y`` when ``y`` is one."""
    known = modules()
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split('.')[0] == 'flower')
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split('.')[0] == 'flower':
            for alias in node.names:
                submodule = f'{node.module}.{alias.name}'
                found.add(submodule if submodule in known else node.module)
    return found


def test_every_module_has_a_layer():
    assert [name for name in modules() if layer_of(name) is None] == []


@pytest.mark.parametrize('name', sorted(modules()))
def test_no_module_imports_a_layer_above_its_own(name):
    path = modules()[name]
    own = layer_of(name)
    upward = sorted(imported for imported in flower_imports(path)
                    if layer_of(imported) is not None and layer_of(imported) > own)
    assert upward == [], f'{name} ({list(LAYERS)[own]}) imports from above: {upward}'


def test_no_module_is_over_the_size_limit():
    sizes = {name: len(path.read_text(encoding='utf-8').splitlines())
             for name, path in modules().items()}
    assert {name: lines for name, lines in sizes.items() if lines >= MAX_MODULE_LINES} == {}


def test_the_checks_see_an_upward_import(tmp_path):
    """The import reader finds both spellings of an import the layers forbid."""
    module = tmp_path / 'probe.py'
    module.write_text('import flower.app\nfrom flower.views import tasks\nfrom os import path\n')
    assert flower_imports(module) == {'flower.app', 'flower.views.tasks'}
    assert layer_of('flower.app') > layer_of('flower.views.tasks') > layer_of('flower.state')


@pytest.mark.parametrize('side, other', [('flower.api', 'flower.views'),
                                         ('flower.views', 'flower.api')])
def test_the_api_and_the_pages_do_not_import_each_other(side, other):
    """Both build on flower.base_handler; the routes put the API's handlers behind pages."""
    crossing = {name: sorted(imported for imported in flower_imports(path)
                             if imported == other or imported.startswith(other + '.'))
                for name, path in modules().items()
                if name == side or name.startswith(side + '.')}
    assert {name: found for name, found in crossing.items() if found} == {}
