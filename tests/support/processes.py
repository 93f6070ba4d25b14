"""Process helpers for integration tests and benchmarks.

The implementation lives in ``examples/cluster.py`` (the live demo uses it
too); this module loads it and re-exports its public API, so tests write::

    from tests.support.processes import RedisServer, CeleryWorker, free_port
"""

import importlib.util
import os
import sys

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
EXAMPLES_DIR = os.path.join(REPO_DIR, 'examples')

_MODULE_NAME = 'flower_examples_cluster'


def _load_cluster():
    module = sys.modules.get(_MODULE_NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            _MODULE_NAME, os.path.join(EXAMPLES_DIR, 'cluster.py'))
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE_NAME] = module
        spec.loader.exec_module(module)
    return module


_cluster = _load_cluster()

free_port = _cluster.free_port
port_is_open = _cluster.port_is_open
process_group_members = _cluster.process_group_members
session_members = _cluster.session_members
ManagedProcess = _cluster.ManagedProcess
Subprocess = _cluster.Subprocess
RedisServer = _cluster.RedisServer
CeleryWorker = _cluster.CeleryWorker
celery_client = _cluster.celery_client
example_config = _cluster.example_config

__all__ = ['REPO_DIR'] + list(_cluster.__all__)

assert EXAMPLES_DIR == _cluster.EXAMPLES_DIR
assert all(name in globals() for name in __all__), 're-export everything'
