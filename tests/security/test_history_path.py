"""``--persistent`` never moves aside what is not a task history (item 8 of issue 15).

The real command is run: a directory (the default ``--db=flower`` run from a
source checkout found the ``flower`` package there), a text file, an
executable or another user's file at ``--db`` make it exit with status 2 and
one line, touching nothing. Binary data that may be a damaged history is
still moved aside (``tests/test_persistence*.py``). New histories are private.
"""
import asyncio
import os
import stat
import subprocess

import pytest
from tornado.ioloop import IOLoop

from flower.events import Events
from tests.support.processes import celery_client, free_port
from tests.test_cli import CELERY

NOBODY = 65534


def run_flower(broker_url, db, cwd):
    """Run ``celery flower --persistent --db=DB``; it must exit on its own."""
    argv = CELERY + ['-b', broker_url, 'flower', '--persistent', f'--db={db}',
                     f'--port={free_port()}', '--address=127.0.0.1']
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60,
                              check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"flower started with --db={db} instead of refusing it")


def snapshot(path):
    """Every file under ``path`` (or ``path`` itself) with its bytes and mode."""
    if os.path.isdir(path):
        return {os.path.join(root, name): (open(os.path.join(root, name), 'rb').read(),
                                           os.stat(os.path.join(root, name)).st_mode)
                for root, _, names in os.walk(path) for name in names}
    return {path: (open(path, 'rb').read(), os.stat(path).st_mode)}


def assert_refused(done, path, before, reason):
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('flower: error: --db:'), done.stderr
    assert reason in lines[0], lines[0]
    assert snapshot(path) == before, "the path was changed"
    siblings = os.listdir(os.path.dirname(os.path.abspath(path)))
    assert not [name for name in siblings if '.unreadable-' in name], siblings


def test_item08_the_default_db_next_to_a_flower_package_directory_is_refused(broker_url, tmp_path):
    package = tmp_path / 'flower'
    package.mkdir()
    (package / '__init__.py').write_text('"""A package that happens to be called flower."""\n')
    before = snapshot(str(package))
    argv = CELERY + ['-b', broker_url, 'flower', '--persistent', f'--port={free_port()}',
                     '--address=127.0.0.1']
    try:
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("flower started with the flower directory as --db")
    assert_refused(done, str(package), before, 'is a directory')


@pytest.mark.parametrize('kind', ['directory', 'text', 'executable', 'other-user'])
def test_item08_a_path_that_is_not_a_history_is_refused(broker_url, tmp_path, kind):
    path = tmp_path / 'history'
    reason = {'directory': 'is a directory', 'text': 'is a text file',
              'executable': 'is executable', 'other-user': 'belongs to another user'}[kind]
    if kind == 'directory':
        path.mkdir()
        (path / 'notes.txt').write_text('keep me')
    elif kind == 'text':
        path.write_text('broker_url = "redis://localhost"\n# a configuration file, caf\u00e9\n')
    else:
        path.write_bytes(os.urandom(4096))  # binary: would pass as a damaged history
        if kind == 'executable':
            path.chmod(0o755)
        else:
            os.chown(path, NOBODY, NOBODY)
    before = snapshot(str(path))
    assert_refused(run_flower(broker_url, path, tmp_path), str(path), before, reason)


def test_item08_a_new_history_is_readable_by_its_owner_only(broker_url, tmp_path):
    path = tmp_path / 'history.db'
    old_umask = os.umask(0o022)
    try:
        async def start():
            capp = celery_client(broker_url)
            events = Events(capp, io_loop=IOLoop.current(), db=str(path), persistent=True,
                            enable_events=False)
            events.open_history()
            events.flush_state()
            await asyncio.sleep(0.5)
            events.stop()
            capp.close()
        asyncio.run(start())
    finally:
        os.umask(old_umask)
    created = [name for name in os.listdir(tmp_path) if name.startswith('history.db')]
    assert 'history.db' in created
    for name in created:
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
