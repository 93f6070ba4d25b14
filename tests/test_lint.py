"""The code passes the project's lint settings (``ruff.toml``)."""
import subprocess
import sys

from tests.support.processes import REPO_DIR


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache', '.'], cwd=REPO_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
