"""Where tests leave their files: ``<repo>/test-artifacts/``, one directory per owner.

pytest-xdist runs test modules in several processes at once, so every directory
here belongs to one module (``module_dir``), one test (``test_dir``) or one
xdist worker (``worker_dir``): none is emptied or written by two processes.
"""
import os
import re
import shutil

from tests.support.processes import REPO_DIR

ARTIFACTS_ROOT = os.path.join(REPO_DIR, 'test-artifacts')


def safe_name(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.=-]+', '_', name).strip('_')[:120]


def fresh_dir(*names: str) -> str:
    """``test-artifacts/<names...>/``, emptied of a previous run's files."""
    path = os.path.join(ARTIFACTS_ROOT, *names)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    return path


def module_name(module: str) -> str:
    """A test module's directory name: its dotted name below ``tests``."""
    return safe_name(module.removeprefix('tests.'))


def module_dir(module: str, prefix: str = '') -> str:
    """The path (not created) of the directory of the module named ``module``."""
    return os.path.join(ARTIFACTS_ROOT, prefix + module_name(module))


def per_test_dir(module: str, test: str) -> str:
    """A test's own directory, emptied: ``test-artifacts/<module>/<test name>/``."""
    return fresh_dir(module_name(module), safe_name(test))


def worker_dir(name: str) -> str:
    """``test-artifacts/<name>-<xdist worker>/``, emptied: one per pytest process."""
    return fresh_dir(f"{name}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
