"""flower installed the way users install it, into a virtualenv of its own.

``user_venv`` (session fixture) is a fresh venv holding flower's wheel,
built from the tracked files of this checkout by ``scripts/install-flower.sh``
(the script the container image runs too), and nothing of the test extras.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO_DIR

INSTALL_SCRIPT = os.path.join(REPO_DIR, 'scripts', 'install-flower.sh')


def copy_tracked_files(destination: Path) -> Path:
    """The files git tracks, as they are in the working tree: what a clean clone builds from."""
    listed = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO_DIR, check=True,
                            capture_output=True, timeout=60).stdout.decode().split('\0')
    for name in filter(None, listed):
        source = os.path.join(REPO_DIR, name)
        if os.path.isfile(source):
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def make_venv(path: Path) -> Path:
    subprocess.run([sys.executable, '-m', 'venv', str(path)], check=True, timeout=120)
    return path


def install(venv: Path, package: Path, log_dir: Path) -> None:
    """Run the install script; its output goes to ``log_dir/install.log``."""
    with open(log_dir / 'install.log', 'ab') as log:
        done = subprocess.run(['bash', INSTALL_SCRIPT, str(venv / 'bin' / 'python'), str(package)],
                              stdout=log, stderr=subprocess.STDOUT, timeout=900)
    if done.returncode != 0:
        raise AssertionError(f'install-flower.sh failed ({done.returncode}):\n'
                             + (log_dir / 'install.log').read_text(errors='replace')[-4000:])


def user_environment() -> dict:
    """The environment without anything that would reach the test venv's packages."""
    return {key: value for key, value in os.environ.items()
            if key not in ('PYTHONPATH', 'VIRTUAL_ENV') and not key.startswith('FLOWER_')}


@pytest.fixture(scope='session')
def user_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp('user-install')
    source = copy_tracked_files(root / 'source')
    venv = make_venv(root / 'venv')
    install(venv, source, root)
    return venv
