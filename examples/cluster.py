"""Start and stop a throw-away Celery cluster: a private Redis and workers.

Shared by ``examples/demo.py`` and the test-suite (``tests/support/processes.py``
re-exports everything from here). Only the standard library is needed to
import this module; Celery is imported lazily by the few helpers using it.

Every process started here runs in its own process group and is reaped by
``stop()``; anything still alive when the interpreter exits is killed by an
``atexit`` hook, group and all.
"""

import atexit
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types

EXAMPLES_DIR = os.path.dirname(os.path.abspath(__file__))

__all__ = [
    'EXAMPLES_DIR', 'free_port', 'port_is_open', 'process_group_members',
    'session_members', 'ManagedProcess', 'Subprocess', 'RedisServer',
    'CeleryWorker', 'celery_client', 'example_config',
]


# -- small helpers ---------------------------------------------------------

def free_port(host='127.0.0.1'):
    """Return a TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_open(port, host='127.0.0.1', timeout=0.5):
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _proc_stats():
    """Yield ``(pid, state, pgrp, session)`` for every process in /proc."""
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat', 'rb') as fh:
                data = fh.read().decode('utf-8', 'replace')
        except OSError:  # the process went away meanwhile
            continue
        # The command name (field 2) may contain spaces and parentheses:
        # the remaining fields start after the last ')'.
        fields = data[data.rindex(')') + 2:].split()
        # fields[0] is field 3 (state), [2] is 5 (pgrp), [3] is 6 (session).
        yield int(entry), fields[0], int(fields[2]), int(fields[3])


def process_group_members(pgid):
    """PIDs of the live (non-zombie) processes in process group ``pgid``."""
    if not os.path.isdir('/proc'):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    return [pid for pid, state, pgrp, _ in _proc_stats()
            if pgrp == pgid and state not in 'ZX']


def session_members(sid):
    """PIDs of the live (non-zombie) processes in session ``sid``."""
    return [pid for pid, state, _, session in _proc_stats()
            if session == sid and state not in 'ZX']


def _tail(path, lines=40):
    try:
        with open(path, 'rb') as fh:
            text = fh.read().decode('utf-8', 'replace')
    except OSError as exc:
        return f'<cannot read {path}: {exc}>'
    return '\n'.join(text.splitlines()[-lines:])


# -- process bookkeeping -----------------------------------------------------

_live = set()
_live_lock = threading.Lock()


@atexit.register
def _kill_leftovers(grace=5.0):
    """Stop whatever is still running: SIGTERM, then SIGKILL after ``grace``.

    The polite signal first lets a worker reap its own pool processes.
    """
    with _live_lock:
        leftovers = list(_live)
    for proc in leftovers:
        proc._signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in leftovers:
        try:
            proc.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for proc in leftovers:
        proc._kill_group()


class ManagedProcess:
    """A subprocess leading its own process group, output to a log file.

    With ``new_session=True`` the child starts a new session (so it does not
    get the terminal's Ctrl-C); with ``False`` it only gets a process group
    of its own (and stays visible as a member of our session).
    """

    log_name = 'process.log'

    def __init__(self, log_dir=None, new_session=True):
        self.log_dir = log_dir or tempfile.mkdtemp(prefix='flower-procs-')
        os.makedirs(self.log_dir, exist_ok=True)
        # new_session=False still gives the child its own process group (so
        # it can be signalled as a whole) but keeps it in our session.
        self.new_session = new_session
        self.process = None
        self._log = None

    # public bits
    @property
    def log_path(self):
        return os.path.join(self.log_dir, self.log_name)

    @property
    def pid(self):
        return self.process.pid if self.process else None

    @property
    def pgid(self):
        return self.pid

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines=40):
        return _tail(self.log_path, lines)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def __del__(self):
        if getattr(self, '_log', None) is not None:
            try:
                self._log.close()
            except Exception:
                pass

    # plumbing
    def start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def _spawn(self, argv, env=None, cwd=None, capture=True):
        """Start ``argv``; output goes to the log file unless not ``capture``.
        """
        if self.running:
            raise RuntimeError(f'{self!r} is already running')
        self._close_log()
        output = {}
        if capture:
            self._log = open(self.log_path, 'ab')
            self._log.write(f'\n=== {time.strftime("%H:%M:%S")} '
                            f'{subprocess.list2cmdline(argv)}\n'.encode())
            self._log.flush()
            output = {'stdout': self._log, 'stderr': subprocess.STDOUT}
        extra = ({'start_new_session': True} if self.new_session
                 else {'process_group': 0})
        with _live_lock:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                **output, **extra)
            _live.add(self)
        return self.process

    def _signal_group(self, signum):
        if self.process is None:
            return
        try:
            os.killpg(self.pgid, signum)
        except ProcessLookupError:
            pass

    def _wait_group_empty(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process_group_members(self.pgid):
                return True
            time.sleep(0.05)
        return not process_group_members(self.pgid)

    def _shutdown(self, signum, timeout):
        """Signal the group, wait for it to exit; SIGKILL it on timeout."""
        if self.process is None:
            return None
        self._signal_group(signum)
        deadline = time.monotonic() + timeout
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait()
        # Children of the leader (pool processes...) may outlive it briefly.
        remaining = max(0.5, deadline - time.monotonic())
        if not self._wait_group_empty(remaining):
            self._signal_group(signal.SIGKILL)
            self._wait_group_empty(5)
        self._forget()
        return self.process.returncode

    def _kill_group(self):
        """Last-resort cleanup (atexit): SIGKILL the whole group."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._forget()

    def _forget(self):
        with _live_lock:
            _live.discard(self)
        self._close_log()

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None


class Subprocess(ManagedProcess):
    """Any command, run as a managed process group.

    ``capture=False`` lets its output go to our stdout/stderr instead of
    ``<log_dir>/<name>.log``.
    """

    def __init__(self, argv, name='process', env=None, cwd=None,
                 log_dir=None, new_session=True, capture=True):
        super().__init__(log_dir=log_dir, new_session=new_session)
        self.argv = list(argv)
        self.name = name
        self.env = env
        self.cwd = cwd
        self.capture = capture

    def __repr__(self):
        return f'<Subprocess {self.name} pid={self.pid}>'

    @property
    def log_name(self):
        return f'{self.name}.log'

    def start(self):
        self._spawn(self.argv, env=self.env, cwd=self.cwd,
                    capture=self.capture)
        return self

    def stop(self, timeout=10, signum=signal.SIGTERM):
        """Send ``signum`` to the group; SIGKILL it after ``timeout``."""
        return self._shutdown(signum, timeout)

    def kill(self):
        return self._shutdown(signal.SIGKILL, 5)


# -- Redis -----------------------------------------------------------------

def _resp_command(*args):
    out = [f'*{len(args)}\r\n'.encode()]
    for arg in args:
        data = str(arg).encode()
        out.append(b'$%d\r\n%s\r\n' % (len(data), data))
    return b''.join(out)


class RedisServer(ManagedProcess):
    """A private ``redis-server`` without persistence, bound to localhost.

    >>> with RedisServer() as redis:
    ...     redis.url
    'redis://127.0.0.1:<port>/0'
    """

    host = '127.0.0.1'

    def __init__(self, port=None, dir=None, executable=None,
                 new_session=True):
        super().__init__(log_dir=dir, new_session=new_session)
        self.port = port
        self._fixed_port = port is not None
        self.executable = (executable or shutil.which('redis-server')
                           or '/usr/bin/redis-server')

    def __repr__(self):
        return f'<RedisServer {self.host}:{self.port} pid={self.pid}>'

    @property
    def dir(self):
        return self.log_dir

    @property
    def log_name(self):
        return f'redis-{self.port}.log'

    @property
    def url(self):
        return self.url_for(0)

    def url_for(self, db):
        return f'redis://{self.host}:{self.port}/{db}'

    def argv(self):
        return [self.executable, '--port', str(self.port),
                '--bind', self.host, '--save', '', '--appendonly', 'no',
                '--dir', self.dir, '--daemonize', 'no']

    def start(self, timeout=10):
        attempts = 1 if self._fixed_port else 5
        for attempt in range(attempts):
            if not self._fixed_port:
                self.port = free_port(self.host)
            self._spawn(self.argv())
            if self._wait_up(timeout):
                self._fixed_port = True  # a later start() comes back on this port
                return self
            # Lost the race for the port, or redis is broken: clean up.
            self._shutdown(signal.SIGKILL, 5)
        raise RuntimeError(f'redis-server on port {self.port} did not start;'
                           f' log {self.log_path}:\n{self.log_tail()}')

    def _wait_up(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self.ping():
                return True
            time.sleep(0.02)
        return False

    def command(self, *args, db=None, timeout=2.0):
        """Run one command over a raw socket; return the reply's first line.

        Good enough for PING/FLUSHDB/DBSIZE-like commands (the ``+OK``,
        ``:12`` or ``-ERR ...`` line is returned as a ``str``).
        """
        payload = b''
        if db is not None:
            payload += _resp_command('SELECT', db)
        payload += _resp_command(*args)
        with socket.create_connection((self.host, self.port),
                                      timeout=timeout) as sock:
            sock.sendall(payload)
            buf = b''
            wanted = 2 if db is not None else 1
            while buf.count(b'\r\n') < wanted:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError('redis closed the connection')
                buf += chunk
        lines = buf.split(b'\r\n')
        if db is not None:
            if not lines[0].startswith(b'+OK'):
                raise RuntimeError(f'SELECT {db} failed: {lines[0]!r}')
            lines = lines[1:]
        return lines[0].decode('utf-8', 'replace')

    def ping(self, timeout=0.5):
        try:
            return self.command('PING', timeout=timeout) == '+PONG'
        except OSError:
            return False

    def flushdb(self, db=0):
        reply = self.command('FLUSHDB', db=db)
        if reply != '+OK':
            raise RuntimeError(f'FLUSHDB failed: {reply}')

    def stop(self, timeout=10):
        return self._shutdown(signal.SIGTERM, timeout)

    def kill(self):
        """Crash-stop (SIGKILL), e.g. to simulate a broker outage."""
        return self._shutdown(signal.SIGKILL, 5)

    def restart(self, timeout=10):
        """Stop and start again on the same port (data is not kept)."""
        self.stop()
        self._fixed_port = True
        return self.start(timeout)


# -- Celery workers ----------------------------------------------------------

def _expand_nodename(name):
    """Expand %h, %n and %d the way ``celery worker -n`` does."""
    host = socket.gethostname()
    short, _, domain = host.partition('.')
    return (name.replace('%h', host).replace('%n', short)
            .replace('%d', domain).replace('%%', '%'))


class CeleryWorker(ManagedProcess):
    """``celery worker`` running the example tasks (``examples/tasks.py``).

    ``name`` is the node name given to ``-n`` (``'w1@localhost'``); ``%h``
    style placeholders are allowed and expanded by ``hostname``.

    ``events=False`` starts a *silent* worker, as a monitor sees it: no task
    events (no ``-E``, and the examples' ``worker_send_task_events`` turned
    off through the environment) and no worker events either
    (``--without-heartbeat``, so no worker-online/heartbeat). Gossip is
    left on in that case only so that Celery still creates an enabled event
    dispatcher: the ``enable_events`` remote command then turns task events
    on, which is what Flower's periodic enable_events relies on.
    """

    def __init__(self, broker_url, name, app='tasks', workdir=EXAMPLES_DIR,
                 pool='prefork', concurrency=2, queues=None, extra_args=(),
                 env=None, result_backend=None, log_dir=None,
                 loglevel='INFO', events=True, new_session=True):
        super().__init__(log_dir=log_dir, new_session=new_session)
        self.broker_url = broker_url
        self.result_backend = result_backend or broker_url
        self.name = name
        self.app = app
        self.workdir = workdir
        self.pool = pool
        self.concurrency = concurrency
        if isinstance(queues, str):
            queues = [queues]
        self.queues = list(queues) if queues else None
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.loglevel = loglevel
        self.events = events

    def __repr__(self):
        return f'<CeleryWorker {self.hostname} pid={self.pid}>'

    @property
    def hostname(self):
        return _expand_nodename(self.name)

    @property
    def log_name(self):
        safe = ''.join(c if c.isalnum() or c in '-_.@' else '_'
                       for c in self.hostname)
        return f'worker-{safe}.log'

    def argv(self):
        argv = [sys.executable, '-m', 'celery', '-A', self.app,
                '--workdir', self.workdir, 'worker']
        argv += ['-n', self.name, '-P', self.pool,
                 '-c', str(self.concurrency), '--without-mingle',
                 '-l', self.loglevel]
        if self.events:
            argv += ['-E', '--without-gossip']
        else:
            argv += ['--without-heartbeat']
        if self.queues:
            argv += ['-Q', ','.join(self.queues)]
        return argv + self.extra_args

    def environ(self):
        env = dict(os.environ)
        env.update(CELERY_BROKER_URL=self.broker_url,
                   CELERY_RESULT_BACKEND=self.result_backend,
                   PYTHONUNBUFFERED='1')
        if not self.events:
            env['CELERY_WORKER_SEND_TASK_EVENTS'] = '0'
        env.update(self.env)
        return env

    def start(self):
        self._spawn(self.argv(), env=self.environ())
        return self

    def wait_ready(self, timeout=30, client=None):
        """Block until the worker answers a ``ping`` (or raise)."""
        own_client = client is None
        if own_client:
            client = celery_client(self.broker_url, self.result_backend)
        last_error = None
        deadline = time.monotonic() + timeout
        try:
            while True:
                if not self.running:
                    code = self.process.poll() if self.process else None
                    raise RuntimeError(
                        f'worker {self.hostname} exited (code {code}) before '
                        f'being ready; log {self.log_path}:\n'
                        f'{self.log_tail()}')
                try:
                    replies = client.control.ping(
                        destination=[self.hostname], timeout=0.5)
                except Exception as exc:  # broker not reachable yet...
                    last_error = exc
                    time.sleep(0.2)
                else:
                    if any(self.hostname in reply for reply in replies):
                        return self
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f'worker {self.hostname} not ready after {timeout}s '
                        f'(last error: {last_error!r}); log {self.log_path}:'
                        f'\n{self.log_tail()}')
        finally:
            if own_client:
                client.close()

    def stop(self, timeout=30):
        """Warm shutdown (SIGTERM to the group); SIGKILL after ``timeout``."""
        return self._shutdown(signal.SIGTERM, timeout)

    def kill(self):
        """Cold, abrupt stop: SIGKILL the whole process group."""
        return self._shutdown(signal.SIGKILL, 5)

    def __enter__(self):
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.kill()
            raise
        return self


# -- clients -----------------------------------------------------------------

_config_module = None


def example_config():
    """The settings of ``examples/celeryconfig.py`` as a ``dict``.

    Broker and backend in there depend on the environment: callers are
    expected to override them.
    """
    global _config_module
    if _config_module is None:
        path = os.path.join(EXAMPLES_DIR, 'celeryconfig.py')
        spec = importlib.util.spec_from_file_location(
            '_flower_examples_celeryconfig', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _config_module = module
    return {key: value for key, value in vars(_config_module).items()
            if not key.startswith('_') and key.islower()
            and not isinstance(value, types.ModuleType)}


def celery_client(broker_url, result_backend=None, main='flower-client'):
    """A Celery app configured like the examples, talking to ``broker_url``.

    It knows no task: send them by name, e.g.
    ``celery_client(url).send_task('tasks.add', (2, 3)).get(timeout=10)``.
    Call ``.close()`` on it when done.
    """
    from celery import Celery

    app = Celery(main, set_as_current=False)
    config = example_config()
    config.update(broker_url=broker_url,
                  result_backend=result_backend or broker_url)
    app.conf.update(config)
    return app
