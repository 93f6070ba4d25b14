"""A private PostgreSQL cluster for tests, from the Debian ``postgresql`` package.

* ``session_postgres`` -> one ``PostgresCluster`` per pytest process, started once
* ``postgres_url``     -> ``postgresql://postgres@127.0.0.1:<port>/<fresh db>``
                          on the session cluster: a new database per test
* ``postgres_cluster`` -> a cluster of the test's own, free to ``kill()``,
                          ``restart()`` or ``stop()``

initdb and the server refuse to run as root: as root they run as the
``postgres`` system user, on a data directory it owns. The server listens
on 127.0.0.1 only, on a free port, with trust authentication; its socket
directory is private too, so the machine's own cluster is never touched.
"""
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from tests.support.processes import free_port, port_is_open


def postgres_bin_dir() -> str:
    """``/usr/lib/postgresql/<newest version>/bin``."""
    candidates = glob.glob('/usr/lib/postgresql/*/bin/initdb')
    if not candidates:
        raise RuntimeError('PostgreSQL is not installed: apt-get install postgresql')
    newest = max(candidates, key=lambda path: int(path.split('/')[4]))
    return os.path.dirname(newest)


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (a postmaster's backends and helpers)."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat', 'rb') as stat:
                data = stat.read().decode('utf-8', 'replace')
        except OSError:
            continue
        if int(data[data.rindex(')') + 2:].split()[1]) == pid:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """The process exists, zombie included: the server's own pid-file check counts zombies too."""
    return os.path.exists(f'/proc/{pid}')


class PostgresCluster:
    """One PostgreSQL server of our own: ``start()``, ``stop()``, ``kill()``..."""

    host = '127.0.0.1'

    def __init__(self, base_dir: str | None = None, port: int | None = None):
        self.bin_dir = postgres_bin_dir()
        self.base_dir = base_dir or tempfile.mkdtemp(prefix='flower-pg-')
        self.data_dir = os.path.join(self.base_dir, 'data')
        self.log_path = os.path.join(self.base_dir, 'postgres.log')
        self.port = port or free_port()
        self._as_postgres = os.geteuid() == 0
        self._initialised = False

    def __repr__(self):
        return f'<PostgresCluster {self.host}:{self.port} {self.data_dir}>'

    def url(self, dbname: str = 'postgres') -> str:
        return f'postgresql://postgres@{self.host}:{self.port}/{dbname}'

    def _run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [os.path.join(self.bin_dir, argv[0]), *argv[1:]]
        if self._as_postgres:
            command = ['runuser', '-u', 'postgres', '--', *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              cwd='/', stdin=subprocess.DEVNULL)

    def _check(self, result: subprocess.CompletedProcess, what: str) -> None:
        if result.returncode != 0:
            raise RuntimeError(f'{what} failed ({result.returncode}): {result.stdout}{result.stderr}'
                               f'\n{self.log_tail()}')

    def _initdb(self) -> None:
        if self._as_postgres:
            shutil.chown(self.base_dir, 'postgres', 'postgres')
        os.chmod(self.base_dir, 0o700)
        self._check(self._run('initdb', '-D', self.data_dir, '-U', 'postgres', '--auth=trust',
                              '--encoding=UTF8', '--locale=C', '--no-sync'), 'initdb')
        self._initialised = True

    def start(self, timeout: float = 30) -> 'PostgresCluster':
        """Create the cluster the first time, start the server, wait until it accepts queries."""
        if not self._initialised:
            self._initdb()
        options = (f'-c listen_addresses={self.host} -p {self.port} -k {self.base_dir} '
                   '-c fsync=off -c full_page_writes=off -c max_connections=100')
        self._check(self._run('pg_ctl', 'start', '-D', self.data_dir, '-l', self.log_path,
                              '-o', options, '-w', '-t', str(int(timeout)), timeout=timeout + 10),
                    'pg_ctl start')
        return self

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (open sessions are ended); nothing if not running."""
        if self.postmaster_pid() is None:
            return
        self._check(self._run('pg_ctl', 'stop', '-D', self.data_dir, '-m', 'fast', '-w',
                              '-t', str(int(timeout)), timeout=timeout + 10), 'pg_ctl stop')

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self, timeout: float = 30) -> None:
        """SIGKILL the postmaster, as a crash would; return once its backends are gone too.

        The next ``start()`` then recovers from the write-ahead log.
        """
        pid = self.postmaster_pid()
        if pid is None:
            return
        backends = _children(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while any(_alive(each) for each in [pid, *backends]) and time.monotonic() < deadline:
            time.sleep(0.05)
        for each in backends:
            if _alive(each):
                os.kill(each, signal.SIGKILL)
        while port_is_open(self.port, self.host, timeout=0.2) and time.monotonic() < deadline:
            time.sleep(0.05)

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, from its pid file (None when not running)."""
        try:
            with open(os.path.join(self.data_dir, 'postmaster.pid')) as pid_file:
                pid = int(pid_file.readline())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def psql(self, sql: str, dbname: str = 'postgres') -> str:
        """Run ``sql`` with psql; its unaligned, tuples-only output."""
        result = subprocess.run(
            [os.path.join(self.bin_dir, 'psql'), '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
             '-h', self.host, '-p', str(self.port), '-U', 'postgres', '-d', dbname, '-c', sql],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self._check(result, f'psql {sql!r}')
        return result.stdout

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its name (a random one by default)."""
        name = name or f'flower_{uuid.uuid4().hex[:12]}'
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, encoding='utf-8', errors='replace') as log:
                return ''.join(log.readlines()[-lines:])
        except OSError:
            return ''

    def remove(self) -> None:
        """Stop the server (killing it if it will not stop) and delete its files."""
        try:
            self.stop()
        except (RuntimeError, subprocess.TimeoutExpired):
            self.kill()
        shutil.rmtree(self.base_dir, ignore_errors=True)


@pytest.fixture(scope='session')
def session_postgres():
    """One PostgreSQL server for every test of this pytest process."""
    cluster = PostgresCluster().start()
    yield cluster
    cluster.remove()


@pytest.fixture
def postgres_url(session_postgres):
    """The URL of a new, empty database on the session's server."""
    return session_postgres.url(session_postgres.create_database())


@pytest.fixture
def postgres_cluster():
    """A PostgreSQL server of this test's own (outage tests kill and restart it)."""
    cluster = PostgresCluster().start()
    yield cluster
    cluster.remove()
